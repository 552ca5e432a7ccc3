import { describe, expect, it } from 'vitest';
import {
  bufferReclaimer,
  RECLAIM_ABOVE_BYTES,
  RECLAIM_CHECK_BYTES,
  v8LetsBuffersPileUp,
  youngGenerationCollector,
} from './buffer-reclaimer.js';

const digest = `sha256:${'a'.repeat(64)}`;
const bytes = (n: number) => ({ kind: 'blob-bytes' as const, digest, bytes: n });

describe('bufferReclaimer', () => {
  function counting(held: () => number) {
    const counts = { looks: 0, collections: 0 };
    const listener = bufferReclaimer({
      arrayBuffers: () => {
        counts.looks++;
        return held();
      },
      collect: () => {
        counts.collections++;
      },
    });
    return { listener, counts };
  }

  it('looks at the memory once per RECLAIM_CHECK_BYTES received, over all blobs together', () => {
    const { listener, counts } = counting(() => 0);
    const chunk = 64 * 1024;
    for (let i = 0; i < (3 * RECLAIM_CHECK_BYTES) / chunk; i++) listener(bytes(chunk));
    expect(counts.looks).toBe(3);
    expect(counts.collections).toBe(0);
  });

  it('collects only when received buffers hold more than RECLAIM_ABOVE_BYTES', () => {
    let held = RECLAIM_ABOVE_BYTES;
    const { listener, counts } = counting(() => held);
    listener(bytes(RECLAIM_CHECK_BYTES));
    expect(counts.collections).toBe(0);
    held = RECLAIM_ABOVE_BYTES + 1;
    listener(bytes(RECLAIM_CHECK_BYTES));
    listener(bytes(RECLAIM_CHECK_BYTES));
    expect(counts).toEqual({ looks: 3, collections: 2 });
  });

  it('ignores every event but received bytes', () => {
    const { listener, counts } = counting(() => RECLAIM_ABOVE_BYTES * 2);
    for (let i = 0; i < 10; i++) {
      listener({ kind: 'blob-start', digest, size: RECLAIM_CHECK_BYTES });
      listener({ kind: 'blob-done', digest, size: RECLAIM_CHECK_BYTES, how: 'sent' });
    }
    expect(counts).toEqual({ looks: 0, collections: 0 });
  });
});

describe('youngGenerationCollector', () => {
  it("frees buffers nothing refers to any more, without giving the CLI's global scope a gc", async () => {
    const collect = youngGenerationCollector();
    expect(collect).toBeTypeOf('function');
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
    // 24 MiB of received-like chunks, dropped at once: less than Node 20 collects at by itself.
    const make = () => {
      let total = 0;
      for (let i = 0; i < 384; i++) total += Buffer.allocUnsafeSlow(64 * 1024).length;
      return total;
    };
    const before = process.memoryUsage().arrayBuffers;
    expect(make()).toBe(24 * 1024 * 1024);
    expect(process.memoryUsage().arrayBuffers).toBeGreaterThanOrEqual(before + 20 * 1024 * 1024);
    collect?.();
    // V8 may free the swept buffers on a helper thread: a few turns for that, far fewer than
    // the second and more it takes V8 to get to them by itself (which would hide a collector that
    // does nothing).
    const freed = () => process.memoryUsage().arrayBuffers <= before + 8 * 1024 * 1024;
    for (let turn = 0; turn < 200 && !freed(); turn++)
      await new Promise((resolve) => setTimeout(resolve, 10));
    expect(process.memoryUsage().arrayBuffers).toBeLessThanOrEqual(before + 8 * 1024 * 1024);
  });
});

describe('v8LetsBuffersPileUp', () => {
  it("is true for Node 24's V8 and later, false for Node 20's and 22's", () => {
    expect(v8LetsBuffersPileUp('11.3.244.8-node.38')).toBe(false);
    expect(v8LetsBuffersPileUp('12.4.254.21-node.57')).toBe(false);
    expect(v8LetsBuffersPileUp('13.6.233.17-node.53')).toBe(true);
    expect(v8LetsBuffersPileUp('14.1.0')).toBe(true);
  });
});
