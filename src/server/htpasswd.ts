import { createHash, createHmac, randomBytes } from 'node:crypto';
import { RegauthError } from '../errors/regauth-error.js';
import { importOptional } from './import-optional.js';
import { exceedsUserNameLimit, MAX_USER_NAME_BYTES } from './user-name-limit.js';

/** bcrypt hashes as `htpasswd -B` writes them (`$2y$`), and as other tools write them. */
const BCRYPT_RE = /^\$2[aby]\$(\d{2})\$[./A-Za-z0-9]{53}$/;

/** One user of an htpasswd file: the bcrypt hash as written and its cost. */
export interface HtpasswdEntry {
  readonly hash: string;
  readonly cost: number;
}

/**
 * Parses an htpasswd file. Only bcrypt entries are accepted: MD5 (`$apr1$`), SHA1 (`{SHA}`)
 * and crypt hashes are too weak for a token server, so they stop start-up with the line number.
 */
export function parseHtpasswd(text: string, file: string): Map<string, HtpasswdEntry> {
  const users = new Map<string, HtpasswdEntry>();
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const where = `${file}:${index + 1}`;
    const colon = line.indexOf(':');
    if (colon <= 0) {
      throw new RegauthError(
        'ERR_INVALID_HTPASSWD',
        `${where}: expected "user:hash"; write entries with htpasswd -B`,
      );
    }
    const user = line.slice(0, colon);
    const hash = line.slice(colon + 1);
    const match = BCRYPT_RE.exec(hash);
    if (!match) {
      const kind = hash.startsWith('$apr1$')
        ? 'an MD5 ($apr1$) hash'
        : hash.startsWith('{SHA}')
          ? 'a SHA-1 ({SHA}) hash'
          : 'not a bcrypt hash';
      throw new RegauthError(
        'ERR_INVALID_HTPASSWD',
        `${where}: the entry for user "${user}" is ${kind}; only bcrypt is accepted: re-create it with htpasswd -B`,
      );
    }
    const cost = Number(match[1]);
    // bcrypt's cost is 04–31. Outside it, bcrypt.compare always says no: such a user could never
    // log in, and a decoy at that cost would not cost what a real check does.
    if (cost < 4 || cost > 31) {
      throw new RegauthError(
        'ERR_INVALID_HTPASSWD',
        `${where}: the entry for user "${user}" has bcrypt cost ${match[1]}, outside 04–31; re-create it with htpasswd -B`,
      );
    }
    // A "/" would let `${account}/*` ACL rules reach into another user's namespace.
    if (!/^[^/\s]+$/.test(user)) {
      throw new RegauthError(
        'ERR_INVALID_HTPASSWD',
        `${where}: user name "${user}" holds "/" or white space, which ACL patterns with \${account} cannot allow safely`,
      );
    }
    // The token endpoint refuses longer names before any check: such a user could never log in.
    if (exceedsUserNameLimit(user)) {
      throw new RegauthError(
        'ERR_INVALID_HTPASSWD',
        `${where}: a user name is longer than ${MAX_USER_NAME_BYTES} bytes; the token server refuses longer names`,
      );
    }
    if (users.has(user)) {
      throw new RegauthError('ERR_INVALID_HTPASSWD', `${where}: user "${user}" appears a second time`);
    }
    users.set(user, { hash, cost });
  });
  return users;
}

/**
 * Node's bcrypt speaks `$2a$`/`$2b$`; `$2y$` (PHP, htpasswd) is the same algorithm under
 * another name. (`$2x$`, hashes made with crypt_blowfish's 8-bit bug, is refused when parsed.)
 */
function normalizeBcrypt(hash: string): string {
  return hash.startsWith('$2y$') ? `$2b$${hash.slice(4)}` : hash;
}

/** The outcome of UserStore.verify. */
export interface PasswordCheck {
  readonly ok: boolean;
  /** A short fingerprint of the stored hash: refresh tokens carry it, so a password change revokes them. */
  readonly hashFingerprint?: string;
}

/** The fingerprint of a stored hash that refresh tokens carry: 16 base64url characters of its SHA-256. */
export function hashFingerprint(hash: string): string {
  return createHash('sha256').update(hash).digest('base64url').slice(0, 16);
}

/** How a UserStore is built; tests pin the decoy key. */
export interface UserStoreOptions {
  /**
   * Picks each unknown name's decoy cost. Left out: a key made once per process, so a name keeps
   * its decoy across reloads, as a real user keeps their hash.
   */
  readonly decoyKey?: Buffer;
}

const PROCESS_DECOY_KEY = randomBytes(32);
const BCRYPT_ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * A hash no password matches, at `cost`: a random salt and digest. bcrypt.compare spends the
 * full key schedule on it, as on a real entry of that cost, and making one costs nothing (a
 * decoy made with bcrypt.hash would cost one check per cost at every load, and at cost 31, days).
 */
function decoyHash(cost: number): string {
  const random = randomBytes(53);
  let tail = '';
  for (const byte of random) tail += BCRYPT_ALPHABET[byte & 63];
  return `$2b$${String(cost).padStart(2, '0')}$${tail}`;
}

