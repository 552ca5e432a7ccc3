import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createDigester, WORKER_DIGEST_MIN_BYTES } from './create-digester.js';

const LARGE = WORKER_DIGEST_MIN_BYTES;

/** Feeds `data` in pieces of the given sizes (cycled), waiting whenever the digester asks to. */
async function feed(digester: ReturnType<typeof createDigester>, data: Uint8Array, sizes: number[]) {
  let waits = 0;
  for (let offset = 0, i = 0; offset < data.length; i++) {
    const n = sizes[i % sizes.length] ?? 1;
    const behind = digester.update(data.subarray(offset, offset + n));
    if (behind) {
      waits++;
      await behind;
    }
    offset += n;
  }
  return waits;
}

describe('createDigester', () => {
  it('on the hashing thread gives the same digest as node:crypto, for pieces that straddle its batches', async () => {
    const data = randomBytes(5 * 1024 * 1024 + 17);
    for (const sizes of [[65_536], [1], [3_000_001, 7, 1_048_576], [data.length]]) {
      const digester = createDigester('sha256', LARGE);
      // Tiny pieces are slow to feed a byte at a time: a few, then large ones.
      const pieces = sizes[0] === 1 ? [1, 1, 1, 999_999] : sizes;
      await feed(digester, data, pieces);
      expect(await digester.digest()).toBe(createHash('sha256').update(data).digest('hex'));
    }
  });

  it('hashes sha512 too, and an empty input', async () => {
    const data = randomBytes(2 * 1024 * 1024);
    const digester = createDigester('sha512', LARGE);
    await feed(digester, data, [100_000]);
    expect(await digester.digest()).toBe(createHash('sha512').update(data).digest('hex'));
    expect(await createDigester('sha256', LARGE).digest()).toBe(createHash('sha256').digest('hex'));
  });

  it('keeps digests that run at once apart, and the bytes handed over may be reused at once', async () => {
    const a = randomBytes(3 * 1024 * 1024);
    const b = randomBytes(3 * 1024 * 1024);
    const da = createDigester('sha256', LARGE);
    const db = createDigester('sha256', LARGE);
    const scratch = Buffer.alloc(65_536);
    for (let offset = 0; offset < a.length; offset += scratch.length) {
      // One buffer for both, overwritten after each update: the digester must have copied it.
      a.copy(scratch, 0, offset, offset + scratch.length);
      await da.update(scratch);
      b.copy(scratch, 0, offset, offset + scratch.length);
      await db.update(scratch);
      scratch.fill(0);
    }
    expect(await db.digest()).toBe(createHash('sha256').update(b).digest('hex'));
    expect(await da.digest()).toBe(createHash('sha256').update(a).digest('hex'));
  });

  it('asks the caller to wait when batches pile up, so its memory stays bounded', async () => {
    const data = randomBytes(16 * 1024 * 1024);
    const digester = createDigester('sha256', LARGE);
    // Handed over all at once, 16 batches cannot all be in flight.
    const waits = await feed(digester, data, [1024 * 1024]);
    expect(waits).toBeGreaterThan(0);
    expect(await digester.digest()).toBe(createHash('sha256').update(data).digest('hex'));
  });

  it('refuses more bytes or a digest after close', async () => {
    const digester = createDigester('sha256', LARGE);
    digester.update(randomBytes(2 * 1024 * 1024));
    digester.close();
    digester.close();
    expect(() => digester.update(Buffer.from('x'))).toThrow(/closed/);
    await expect(digester.digest()).rejects.toThrow(/closed/);
    // A digester opened after the last one closed starts the thread again.
    const next = createDigester('sha256', LARGE);
    next.update(Buffer.from('abc'));
    expect(await next.digest()).toBe(createHash('sha256').update('abc').digest('hex'));
  });

  it('hashes small or unsized content on the calling thread (update never waits)', async () => {
    for (const size of [undefined, LARGE - 1]) {
      const digester = createDigester('sha256', size);
      expect(digester.update(Buffer.from('abc'))).toBeUndefined();
      expect(await digester.digest()).toBe(createHash('sha256').update('abc').digest('hex'));
    }
  });
});
