import { createHash } from 'node:crypto';
import bcrypt from 'bcrypt';
import { RegauthError } from '../errors/regauth-error.js';

/** bcrypt hashes as `htpasswd -B` writes them (`$2y$`), and as other tools write them. */
const BCRYPT_RE = /^\$2[aby]\$(\d{2})\$[./A-Za-z0-9]{53}$/;

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
    // bcrypt's cost is 04–31. Outside it, bcrypt.compare always says no, and bcrypt.hash (which
    // makes the decoy from the file's highest cost) did not return for 32 or 99: start-up hung.
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

export interface PasswordCheck {
  readonly ok: boolean;
  /** A short fingerprint of the stored hash: refresh tokens carry it, so a password change revokes them. */
  readonly hashFingerprint?: string;
}

export function hashFingerprint(hash: string): string {
  return createHash('sha256').update(hash).digest('base64url').slice(0, 16);
}

/**
 * Users from an htpasswd file. Unknown users are checked against a decoy hash of the file's
 * usual cost, so a wrong user name costs the same time as a wrong password (PROTOCOL.md §6).
 */
export class UserStore {
  readonly #users: Map<string, HtpasswdEntry>;
  /** Computed once per load: every token request compares against it. */
  readonly #fingerprints = new Map<string, string>();
  readonly #decoy: string;

  private constructor(users: Map<string, HtpasswdEntry>, decoy: string) {
    this.#users = users;
    this.#decoy = decoy;
  }

  static async fromText(text: string, file: string): Promise<UserStore> {
    const users = parseHtpasswd(text, file);
    const costs = [...users.values()].map((e) => e.cost);
    // The highest cost in the file: an unknown name then never answers faster than a known one.
    const cost = costs.length > 0 ? Math.max(...costs) : 10;
    const decoy = await bcrypt.hash('regauth decoy password', cost);
    return new UserStore(users, decoy);
  }

  static empty(): UserStore {
    return new UserStore(new Map(), '');
  }

  get size(): number {
    return this.#users.size;
  }

  has(user: string): boolean {
    return this.#users.has(user);
  }

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

  async verify(user: string, password: string): Promise<PasswordCheck> {
    const entry = this.#users.get(user);
    if (!entry) {
      if (this.#decoy !== '') await bcrypt.compare(password, this.#decoy);
      return { ok: false };
    }
    const ok = await bcrypt.compare(password, normalizeBcrypt(entry.hash));
    return ok ? { ok, hashFingerprint: hashFingerprint(entry.hash) } : { ok };
  }
}
