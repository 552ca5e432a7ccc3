import { describe, expect, it } from 'vitest';
import { isRegauthError } from '../errors/regauth-error.js';
import { CounterDigest, counterDigestSecret } from './counter-digest.js';
import { KeyedDigest } from './keyed-digest.js';
import { sharedDigestSecret } from './shared-keyed-digest.js';
import { testSigning } from './testing/fixtures.js';
import { checkHandlerConfig } from './token-handler-config.js';

function config(secret?: string) {
  return (async () => {
    const { testKeyPair } = await import('./testing/fixtures.js');
    const pair = await testKeyPair();
    return checkHandlerConfig({
      token: {
        issuer: 'i',
        service: 's',
        key: { pem: pair.keyPem },
        certificate: { pem: pair.certPem },
      },
      store: { url: 'redis://127.0.0.1:6379/0', ...(secret === undefined ? {} : { secret }) },
    });
  })();
}

describe('CounterDigest', () => {
  it('switches to a new secret in place, and keeps its keys for the same one', () => {
    const a = Buffer.alloc(32, 1);
    const b = Buffer.alloc(32, 2);
    const digest = new CounterDigest(a);
    expect(digest.key('alice')).toBe(new KeyedDigest(a).key('alice'));
    digest.use(Buffer.from(a));
    expect(digest.key('alice')).toBe(new KeyedDigest(a).key('alice'));
    digest.use(b);
    expect(digest.key('alice')).toBe(new KeyedDigest(b).key('alice'));
    expect(digest.label('alice')).toBe(new KeyedDigest(b).label('alice'));
    expect(digest.key('alice')).not.toBe(new KeyedDigest(a).key('alice'));
  });
});

describe('counterDigestSecret', () => {
  it('derives from the signing key without store.secret, and from the secret alone with it', async () => {
    const signing = await testSigning();
    expect(await counterDigestSecret(await config(), new Date())).toEqual(
      sharedDigestSecret(signing.privateKey),
    );
    const withSecret = await counterDigestSecret(await config('s'.repeat(32)), new Date());
    expect(withSecret).not.toEqual(sharedDigestSecret(signing.privateKey));
    expect(withSecret).toEqual(await counterDigestSecret(await config('s'.repeat(32)), new Date()));
  });

  it('refuses a secret shorter than 32 characters, without echoing it', async () => {
    const err = await counterDigestSecret(await config('short-secret-value'), new Date()).catch(
      (e: unknown) => e,
    );
    expect(isRegauthError(err) && err.code).toBe('ERR_INVALID_CONFIG');
    expect((err as Error).message).toMatch(/store\.secret: must be at least 32 characters/);
    expect((err as Error).message).not.toContain('short-secret-value');
  });
});
