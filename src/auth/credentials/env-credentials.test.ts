import { describe, expect, it } from 'vitest';
import { envCredentials } from './env-credentials.js';

describe('envCredentials', () => {
  it('reads REGAUTH_USERNAME and REGAUTH_PASSWORD for every registry', async () => {
    const source = envCredentials({ REGAUTH_USERNAME: 'ci', REGAUTH_PASSWORD: 'pw:with:colons' });
    expect(await source.find('127.0.0.1:5000')).toEqual({
      credential: { username: 'ci', password: 'pw:with:colons' },
      source: 'REGAUTH_USERNAME/REGAUTH_PASSWORD',
    });
  });

  it('ignores the shell variables USER and PWD', async () => {
    const source = envCredentials({ USER: 'root', PWD: '/home/root', USERNAME: 'x', PASSWORD: 'y' });
    expect(await source.find('ghcr.io')).toBeUndefined();
  });

  it('treats empty variables as unset', async () => {
    expect(
      await envCredentials({ REGAUTH_USERNAME: '', REGAUTH_PASSWORD: '' }).find('ghcr.io'),
    ).toBeUndefined();
  });

  it('refuses only one of the two, saying which is missing', () => {
    expect(() => envCredentials({ REGAUTH_USERNAME: 'ci' })).toThrow(
      expect.objectContaining({
        code: 'ERR_USAGE',
        message: 'REGAUTH_USERNAME is set but REGAUTH_PASSWORD is not; set both, or neither',
      }),
    );
    expect(() => envCredentials({ REGAUTH_PASSWORD: 'secret-pw' })).toThrow(
      expect.objectContaining({
        code: 'ERR_USAGE',
        message: 'REGAUTH_PASSWORD is set but REGAUTH_USERNAME is not; set both, or neither',
      }),
    );
  });
});
