import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  type ChallengeStore,
  isChallenge,
  isLoopbackScheme,
  type LoopbackScheme,
  MAX_LOOPBACK_SCHEMES,
  MAX_SCOPE_NAMES_PER_ORIGIN,
} from './challenge-cache.js';
import type { Challenge } from './parse-challenge.js';
import type { TokenStore } from './token-cache.js';
import type { TokenInfo } from './token-response.js';

interface StoredToken {
  readonly registry: string;
  readonly token: string;
  readonly expiresAt: number;
}

/**
 * Version 2 keys tokens by registry origin and a salted hash of the secret; version 1 files
 * (keyed by user name) are dropped on the first write.
 */
interface FileShape {
  version: 2;
  /** base64 of TokenStore.keySalt. */
  salt: string;
  challenges: Record<string, Challenge>;
  tokens: Record<string, StoredToken>;
  /**
   * By origin, then by requested scopes (ChallengeStore.saveScopeNames): the scopes the
   * registry's challenge named instead. Added later within version 2: older files have none.
   */
  scopeNames?: Record<string, Record<string, string[]>>;
  /**
   * By loopback `host:port`, the scheme its HTTPS ping found (ChallengeStore.saveLoopbackScheme).
   * Added later within version 2: older files have none.
   */
  loopbackSchemes?: Record<string, LoopbackScheme>;
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

function isScopeNames(n: unknown): n is Record<string, string[]> {
  return (
    typeof n === 'object' &&
    n !== null &&
    Object.values(n).every((v) => Array.isArray(v) && v.every((s) => typeof s === 'string'))
  );
}

/** `$XDG_CACHE_HOME/regauth/tokens.json`, else `~/.cache/regauth/tokens.json`. */
export function defaultTokenStorePath(
  env: Readonly<Record<string, string | undefined>> = process.env,
): string {
  const base = env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache');
  return join(base, 'regauth', 'tokens.json');
}

/** How a FileTokenStore keeps time and reports a cache it will not use. */
export interface FileTokenStoreOptions {
  /** The clock, in milliseconds since the epoch, for expiry. Left out: Date.now. */
  readonly now?: () => number;
  /**
   * Told once, with a sentence saying why, when the cache is not used: its folder or file
   * belongs to another user or is writable by others. Left out: nothing is said.
   */
  readonly onWarning?: (message: string) => void;
}

/**
 * Why a cache folder or file must not be trusted, or undefined when it may be. Its challenges
 * decide where credentials are sent, so only the user may be able to write it: owned by this
 * user and writable by no one else (what ssh asks of ~/.ssh). Missing paths are fine: they are
 * created private. Windows keeps no POSIX owner and mode; it is not checked there.
 */
function untrusted(paths: readonly (readonly [string, string])[]): string | undefined {
  if (typeof process.getuid !== 'function') return undefined;
  const uid = process.getuid();
  for (const [path, what] of paths) {
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(path);
    } catch {
      continue;
    }
    if (st.uid !== uid) return `the ${what} ${path} belongs to another user (uid ${st.uid})`;
    if ((st.mode & 0o022) !== 0) {
      return `the ${what} ${path} is writable by others (mode ${(st.mode & 0o777).toString(8)}); make it private with chmod go-w`;
    }
  }
  return undefined;
}

/**
 * The CLI's persistent token cache: access tokens (never passwords or refresh tokens) and the
 * challenges registries sent, in one 0600 file in a 0700 folder. A token is stored under a key
 * that names the registry origin and a salted hash of the secret it was issued for, so it never
 * serves another registry, another password, or an anonymous call. The file is only a cache:
 * when it is unreadable it is ignored and rewritten; when someone else could have written it, it
 * is neither read nor written.
 */
export class FileTokenStore implements TokenStore, ChallengeStore {
  readonly #file: string;
  readonly #now: () => number;
  readonly #onWarning: ((message: string) => void) | undefined;
  #data: FileShape | undefined;
  #disabled = false;

  constructor(file: string = defaultTokenStorePath(), options: FileTokenStoreOptions = {}) {
    this.#file = file;
    this.#now = options.now ?? Date.now;
    this.#onWarning = options.onWarning;
  }

