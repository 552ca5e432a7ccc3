import { createHmac, randomBytes } from 'node:crypto';
import { HmacSha256 } from './hmac-sha256.js';

/**
 * Keys kept per digest by userKey: one per user logging in at once is enough to spare the HMAC
 * of every cached login (bench scenario 8), and the table is emptied when full.
 */
export const MAX_REMEMBERED_KEYS = 10_000;

/**
 * Fixed-size stand-ins for names a client chose: the keys of every per-user table, and the label
 * a log line shows for a name that is no user.
 *
 * Tables keyed by the raw name let a client pick the key. V8 hashes a string of more than
 * 16,383 characters by its length alone, so equal-length long names land in one bucket and
 * every Map operation turns linear (hash flooding); long keys also cost their length in memory
 * per entry. An HMAC under a key made at start-up gives every entry the same small size and
 * leaves a client no way to aim at a bucket.
 *
 * The log label is a separate HMAC (another derived key), cut to 8 bytes: enough to see one
 * name come back within a run, and useless for guessing the name offline, since the key never
 * leaves the process. A failed login's user name is often a password typed into the wrong field.
 */
export class KeyedDigest {
  readonly #tableKey: HmacSha256;
  readonly #logKey: HmacSha256;
  readonly #remembered = new Map<string, string>();

  constructor(secret: Buffer = randomBytes(32)) {
    this.#tableKey = new HmacSha256(createHmac('sha256', secret).update('regauth table key v1').digest());
    this.#logKey = new HmacSha256(createHmac('sha256', secret).update('regauth log label v1').digest());
  }

  /** 16 bytes (base64url, 22 characters) for any input: a table key. */
  key(value: string): string {
    return this.#tableKey.digest([value]).subarray(0, 16).toString('base64url');
  }

  /**
   * The same key as `key`, kept for the next call. Only for names an authenticator holds (the
   * users of the htpasswd file…): those are no secret and already in memory, while any other
   * name may be a password typed into the wrong field and must not be kept.
   */
  userKey(knownUser: string): string {
    let key = this.#remembered.get(knownUser);
    if (key === undefined) {
      key = this.key(knownUser);
      if (this.#remembered.size >= MAX_REMEMBERED_KEYS) this.#remembered.clear();
      this.#remembered.set(knownUser, key);
    }
    return key;
  }

  /** Names whose key userKey keeps now. */
  get remembered(): number {
    return this.#remembered.size;
  }

  /** `unknown:` and 16 hex digits: what a log line says instead of a name that is no user. */
  label(value: string): string {
    return `unknown:${this.#logKey.digest([value]).subarray(0, 8).toString('hex')}`;
  }
}
