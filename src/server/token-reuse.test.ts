import { describe, expect, it } from 'vitest';
import { TokenReuse } from './token-reuse.js';

const token = (id: string) => ({ token: id, expiresIn: 300, issuedAt: new Date(0) });
const pull = [{ type: 'repository', name: 'a/b', actions: ['pull'] }];
const push = [{ type: 'repository', name: 'a/b', actions: ['pull', 'push'] }];

describe('TokenReuse', () => {
  it('hands the same token to the same subject for the same grant within its window, and then no more', () => {
    let now = 1000;
    const reuse = new TokenReuse(5, () => now);
    const key = TokenReuse.key('alice', 'reg', pull);
    reuse.remember(key, token('t1'));
    now += 4999;
    expect(reuse.get(key)?.token).toBe('t1');
    now += 1;
    expect(reuse.get(key)).toBeUndefined();
  });

  it('keys by subject, audience and grant, so nobody gets a token meant for another', () => {
    expect(TokenReuse.key('alice', 'reg', pull)).not.toBe(TokenReuse.key('bob', 'reg', pull));
    expect(TokenReuse.key('alice', 'reg', pull)).not.toBe(TokenReuse.key('alice', 'other', pull));
    expect(TokenReuse.key('alice', 'reg', pull)).not.toBe(TokenReuse.key('alice', 'reg', push));
    expect(TokenReuse.key('', 'reg', pull)).not.toBe(TokenReuse.key('alice', 'reg', pull));
  });

  it('does nothing when set to 0 seconds, and forgets everything on clear()', () => {
    const off = new TokenReuse(0);
    off.remember('k', token('t'));
    expect(off.get('k')).toBeUndefined();
    const on = new TokenReuse(10);
    on.remember('k', token('t'));
    on.clear();
    expect(on.get('k')).toBeUndefined();
  });
});