  #load(): FileShape {
    if (this.#data) return this.#data;
    let data: FileShape = {
      version: 2,
      salt: randomBytes(16).toString('base64'),
      challenges: {},
      tokens: {},
    };
    const why = untrusted([
      [dirname(this.#file), 'token cache folder'],
      [this.#file, 'token cache file'],
    ]);
    if (why !== undefined) {
      this.#disabled = true;
      this.#onWarning?.(`not using the token cache: ${why}`);
      this.#data = data;
      return data;
    }
    try {
      const parsed = JSON.parse(readFileSync(this.#file, 'utf8')) as Partial<FileShape>;
      if (
        parsed.version === 2 &&
        typeof parsed.salt === 'string' &&
        Buffer.from(parsed.salt, 'base64').length >= 16 &&
        typeof parsed.tokens === 'object' &&
        typeof parsed.challenges === 'object'
      ) {
        // Entries are checked one by one: a damaged one (null, a wrong type) would otherwise throw
        // later, in #save or in the auth layer, and fail every request instead of one cache hit.
        data = {
          version: 2,
          salt: parsed.salt,
          challenges: Object.fromEntries(
            Object.entries(parsed.challenges ?? {}).filter(([, c]) => isChallenge(c)),
          ),
          tokens: Object.fromEntries(Object.entries(parsed.tokens ?? {}).filter(([, t]) => isStoredToken(t))),
          scopeNames: Object.fromEntries(
            Object.entries(typeof parsed.scopeNames === 'object' ? (parsed.scopeNames ?? {}) : {}).filter(
              ([, n]) => isScopeNames(n),
            ),
          ),
          loopbackSchemes: Object.fromEntries(
            Object.entries(
              typeof parsed.loopbackSchemes === 'object' ? (parsed.loopbackSchemes ?? {}) : {},
            ).filter(([, scheme]) => isLoopbackScheme(scheme)),
          ),
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
    if (this.#disabled) return;
    const now = this.#now();
    for (const [key, t] of Object.entries(data.tokens)) if (t.expiresAt <= now) delete data.tokens[key];
    const temp = `${this.#file}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      mkdirSync(dirname(this.#file), { recursive: true, mode: 0o700 });
      writeFileSync(temp, JSON.stringify(data), { mode: 0o600 });
      renameSync(temp, this.#file);
    } catch {
      rmSync(temp, { force: true });
      // A cache that cannot be written costs a token request next time, nothing more.
    }
  }

  keySalt(): Uint8Array {
    return Buffer.from(this.#load().salt, 'base64');
  }

  hasTokens(registry: string): boolean {
    const now = this.#now();
    return Object.values(this.#load().tokens).some((t) => t.registry === registry && t.expiresAt > now);
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

  forgetChallenge(origin: string): void {
    const data = this.#load();
    if (!(origin in data.challenges) && !(origin in (data.scopeNames ?? {}))) return;
    delete data.challenges[origin];
    delete data.scopeNames?.[origin];
    this.#save();
  }

  loadScopeNames(origin: string, requested: string): string[] | undefined {
    return this.#load().scopeNames?.[origin]?.[requested];
  }

  saveScopeNames(origin: string, requested: string, named: readonly string[]): void {
    const data = this.#load();
    data.scopeNames ??= {};
    const names = data.scopeNames[origin] ?? {};
    data.scopeNames[origin] = names;
    delete names[requested];
    names[requested] = [...named];
    const keys = Object.keys(names);
    for (const old of keys.slice(0, Math.max(0, keys.length - MAX_SCOPE_NAMES_PER_ORIGIN))) delete names[old];
    this.#save();
  }

  loadLoopbackScheme(host: string): LoopbackScheme | undefined {
    const scheme = this.#load().loopbackSchemes?.[host];
    return isLoopbackScheme(scheme) ? scheme : undefined;
  }

  saveLoopbackScheme(host: string, scheme: LoopbackScheme): void {
    const data = this.#load();
    data.loopbackSchemes ??= {};
    const schemes = data.loopbackSchemes;
    if (schemes[host] === scheme) return;
    delete schemes[host];
    schemes[host] = scheme;
    const hosts = Object.keys(schemes);
    for (const old of hosts.slice(0, Math.max(0, hosts.length - MAX_LOOPBACK_SCHEMES))) delete schemes[old];
    this.#save();
  }

  /**
   * Drops every token issued for a registry, and the challenges of its origins (logout: the next
   * run asks the registry afresh). Returns how many tokens.
   */
  forgetRegistry(registry: string, origins: readonly string[] = []): number {
    const data = this.#load();
    let n = 0;
    for (const [key, t] of Object.entries(data.tokens)) {
      if (t.registry === registry) {
        delete data.tokens[key];
        n++;
      }
    }
    for (const origin of origins) {
      delete data.challenges[origin];
      delete data.scopeNames?.[origin];
    }
    this.#save();
    return n;
  }
}
