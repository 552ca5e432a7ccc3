import { hkdfSync, timingSafeEqual } from 'node:crypto';
import { RegauthError } from '../errors/regauth-error.js';
import { KeyedDigest } from './keyed-digest.js';
import { sharedDigestSecret } from './shared-keyed-digest.js';
import type { SigningMaterial } from './signing-key.js';
import { loadSigningKeys } from './signing-keys.js';
import type { CheckedHandlerConfig } from './token-handler-config.js';

/** The shortest `store.secret` accepted: 32 characters, such as `openssl rand -hex 16` prints. */
export const MIN_STORE_SECRET_LENGTH = 32;

/**
 * The KeyedDigest that names the counters a shared store keeps, switched in place by a config
 * reload (`use`): replicas with the same config must name a user alike whichever config they
 * started with, or a rotation done by reloading some replicas and restarting others would give
 * each group counters of its own. Names digested before a switch keep their old keys: the
 * guard's own tables keyed by them (cached logins, local counts) start over with the new key.
 */
export class CounterDigest extends KeyedDigest {
  #current: KeyedDigest;
  #secret: Buffer;

  constructor(secret: Buffer) {
    super(secret);
    this.#current = new KeyedDigest(secret);
    this.#secret = secret;
  }

  /** Switches to `secret`; the same secret again changes nothing (a reload without rotation). */
  use(secret: Buffer): void {
    if (secret.length === this.#secret.length && timingSafeEqual(secret, this.#secret)) return;
    this.#current = new KeyedDigest(secret);
    this.#secret = secret;
  }

  override key(value: string): string {
    return this.#current.key(value);
  }

  override userKey(knownUser: string): string {
    return this.#current.userKey(knownUser);
  }

  override label(value: string): string {
    return this.#current.label(value);
  }
}

/**
 * The secret of the counters' digest for `config`, by the same rule at start-up and at every
 * reload: from `store.secret` when given (stable across rotations: counters survive them),
 * else from the signing key, the first of `token.keys` (counters start over at a rotation).
 */
export async function counterDigestSecret(config: CheckedHandlerConfig, now: Date): Promise<Buffer> {
  const given = config.store?.secret;
  if (given !== undefined) {
    const secret = typeof given === 'function' ? await given() : given;
    if (secret.length < MIN_STORE_SECRET_LENGTH) {
      throw new RegauthError(
        'ERR_INVALID_CONFIG',
        `store.secret: must be at least ${MIN_STORE_SECRET_LENGTH} characters; give every replica the same random one (openssl rand -hex 32)`,
      );
    }
    return Buffer.from(
      hkdfSync('sha256', Buffer.from(secret, 'utf8'), 'regauth', 'regauth store secret v1', 32),
    );
  }
  const [first] = await loadSigningKeys(config.token.keys, now);
  return sharedDigestSecret((first as SigningMaterial).privateKey);
}
