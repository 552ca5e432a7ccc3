import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeyedDigest, MAX_REMEMBERED_KEYS } from './keyed-digest.js';

describe('KeyedDigest', () => {
  it('gives every name a 22-character key, whatever its length', () => {
    const digest = new KeyedDigest();
    for (const name of ['', 'a', 'alice', 'x'.repeat(20_000), 'é'.repeat(5000)]) {
      expect(digest.key(name)).toMatch(/^[A-Za-z0-9_-]{22}$/);
    }
    expect(digest.key('a'.repeat(20_000))).not.toBe(digest.key(`${'a'.repeat(19_999)}b`));
  });

  it('labels a name for logs as unknown:<16 hex digits>, unrelated to its key', () => {
    const digest = new KeyedDigest(Buffer.alloc(32, 1));
    const label = digest.label('correct horse battery staple');
    expect(label).toMatch(/^unknown:[0-9a-f]{16}$/);
    expect(label).not.toContain(digest.key('correct horse battery staple').slice(0, 8));
    expect(digest.label('correct horse battery staple')).toBe(label);
  });

  it('depends on the secret, so labels cannot be matched against guesses elsewhere', () => {
    expect(new KeyedDigest(Buffer.alloc(32, 1)).label('bob')).not.toBe(
      new KeyedDigest(Buffer.alloc(32, 2)).label('bob'),
    );
    expect(new KeyedDigest().key('bob')).not.toBe(new KeyedDigest().key('bob'));
  });

  it("keeps a user's key (the same as key gives) in a table that is emptied when full", () => {
    const digest = new KeyedDigest(Buffer.alloc(32, 3));
    expect(digest.userKey('alice')).toBe(digest.key('alice'));
    expect(digest.userKey('alice')).toBe(digest.key('alice'));
    expect(digest.remembered).toBe(1);
    for (let i = 0; i < MAX_REMEMBERED_KEYS; i++) digest.userKey(`user${i}`);
    expect(digest.remembered).toBeLessThanOrEqual(MAX_REMEMBERED_KEYS);
    expect(digest.userKey('alice')).toBe(digest.key('alice'));
  });

  it('keys and labels a name as createHmac did, so replicas of older versions share counters', () => {
    const secret = Buffer.alloc(32, 9);
    const tableKey = createHmac('sha256', secret).update('regauth table key v1').digest();
    const logKey = createHmac('sha256', secret).update('regauth log label v1').digest();
    const digest = new KeyedDigest(secret);
    for (const name of ['alice', 'é', 'x'.repeat(3000)]) {
      expect(digest.key(name)).toBe(
        createHmac('sha256', tableKey).update(name).digest().subarray(0, 16).toString('base64url'),
      );
      expect(digest.label(name)).toBe(
        `unknown:${createHmac('sha256', logKey).update(name).digest().subarray(0, 8).toString('hex')}`,
      );
    }
  });
});
