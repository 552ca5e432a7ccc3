import { describe, expect, it } from 'vitest';
import { podmanAuthPath } from './podman-auth-path.js';

describe('podmanAuthPath', () => {
  it('uses $XDG_RUNTIME_DIR/containers/auth.json on Linux', () => {
    expect(
      podmanAuthPath({ env: { XDG_RUNTIME_DIR: '/run/user/1000' }, homedir: '/home/u', platform: 'linux' }),
    ).toBe('/run/user/1000/containers/auth.json');
  });

  it('uses /run/containers/<uid>/auth.json without XDG_RUNTIME_DIR, as containers/image does', () => {
    expect(podmanAuthPath({ env: {}, homedir: '/root', uid: 0, platform: 'linux' })).toBe(
      '/run/containers/0/auth.json',
    );
  });

  it('uses ~/.config/containers/auth.json on macOS and Windows', () => {
    expect(podmanAuthPath({ env: { XDG_RUNTIME_DIR: '/x' }, homedir: '/Users/u', platform: 'darwin' })).toBe(
      '/Users/u/.config/containers/auth.json',
    );
  });
});
