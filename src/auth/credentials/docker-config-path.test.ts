import { describe, expect, it } from 'vitest';
import { dockerConfigPath } from './docker-config-path.js';

describe('dockerConfigPath', () => {
  it('uses $DOCKER_CONFIG/config.json when set', () => {
    expect(dockerConfigPath({ env: { DOCKER_CONFIG: '/etc/ci-docker' }, homedir: '/home/u' })).toBe(
      '/etc/ci-docker/config.json',
    );
  });

  it('uses ~/.docker/config.json otherwise, or when DOCKER_CONFIG is empty', () => {
    expect(dockerConfigPath({ env: {}, homedir: '/home/u' })).toBe('/home/u/.docker/config.json');
    expect(dockerConfigPath({ env: { DOCKER_CONFIG: '' }, homedir: '/home/u' })).toBe(
      '/home/u/.docker/config.json',
    );
  });
});
