import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ChallengeStore } from './create-auth-client.js';
import type { Challenge } from './parse-challenge.js';
import type { TokenStore } from './token-cache.js';
import type { TokenInfo } from './token-response.js';

interface StoredToken {
  readonly registry: string;
  readonly token: string;
  readonly expiresAt: number;
}

interface FileShape {
  version: 1;
  challenges: Record<string, Challenge>;
  tokens: Record<string, StoredToken>;
}

function isStoredToken(t: unknown): t is StoredToken {
  const v = t as Partial<StoredToken> | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.registry === 'string' &&
    typeof v.token === 'string' &&
    typeof v.expiresAt === 'number'
  );
}

function isChallenge(c: unknown): c is Challenge {
  const v = c as Partial<Challenge> | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.scheme === 'string' &&
    typeof v.params === 'object' &&
    v.params !== null &&
    Object.values(v.params).every((p) => typeof p === 'string')
  );
}

/** `$XDG_CACHE_HOME/regauth/tokens.json`, else `~/.cache/regauth/tokens.json`. */
export function defaultTokenStorePath(
  env: Readonly<Record<string, string | undefined>> = process.env,
): string {
  const base = env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache');
  return join(base, 'regauth', 'tokens.json');
}

/**
 * The CLI's persistent token cache: access tokens (never passwords or refresh tokens) and the
 * challenges registries sent, in one 0600 file. A token is stored under a key that names the
 * identity it was issued to, so it never serves another user or an anonymous call. The file is
 * only a cache: when it is unreadable it is ignored and rewritten.
 */
export class FileTokenStore implements TokenStore, ChallengeStore {
  readonly #file: string;
  readonly #now: () => number;
  #data: FileShape | undefined;

  constructor(file: string = defaultTokenStorePath(), now: () => number = Date.now) {
    this.#file = file;
    this.#now = now;
  }

  #load(): FileShape {
    if (this.#data) return this.#data;
    let data: FileShape = { version: 1, challenges: {}, tokens: {} };
    try {
      const parsed = JSON.parse(readFileSync(this.#file, 'utf8')) as Partial<FileShape>;
      if (
        parsed.version === 1 &&
        typeof parsed.tokens === 'object' &&
        typeof parsed.challenges === 'object'
      ) {
        // Entries are checked one by one: a damaged one (null, a wrong type) would otherwise throw
        // later, in #save or in the auth layer, and fail every request instead of one cache hit.
        data = {
          version: 1,
          challenges: Object.fromEntries(
            Object.entries(parsed.challenges ?? {}).filter(([, c]) => isChallenge(c)),
          ),
          tokens: Object.fromEntries(Object.entries(parsed.tokens ?? {}).filter(([, t]) => isStoredToken(t))),
        };
      }
    } catch {
      // Missing or damaged: start empty.
    }
    this.#data = data;
    return data;
  }

  #save(): void {
    const data = this.#load();
    const now = this.#now();
    for (const [key, t] of Object.entries(data.tokens)) if (t.expiresAt <= now) delete data.tokens[key];
    mkdirSync(dirname(this.#file), { recursive: true, mode: 0o700 });
    const temp = `${this.#file}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      writeFileSync(temp, JSON.stringify(data), { mode: 0o600 });
      renameSync(temp, this.#file);
    } catch {
      rmSync(temp, { force: true });
      // A cache that cannot be written costs a token request next time, nothing more.
    }
  }

  loadToken(key: string): TokenInfo | undefined {
    const t = this.#load().tokens[key];
    return t && t.expiresAt > this.#now() ? { token: t.token, expiresAt: t.expiresAt } : undefined;
  }

  saveToken(key: string, registry: string, token: TokenInfo): void {
    this.#load().tokens[key] = { registry, token: token.token, expiresAt: token.expiresAt };
    this.#save();
  }

  loadChallenge(origin: string): Challenge | undefined {
    return this.#load().challenges[origin];
  }

  saveChallenge(origin: string, challenge: Challenge): void {
    this.#load().challenges[origin] = challenge;
    this.#save();
  }

  /** Drops every token issued for a registry (logout). Returns how many. */
  forgetRegistry(registry: string): number {
    const data = this.#load();
    let n = 0;
    for (const [key, t] of Object.entries(data.tokens)) {
      if (t.registry === registry) {
        delete data.tokens[key];
        n++;
      }
    }
    this.#save();
    return n;
  }
}
