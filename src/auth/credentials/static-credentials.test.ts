import { describe, expect, it } from 'vitest';
import { staticCredentials } from './static-credentials.js';

describe('staticCredentials', () => {
  it('offers the credentials to every registry, named by the flags', async () => {
    const source = staticCredentials({ username: 'alice', password: 'pw' });
    expect(await source.find('ghcr.io')).toEqual({
      credential: { username: 'alice', password: 'pw' },
      source: 'the user name and password given',
    });
    expect((await source.find('docker.io'))?.credential.username).toBe('alice');
  });

  it('answers only for its registry when given one, whatever Docker Hub alias is used', async () => {
    const source = staticCredentials({
      username: 'alice',
      password: 'pw',
      registry: 'index.docker.io',
      source: '--src-creds',
    });
    expect(await source.find('docker.io')).toEqual({
      credential: { username: 'alice', password: 'pw' },
      source: '--src-creds',
    });
    expect(await source.find('ghcr.io')).toBeUndefined();
  });

  it('reads the user name <token> as an identity token', async () => {
    const found = await staticCredentials({ username: '<token>', password: 'refresh' }).find('ghcr.io');
    expect(found?.credential).toEqual({ identityToken: 'refresh' });
  });

  it.each([
    [
      { username: '', password: 'pw' },
      'the user name and password given: the user name is empty; give a user name',
    ],
    [
      { username: 'alice', password: '' },
      'the user name and password given: the password is empty; give a password',
    ],
    [
      { username: 'al:ice', password: 'pw' },
      'the user name and password given: the user name contains ":", which Basic authentication cannot carry; check the user name',
    ],
  ])('refuses %j when created', (options, message) => {
    expect(() => staticCredentials(options)).toThrow(expect.objectContaining({ code: 'ERR_USAGE', message }));
  });
});
