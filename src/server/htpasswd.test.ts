import bcrypt from 'bcrypt';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { RegauthError } from '../errors/regauth-error.js';
import { hashFingerprint, parseHtpasswd, UserStore } from './htpasswd.js';

/** A bcrypt hash as `htpasswd -B` writes it: node's bcrypt says `$2b$`, htpasswd says `$2y$`. */
async function htpasswdHash(password: string, cost = 4): Promise<string> {
  const hash = await bcrypt.hash(password, cost);
  expect(hash.startsWith('$2b$')).toBe(true);
  return `$2y$${hash.slice(4)}`;
}

function htpasswdError(text: string, file = 'users.htpasswd'): RegauthError {
  try {
    parseHtpasswd(text, file);
  } catch (err) {
    expect(err).toBeInstanceOf(RegauthError);
    expect((err as RegauthError).code).toBe('ERR_INVALID_HTPASSWD');
    return err as RegauthError;
  }
  throw new Error('expected ERR_INVALID_HTPASSWD, but the file was accepted');
}

let aliceHash: string;
let bobHash: string;

beforeAll(async () => {
  aliceHash = await htpasswdHash('alice-secret');
  bobHash = await htpasswdHash('bob-secret', 5);
});

describe('parseHtpasswd', () => {
  it('reads bcrypt entries with their cost', () => {
    const users = parseHtpasswd(`alice:${aliceHash}\nbob:${bobHash}\n`, 'users.htpasswd');
    expect([...users.keys()]).toEqual(['alice', 'bob']);
    expect(users.get('alice')).toEqual({ hash: aliceHash, cost: 4 });
    expect(users.get('bob')).toEqual({ hash: bobHash, cost: 5 });
  });

  it('accepts the $2y$, $2b$ and $2a$ spellings of bcrypt', () => {
    const rest = aliceHash.slice(4);
    const users = parseHtpasswd(`y:$2y$${rest}\nb:$2b$${rest}\na:$2a$${rest}`, 'users.htpasswd');
    expect(users.get('y')?.hash).toBe(`$2y$${rest}`);
    expect(users.get('b')?.hash).toBe(`$2b$${rest}`);
    expect(users.get('a')?.hash).toBe(`$2a$${rest}`);
  });

  it('skips comments, blank lines and surrounding white space, and reads CRLF files', () => {
    const users = parseHtpasswd(`# users\r\n\r\n   \r\n  alice:${aliceHash}  \r\n# bob left\r\n`, 'f');
    expect([...users.entries()]).toEqual([['alice', { hash: aliceHash, cost: 4 }]]);
  });

  it('reads an empty file as no users', () => {
    expect(parseHtpasswd('', 'f').size).toBe(0);
  });

  it('rejects an MD5 ($apr1$) entry, naming the file, line and user', () => {
    const err = htpasswdError(
      `alice:${aliceHash}\n# comment\ncarol:$apr1$ZvJZ5ugF$9DhbVCVdO3Ny2nN1LJ1Gq/\n`,
      '/etc/regauth/users.htpasswd',
    );
    expect(err.message).toContain('/etc/regauth/users.htpasswd:3:');
    expect(err.message).toContain('"carol"');
    expect(err.message).toContain('MD5 ($apr1$)');
    expect(err.message).toContain('htpasswd -B');
  });

  it('rejects a SHA-1 ({SHA}) entry, naming the file, line and user', () => {
    const err = htpasswdError('\ndave:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=', 'users.htpasswd');
    expect(err.message).toContain('users.htpasswd:2:');
    expect(err.message).toContain('"dave"');
    expect(err.message).toContain('SHA-1 ({SHA})');
  });

  it('rejects a crypt entry, naming the file, line and user', () => {
    const err = htpasswdError('erin:rl0uD0Vx7r2Nc', 'users.htpasswd');
    expect(err.message).toContain('users.htpasswd:1:');
    expect(err.message).toContain('"erin"');
    expect(err.message).toContain('not a bcrypt hash');
  });

  it('rejects a plain-text password', () => {
    expect(htpasswdError('frank:hunter2').message).toContain('"frank"');
  });

  it('rejects a truncated bcrypt hash', () => {
    expect(htpasswdError(`alice:${aliceHash.slice(0, -1)}`).message).toContain('not a bcrypt hash');
  });

  it('rejects a bcrypt cost outside 04–31', () => {
    const rest = aliceHash.slice('$2y$04'.length);
    expect(htpasswdError(`alice:$2y$99${rest}`).message).toContain(
      'users.htpasswd:1: the entry for user "alice" has bcrypt cost 99',
    );
    expect(htpasswdError(`alice:$2y$32${rest}`).message).toContain('cost 32');
    expect(htpasswdError(`alice:$2y$03${rest}`).message).toContain('cost 03');
    expect(parseHtpasswd(`alice:$2y$31${rest}`, 'f').get('alice')?.cost).toBe(31);
  });

  it('rejects a user name with "/" that could reach into another namespace through ${account}', async () => {
    const hash = await htpasswdHash('pw');
    expect(htpasswdError(`ok:${hash}\nalice/x:${hash}\n`).message).toMatch(
      /users\.htpasswd:2: user name "alice\/x"/,
    );
  });

  it('rejects a user name over 256 bytes, which the token endpoint would refuse to check', () => {
    expect(htpasswdError(`${'é'.repeat(129)}:${aliceHash}`).message).toContain(
      'users.htpasswd:1: a user name is longer than 256 bytes',
    );
    expect(parseHtpasswd(`${'é'.repeat(128)}:${aliceHash}`, 'f').size).toBe(1);
  });

  it('rejects $2x$ hashes, made with the 8-bit bug', async () => {
    const hash = await htpasswdHash('pw');
    expect(htpasswdError(`alice:$2x$${hash.slice(4)}`).message).toMatch(/users\.htpasswd:1: .*"alice"/);
  });

  it('rejects a line without a user name', () => {
    expect(htpasswdError(`alice:${aliceHash}\n:${bobHash}`).message).toContain('users.htpasswd:2:');
    expect(htpasswdError('just-a-name').message).toContain('users.htpasswd:1:');
  });

  it('rejects a user listed twice, naming the second line', () => {
    const err = htpasswdError(`alice:${aliceHash}\nbob:${bobHash}\nalice:${bobHash}`);
    expect(err.message).toContain('users.htpasswd:3:');
    expect(err.message).toContain('"alice" appears a second time');
  });
});

