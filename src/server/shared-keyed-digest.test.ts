import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeyedDigest } from './keyed-digest.js';
import { sharedKeyedDigest } from './shared-keyed-digest.js';

describe('sharedKeyedDigest', () => {
  it('gives every replica with the same signing key the same keys, and another key other ones', () => {
    const signing = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const a = sharedKeyedDigest(signing);
    const b = sharedKeyedDigest(signing);
    expect(a.key('alice')).toBe(b.key('alice'));
    expect(a.label('alice')).toBe(b.label('alice'));
    expect(sharedKeyedDigest(other).key('alice')).not.toBe(a.key('alice'));
    // What each process made alone before: a key of its own.
    expect(new KeyedDigest().key('alice')).not.toBe(new KeyedDigest().key('alice'));
    expect(a.key('alice')).not.toContain('alice');
  });
});
