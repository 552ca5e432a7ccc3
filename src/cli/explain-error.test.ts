import { describe, expect, it } from 'vitest';
import { RegauthError } from '../errors/regauth-error.js';
import { explainError, explainedMessage } from './explain-error.js';

describe('explainError', () => {
  it('words each hint as the CLI advice it used to be in the message', () => {
    const advice = (err: RegauthError) => explainError(err);
    expect(
      advice(new RegauthError('ERR_UNAUTHORIZED', 'x', { hint: { kind: 'login', reason: 'refused' } })),
    ).toBe('check them or log in again with regauth login');
    expect(advice(new RegauthError('ERR_NETWORK', 'x', { hint: { kind: 'tls' } }))).toBe(
      'for a private CA pass --ca-file; for a plain-HTTP registry pass --insecure',
    );
    expect(
      advice(new RegauthError('ERR_NO_MATCHING_PLATFORM', 'x', { hint: { kind: 'platform', offered: [] } })),
    ).toBe('choose one with --platform');
    expect(
      advice(
        new RegauthError('ERR_REGISTRY', 'x', {
          hint: { kind: 'restore-tag', source: 'r/a@sha256:1', tag: 'v1' },
        }),
      ),
    ).toBe('restore it with regauth tag r/a@sha256:1 v1');
    expect(
      advice(
        new RegauthError('ERR_REFUSED', 'x', {
          hint: {
            kind: 'shared-digest',
            name: 'r/a',
            tag: 'v1',
            digest: 'sha256:1',
            otherTags: ['v2', 'latest'],
          },
        }),
      ),
    ).toBe('to remove only this tag: regauth untag r/a:v1; to delete the image with all 3 tags: add --force');
    expect(advice(new RegauthError('ERR_INVALID_KEY', 'x', { hint: { kind: 'keygen' } }))).toBe(
      'regauth keygen makes a key and a certificate that match',
    );
    expect(advice(new RegauthError('ERR_REGISTRY', 'x'))).toBeUndefined();
  });

  it("puts a refusal's access advice first, naming the registry", () => {
    const err = new RegauthError('ERR_DENIED', 'no', {
      access: { registry: 'r.example', repository: 'a', actions: ['pull'], as: 'anonymous' },
      hint: { kind: 'login', reason: 'missing' },
    });
    expect(explainedMessage(err)).toBe(
      'no; log in with `regauth login r.example`, or pass -u USER with --password-stdin',
    );
    expect(explainedMessage(new Error('plain'))).toBe('plain');
  });
});