describe('UserStore', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('knows the users of the file', async () => {
    const store = await UserStore.fromText(`alice:${aliceHash}\nbob:${bobHash}`, 'f');
    expect(store.size).toBe(2);
    expect(store.has('alice')).toBe(true);
    expect(store.has('carol')).toBe(false);
    expect(store.fingerprint('alice')).toBe(hashFingerprint(aliceHash));
    expect(store.fingerprint('carol')).toBeUndefined();
  });

  it('accepts the right password of a $2y$ entry and returns the fingerprint of its hash', async () => {
    const store = await UserStore.fromText(`alice:${aliceHash}\nbob:${bobHash}`, 'f');
    expect(await store.verify('alice', 'alice-secret')).toEqual({
      ok: true,
      hashFingerprint: hashFingerprint(aliceHash),
    });
    expect(await store.verify('bob', 'bob-secret')).toEqual({
      ok: true,
      hashFingerprint: hashFingerprint(bobHash),
    });
  });

  it('accepts $2b$ and $2a$ entries', async () => {
    const b = await bcrypt.hash('pw-b', 4);
    const a = `$2a$${(await bcrypt.hash('pw-a', 4)).slice(4)}`;
    const store = await UserStore.fromText(`b:${b}\na:${a}`, 'f');
    expect((await store.verify('b', 'pw-b')).ok).toBe(true);
    expect((await store.verify('a', 'pw-a')).ok).toBe(true);
  });

  it('refuses a wrong password without a fingerprint', async () => {
    const store = await UserStore.fromText(`alice:${aliceHash}\nbob:${bobHash}`, 'f');
    expect(await store.verify('alice', 'bob-secret')).toEqual({ ok: false });
    expect(await store.verify('alice', 'alice-secreT')).toEqual({ ok: false });
    expect(await store.verify('alice', '')).toEqual({ ok: false });
  });

  it('refuses an unknown user, even with a password that is right for someone else', async () => {
    const store = await UserStore.fromText(`alice:${aliceHash}`, 'f');
    expect(await store.verify('carol', 'alice-secret')).toEqual({ ok: false });
    expect(await store.verify('Alice', 'alice-secret')).toEqual({ ok: false });
  });

  it('spends one bcrypt compare on an unknown user, against a decoy at a cost of the file', async () => {
    // Deterministic stand-in for a timing test: an unknown name must cost one bcrypt compare, as
    // a wrong password does, at a cost some real entry has.
    const store = await UserStore.fromText(`alice:${aliceHash}\nbob:${bobHash}`, 'f');
    const compare = vi.spyOn(bcrypt, 'compare');
    expect(await store.verify('mallory', 'guess')).toEqual({ ok: false });
    expect(compare).toHaveBeenCalledTimes(1);
    const [password, decoy] = compare.mock.calls[0] as unknown as [string, string];
    expect(password).toBe('guess');
    const cost = store.decoyCost('mallory');
    expect([4, 5]).toContain(cost);
    expect(decoy).toMatch(new RegExp(`^\\$2b\\$0${cost}\\$[./A-Za-z0-9]{53}$`));
    expect(decoy).not.toBe(bobHash.replace('$2y$', '$2b$'));
    expect(decoy).not.toBe(aliceHash.replace('$2y$', '$2b$'));
  });

  it('draws decoy costs from the costs of the file, in their proportions, the same for a name each time', async () => {
    // Three users at cost 4 and one at cost 6: about three unknown names in four get cost 4.
    const cheap = [1, 2, 3].map((i) => `u${i}:${aliceHash}`);
    const text = [...cheap, `dear:$2y$06$${'a'.repeat(53)}`].join('\n');
    const store = await UserStore.fromText(text, 'f', { decoyKey: Buffer.alloc(32, 1) });
    const names = Array.from({ length: 2000 }, (_, i) => `unknown-${i}`);
    const costs = names.map((n) => store.decoyCost(n));
    expect(new Set(costs)).toEqual(new Set([4, 6]));
    const share = costs.filter((c) => c === 4).length / names.length;
    expect(share).toBeGreaterThan(0.7);
    expect(share).toBeLessThan(0.8);
    expect(names.map((n) => store.decoyCost(n))).toEqual(costs);
    // Another key picks differently, with the same proportions.
    const other = await UserStore.fromText(text, 'f', { decoyKey: Buffer.alloc(32, 2) });
    expect(names.map((n) => other.decoyCost(n))).not.toEqual(costs);
  });

  it('never compares an unknown name at a cost above the highest of the file', async () => {
    // The old decoy took the file's highest cost for every unknown name: with one costly user,
    // unknown names were slower than every cheap user by that factor (issue: 2.7 ms vs 210 ms).
    const store = await UserStore.fromText(`alice:${aliceHash}\nbob:${bobHash}`, 'f');
    const compare = vi.spyOn(bcrypt, 'compare');
    for (let i = 0; i < 20; i++) await store.verify(`nobody-${i}`, 'x');
    const used = compare.mock.calls.map(([, hash]) => Number((hash as string).slice(4, 6)));
    expect(used.every((c) => c === 4 || c === 5)).toBe(true);
    expect(used).toContain(4);
  });

  it('counts users per cost', async () => {
    const store = await UserStore.fromText(`alice:${aliceHash}\nbob:${bobHash}\ncarol:${aliceHash}`, 'f');
    expect([...store.costs()]).toEqual([
      [4, 2],
      [5, 1],
    ]);
  });

  it('keeps, of a broken new file, only the users whose entry is unchanged', async () => {
    const store = await UserStore.fromText(`alice:${aliceHash}\nbob:${bobHash}\ncarol:${aliceHash}`, 'f');
    // bob's entry changed (to a hash the parser refuses), carol is gone, alice is as she was.
    const kept = store.retainUnchanged(`alice:${aliceHash}\nbob:$apr1$abc$def\n`);
    expect(kept.size).toBe(1);
    expect(kept.has('alice')).toBe(true);
    expect(kept.has('bob')).toBe(false);
    expect(kept.has('carol')).toBe(false);
    expect((await kept.verify('alice', 'alice-secret')).ok).toBe(true);
  });

  it('spends the same single compare on a known user with a wrong password', async () => {
    const store = await UserStore.fromText(`alice:${aliceHash}`, 'f');
    const compare = vi.spyOn(bcrypt, 'compare');
    expect(await store.verify('alice', 'guess')).toEqual({ ok: false });
    expect(compare).toHaveBeenCalledTimes(1);
    // The $2y$ entry reaches node's bcrypt as $2b$, which is what makes it verify at all.
    expect(compare.mock.calls[0]).toEqual(['guess', `$2b$${aliceHash.slice(4)}`]);
  });

  it('has nobody to verify when empty, and skips the decoy', async () => {
    const store = UserStore.empty();
    const compare = vi.spyOn(bcrypt, 'compare');
    expect(store.size).toBe(0);
    expect(await store.verify('alice', 'alice-secret')).toEqual({ ok: false });
    expect(compare).not.toHaveBeenCalled();
  });

  it('fails to build from an invalid file with the parser error', async () => {
    await expect(UserStore.fromText('alice:plain', 'users.htpasswd')).rejects.toMatchObject({
      code: 'ERR_INVALID_HTPASSWD',
      message: expect.stringContaining('users.htpasswd:1:'),
    });
  });
});

describe('hashFingerprint', () => {
  it('is 16 base64url characters that change with the hash', () => {
    expect(hashFingerprint(aliceHash)).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(hashFingerprint(aliceHash)).toBe(hashFingerprint(aliceHash));
    expect(hashFingerprint(aliceHash)).not.toBe(hashFingerprint(bobHash));
  });
});
