import { describe, expect, it } from 'vitest';
import { credentialFromSecret, hasSecret } from './credential.js';

describe('credentialFromSecret', () => {
  it('keeps a user name and password', () => {
    expect(credentialFromSecret('alice', 'pw')).toEqual({ username: 'alice', password: 'pw' });
  });

  it('reads the user name <token> as an identity token, as docker credential helpers mark one', () => {
    expect(credentialFromSecret('<token>', 'refresh-1')).toEqual({ identityToken: 'refresh-1' });
  });

  it('leaves empty fields out rather than setting them to ""', () => {
    expect(credentialFromSecret('alice', '')).toEqual({ username: 'alice' });
    expect(credentialFromSecret('', '')).toEqual({});
    expect(hasSecret(credentialFromSecret('alice', ''))).toBe(false);
    expect(hasSecret({ registryToken: 't' })).toBe(true);
  });
});
