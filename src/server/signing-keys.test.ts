import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isRegauthError } from '../errors/regauth-error.js';
import { generateSigningKey } from './generate-signing-key.js';
import { certificateBundle, loadSigningKeys } from './signing-keys.js';
import { testKeyPair } from './testing/fixtures.js';

const pem = (text: string) => ({ pem: text });

async function failure(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof Error)) throw new Error('expected a failure');
  return error;
}

describe('loadSigningKeys', () => {
  it('loads every pair in order, and the bundle holds each certificate once', async () => {
    const [es, rsa] = await Promise.all([testKeyPair('ES256'), testKeyPair('RS256')]);
    const keys = await loadSigningKeys([
      { path: 'token.keys[0]', key: pem(rsa.keyPem), certificate: pem(rsa.certPem) },
      { path: 'token.keys[1]', key: pem(es.keyPem), certificate: pem(es.certPem) },
    ]);
    expect(keys.map((k) => k.algorithm)).toEqual(['RS256', 'ES256']);
    const bundle = certificateBundle([...keys, ...keys]);
    const certificates = bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    expect(certificates.map((c) => new X509Certificate(c).raw.toString('base64'))).toEqual([
      new X509Certificate(rsa.certPem).raw.toString('base64'),
      new X509Certificate(es.certPem).raw.toString('base64'),
    ]);
  });

  it('names the pair whose certificate belongs to another key', async () => {
    const [es, rsa] = await Promise.all([testKeyPair('ES256'), testKeyPair('RS256')]);
    const error = await failure(
      loadSigningKeys([
        { path: 'token.keys[0]', key: pem(es.keyPem), certificate: pem(es.certPem) },
        { path: 'token.keys[1]', key: { file: '/keys/k1.pem' }, certificate: pem(rsa.certPem) },
      ]),
    );
    // The file does not exist: reading fails first, naming the config key and the file.
    expect(error.message).toContain('token.keys[1].key');
    expect(error.message).toContain('/keys/k1.pem');
    const mismatch = await failure(
      loadSigningKeys([
        { path: 'token.keys[0]', key: pem(es.keyPem), certificate: pem(es.certPem) },
        { path: 'token.keys[1]', key: pem(es.keyPem), certificate: pem(rsa.certPem) },
      ]),
    );
    expect(isRegauthError(mismatch) && mismatch.code).toBe('ERR_INVALID_KEY');
    expect(mismatch.message).toMatch(
      /^token\.keys\[1\]\.certificate: the first certificate is not for the key/,
    );
  });

  it('names the pair whose certificate expired, even when it is not the signing one', async () => {
    const es = await testKeyPair('ES256');
    const old = await generateSigningKey({ days: 1, now: new Date(Date.now() - 3 * 86_400_000) });
    const error = await failure(
      loadSigningKeys([
        { path: 'token.keys[0]', key: pem(es.keyPem), certificate: pem(es.certPem) },
        { path: 'token.keys[1]', key: pem(old.keyPem), certificate: pem(old.certPem) },
      ]),
    );
    expect(error.message).toMatch(/^token\.keys\[1\]\.certificate: the certificate is valid from .* not now/);
  });

  it('refuses the same key listed twice', async () => {
    const es = await testKeyPair('ES256');
    const pair = { key: pem(es.keyPem), certificate: pem(es.certPem) };
    const error = await failure(
      loadSigningKeys([
        { path: 'token.keys[0]', ...pair },
        { path: 'token.keys[1]', ...pair },
      ]),
    );
    expect(error.message).toBe(
      'token.keys[1]: the same key as token.keys[0]; list each key once (a rotation adds a new key)',
    );
  });
});