type Bcrypt = typeof import('bcrypt');
let bcryptModule: Promise<Bcrypt> | undefined;

/** bcrypt is native and only the server needs it: loaded on first use (see importOptional). */
function loadBcrypt(): Promise<Bcrypt> {
  bcryptModule ??= importOptional(
    'bcrypt',
    'checking htpasswd passwords',
    async () => (await import('bcrypt')).default,
  );
  return bcryptModule;
}

/**
 * Users from an htpasswd file. A wrong password and an unknown name must cost the same time, or
 * the answer time tells who exists. When the file's entries have different bcrypt costs, one
 * decoy cannot match them all: a decoy at the highest cost made unknown names slower than every
 * cheaper user (2.7 ms against 210 ms in one file), and made a flood of unknown names the most
 * expensive requests there are. So each unknown name is compared against a
 * decoy whose cost is drawn from the file's own costs, in their proportions, by a keyed hash of
 * the name — the same name always costs the same, as a real user does.
 */
export class UserStore {
  readonly #users: Map<string, HtpasswdEntry>;
  /** Computed once per load: every token request compares against it. */
  readonly #fingerprints = new Map<string, string>();
  /** One cost per user, sorted: a uniform pick from it follows the file's distribution. */
  readonly #decoyCosts: readonly number[];
  readonly #decoys = new Map<number, string>();
  readonly #decoyKey: Buffer;

  private constructor(users: Map<string, HtpasswdEntry>, options: UserStoreOptions) {
    this.#users = users;
    this.#decoyKey = options.decoyKey ?? PROCESS_DECOY_KEY;
    this.#decoyCosts = [...users.values()].map((e) => e.cost).sort((a, b) => a - b);
    for (const cost of this.#decoyCosts) if (!this.#decoys.has(cost)) this.#decoys.set(cost, decoyHash(cost));
  }

  /** Reads an htpasswd file's text (`file` only names it in errors). Only bcrypt entries are accepted. */
  static async fromText(text: string, file: string, options: UserStoreOptions = {}): Promise<UserStore> {
    const users = parseHtpasswd(text, file);
    // A missing bcrypt stops start-up (or the reload) here, not the first login.
    if (users.size > 0) await loadBcrypt();
    return new UserStore(users, options);
  }

  /** A store with no users: every password check fails. */
  static empty(): UserStore {
    return new UserStore(new Map(), {});
  }

  get size(): number {
    return this.#users.size;
  }

  /** Whether `user` has an entry. */
  has(user: string): boolean {
    return this.#users.has(user);
  }

  /** How many users have each bcrypt cost, lowest cost first. */
  costs(): Map<number, number> {
    const counts = new Map<number, number>();
    for (const cost of this.#decoyCosts) counts.set(cost, (counts.get(cost) ?? 0) + 1);
    return counts;
  }

  /**
   * The users whose entry in `text` is exactly what this store holds: what may stay when a
   * reload finds `text` broken. A user the new file drops or changes is left out.
   */
  retainUnchanged(text: string): UserStore {
    const kept = new Map<string, HtpasswdEntry>();
    for (const raw of text.split(/\r?\n/)) {
      const line = raw.trim();
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const user = line.slice(0, colon);
      const entry = this.#users.get(user);
      if (entry !== undefined && entry.hash === line.slice(colon + 1)) kept.set(user, entry);
    }
    return new UserStore(kept, { decoyKey: this.#decoyKey });
  }

  /** The cost of the decoy an unknown name is compared against; undefined for an empty store. */
  decoyCost(user: string): number | undefined {
    if (this.#decoyCosts.length === 0) return undefined;
    const pick = createHmac('sha256', this.#decoyKey).update(user).digest().readUInt32BE(0);
    return this.#decoyCosts[pick % this.#decoyCosts.length];
  }

  /**
   * A short fingerprint of `user`'s stored hash (see PasswordCheck.hashFingerprint); undefined for an unknown user.
   */
  fingerprint(user: string): string | undefined {
    let fp = this.#fingerprints.get(user);
    if (fp === undefined) {
      const entry = this.#users.get(user);
      if (!entry) return undefined;
      fp = hashFingerprint(entry.hash);
      this.#fingerprints.set(user, fp);
    }
    return fp;
  }

  /**
   * Checks a password with bcrypt. An unknown user costs the same as a wrong password (see the class comment).
   */
  async verify(user: string, password: string): Promise<PasswordCheck> {
    const entry = this.#users.get(user);
    if (!entry) {
      const cost = this.decoyCost(user);
      const decoy = cost === undefined ? undefined : this.#decoys.get(cost);
      if (decoy !== undefined) await (await loadBcrypt()).compare(password, decoy);
      return { ok: false };
    }
    const ok = await (await loadBcrypt()).compare(password, normalizeBcrypt(entry.hash));
    return ok ? { ok, hashFingerprint: hashFingerprint(entry.hash) } : { ok };
  }
}
