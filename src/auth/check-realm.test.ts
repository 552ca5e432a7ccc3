import { describe, expect, it } from 'vitest';
import { isRegauthError } from '../errors/regauth-error.js';
import { checkRealm } from './check-realm.js';

const bearer = (realm?: string) => ({
  scheme: 'bearer',
  params: realm === undefined ? { service: 's' } : { realm, service: 's' },
});

function refusal(realm: string | undefined, registry: string): string {
  try {
    checkRealm(bearer(realm), new URL(registry));
  } catch (err) {
    if (isRegauthError(err)) return err.code;
    throw err;
  }
  return 'accepted';
}

describe('checkRealm', () => {
  it.each([
    // [realm, registry URL, outcome]
    ['https://auth.docker.io/token', 'https://registry-1.docker.io/v2/', 'accepted'],
    ['/token', 'https://ghcr.io/v2/', 'accepted'],
    ['http://auth.example.com/token', 'https://registry.example.com/v2/', 'ERR_INSECURE_REALM'],
    ['http://auth.example.com/token', 'http://registry.example.com/v2/', 'accepted'], // --insecure
    ['http://127.0.0.1:5001/token', 'http://127.0.0.1:5000/v2/', 'accepted'],
    ['http://localhost:5001/token', 'https://localhost:5000/v2/', 'accepted'],
    ['http://10.0.0.5/token', 'https://10.0.0.4/v2/', 'ERR_INSECURE_REALM'],
    ['https://10.0.0.5/token', 'https://10.0.0.4/v2/', 'accepted'],
    ['https://127.0.0.1/token', 'https://registry.example.com/v2/', 'ERR_INSECURE_REALM'],
    ['https://localhost/token', 'https://registry.example.com/v2/', 'ERR_INSECURE_REALM'],
    ['https://169.254.169.254/latest/meta-data', 'https://registry.example.com/v2/', 'ERR_INSECURE_REALM'],
    ['https://[fd00::1]/token', 'https://registry.example.com/v2/', 'ERR_INSECURE_REALM'],
    ['https://192.168.1.10/token', 'http://registry.example.com/v2/', 'ERR_INSECURE_REALM'],
    ['https://user:pw@auth.example.com/token', 'https://registry.example.com/v2/', 'ERR_INVALID_CHALLENGE'],
    ['ftp://auth.example.com/token', 'https://registry.example.com/v2/', 'ERR_INVALID_CHALLENGE'],
    [undefined, 'https://registry.example.com/v2/', 'ERR_INVALID_CHALLENGE'],
  ])('realm %s for a registry at %s: %s', (realm, registry, outcome) => {
    expect(refusal(realm, registry)).toBe(outcome);
  });

  it('resolves a relative realm against the registry and names both in a refusal', () => {
    expect(checkRealm(bearer('/token?x=1'), new URL('https://r.example/v2/a/b/manifests/1')).href).toBe(
      'https://r.example/token?x=1',
    );
    expect(() => checkRealm(bearer('http://a.example/token'), new URL('https://r.example/v2/'))).toThrow(
      'r.example sends clients to http://a.example over plain HTTP; refusing to send credentials there',
    );
  });
});
