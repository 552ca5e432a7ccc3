import { describe, expect, it } from 'vitest';
import { RegauthError } from '../errors/regauth-error.js';
import {
  checkImagePlatform,
  formatPlatform,
  hostPlatform,
  parsePlatform,
  selectPlatform,
} from './select-platform.js';

function errorOf(fn: () => unknown): RegauthError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RegauthError);
    return err as RegauthError;
  }
  throw new Error('expected a RegauthError, but nothing was thrown');
}

describe('parsePlatform', () => {
  it('reads os/arch and os/arch/variant', () => {
    expect(parsePlatform('linux/amd64')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect('variant' in parsePlatform('linux/amd64')).toBe(false);
    expect(parsePlatform('linux/arm/v7')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(parsePlatform('windows/amd64/10.0.17763')).toEqual({
      os: 'windows',
      architecture: 'amd64',
      variant: '10.0.17763',
    });
  });

  it.each([
    'linux',
    'linux/arm/v7/x',
    '',
    '/amd64',
    'linux//v7',
    'Linux/AMD64',
    'linux/amd 64',
    'linux\\amd64',
  ])('refuses %j with ERR_USAGE', (text) => {
    const err = errorOf(() => parsePlatform(text));
    expect(err.code).toBe('ERR_USAGE');
    expect(err.message).toContain('os/arch[/variant]');
  });

  it('is the inverse of formatPlatform', () => {
    for (const text of ['linux/amd64', 'linux/arm64/v8', 'darwin/arm64']) {
      expect(formatPlatform(parsePlatform(text))).toBe(text);
    }
  });
});

describe('hostPlatform', () => {
  it('names the architecture in OCI terms', () => {
    const p = hostPlatform();
    expect(['amd64', 'arm64', '386', 'arm', 'ppc64le', 's390x']).toContain(p.architecture);
    expect(p.variant).toBe(p.architecture === 'arm64' ? 'v8' : undefined);
  });
});

describe('selectPlatform', () => {
  const index = {
    manifests: [
      { digest: 'sha256:amd64', platform: { os: 'linux', architecture: 'amd64' } },
      { digest: 'sha256:armv6', platform: { os: 'linux', architecture: 'arm', variant: 'v6' } },
      { digest: 'sha256:armv7', platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
      { digest: 'sha256:arm64', platform: { os: 'linux', architecture: 'arm64' } },
      { digest: 'sha256:win', platform: { os: 'windows', architecture: 'amd64' } },
      { digest: 'sha256:attestation' },
    ],
  };

  it('picks the entry whose os and architecture match exactly', () => {
    expect(selectPlatform(index, { os: 'linux', architecture: 'amd64' }).digest).toBe('sha256:amd64');
    expect(selectPlatform(index, { os: 'windows', architecture: 'amd64' }).digest).toBe('sha256:win');
  });

  it('matches the variant when one is asked for', () => {
    expect(selectPlatform(index, { os: 'linux', architecture: 'arm', variant: 'v7' }).digest).toBe(
      'sha256:armv7',
    );
    expect(selectPlatform(index, { os: 'linux', architecture: 'arm', variant: 'v6' }).digest).toBe(
      'sha256:armv6',
    );
  });

  it('treats arm64 without a variant as arm64/v8, both ways', () => {
    expect(selectPlatform(index, { os: 'linux', architecture: 'arm64', variant: 'v8' }).digest).toBe(
      'sha256:arm64',
    );
    const explicit = {
      manifests: [{ digest: 'sha256:v8', platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }],
    };
    expect(selectPlatform(explicit, { os: 'linux', architecture: 'arm64' }).digest).toBe('sha256:v8');
  });

  it('does not take another variant for the one asked', () => {
    const err = errorOf(() => selectPlatform(index, { os: 'linux', architecture: 'arm64', variant: 'v9' }));
    expect(err.code).toBe('ERR_NO_MATCHING_PLATFORM');
  });

  it('refuses with ERR_NO_MATCHING_PLATFORM, listing the platforms the index offers', () => {
    const err = errorOf(() => selectPlatform(index, { os: 'linux', architecture: 's390x' }));
    expect(err.code).toBe('ERR_NO_MATCHING_PLATFORM');
    expect(err.message).toContain('linux/s390x');
    expect(err.message).toContain('linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64, windows/amd64, ?');
  });

  it('names the index it searched when told', () => {
    const err = errorOf(() =>
      selectPlatform(index, { os: 'linux', architecture: 's390x' }, 'r.example/app:v1'),
    );
    expect(err.message).toMatch(
      /^no manifest for linux\/s390x in r\.example\/app:v1 \(it has: linux\/amd64, /,
    );
  });

  it('says the index has nothing when it lists no manifests', () => {
    const err = errorOf(() => selectPlatform({}, { os: 'linux', architecture: 'amd64' }));
    expect(err.message).toContain('it has: nothing');
  });
});

describe('checkImagePlatform', () => {
  const WHAT = 'r.example/app:v1';

  it('accepts a config of the platform asked for, arm64 with or without v8', () => {
    checkImagePlatform({ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'amd64' }, WHAT);
    checkImagePlatform(
      { os: 'linux', architecture: 'arm64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
      WHAT,
    );
    checkImagePlatform(
      { os: 'linux', architecture: 'arm', variant: 'v7' },
      { os: 'linux', architecture: 'arm' },
      WHAT,
    );
  });

  it('refuses another platform, saying what the image is and how to take it anyway', () => {
    const err = errorOf(() =>
      checkImagePlatform(
        { os: 'linux', architecture: 'arm64' },
        { os: 'linux', architecture: 'amd64' },
        WHAT,
      ),
    );
    expect(err.code).toBe('ERR_NO_MATCHING_PLATFORM');
    expect(err.message).toBe('r.example/app:v1 is linux/arm64 only, not linux/amd64');
    expect(err.hint).toEqual({ kind: 'platform-mismatch', actual: 'linux/arm64', wanted: 'linux/amd64' });
  });

  it('refuses another variant or os', () => {
    expect(
      errorOf(() =>
        checkImagePlatform(
          { os: 'linux', architecture: 'arm', variant: 'v6' },
          { os: 'linux', architecture: 'arm', variant: 'v7' },
          WHAT,
        ),
      ).message,
    ).toContain('is linux/arm/v6 only');
    expect(
      errorOf(() =>
        checkImagePlatform(
          { os: 'windows', architecture: 'amd64' },
          { os: 'linux', architecture: 'amd64' },
          WHAT,
        ),
      ).message,
    ).toContain('is windows/amd64 only');
  });

  it('lets a config that names no platform (an artifact) through', () => {
    checkImagePlatform({}, { os: 'linux', architecture: 'amd64' }, WHAT);
    checkImagePlatform({ os: 7, architecture: null }, { os: 'linux', architecture: 'amd64' }, WHAT);
  });
});
