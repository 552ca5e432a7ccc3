import { createHash } from 'node:crypto';
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

  it('keys a grant by the SHA-256 of subject, audience and grant as before: 43 base64url characters', () => {
    const expected = createHash('sha256')
      .update(JSON.stringify(['alice', 'reg', [['repository', 'a/b', ['pull', 'push']]]]))
      .digest('base64url');
    expect(TokenReuse.key('alice', 'reg', push)).toBe(expected);
    expect(TokenReuse.key('x'.repeat(5000), 'reg', push)).toMatch(/^[A-Za-z0-9_-]{43}$/);
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

  it('keys by a fixed-size digest, however long the subject and grant are', () => {
    const long = [{ type: 'repository', name: 'a'.repeat(255), actions: ['pull'] }];
    expect(TokenReuse.key('x'.repeat(256), 'reg', long)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(TokenReuse.key('alice', 'reg', pull)).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('holds no more token bytes than its cap, dropping the oldest first', () => {
    const reuse = new TokenReuse(60, () => 0, 1000, 10_000);
    for (let i = 0; i < 50; i++) reuse.remember(`k${i}`, token(`${i}`.padEnd(1000, 'x')));
    expect(reuse.bytes).toBeLessThanOrEqual(10_000);
    expect(reuse.size).toBe(10);
    expect(reuse.get('k0')).toBeUndefined();
    expect(reuse.get('k49')?.token).toMatch(/^49x/);
  });

  it('holds no more entries than its cap', () => {
    const reuse = new TokenReuse(60, () => 0, 3);
    for (let i = 0; i < 10; i++) reuse.remember(`k${i}`, token(`t${i}`));
    expect(reuse.size).toBe(3);
    expect(reuse.bytes).toBe(6);
    expect(reuse.get('k9')?.token).toBe('t9');
  });

  it('drops expired tokens on sweep() and counts their bytes back', () => {
    let now = 0;
    const reuse = new TokenReuse(5, () => now);
    reuse.remember('a', token('aaaa'));
    now = 3000;
    reuse.remember('b', token('bb'));
    now = 5000;
    reuse.sweep();
    expect(reuse.size).toBe(1);
    expect(reuse.bytes).toBe(2);
  });
});
