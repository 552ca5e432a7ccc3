import { describe, expect, it } from 'vitest';
import { forEachLimit, summarize, type TransferEvent } from './transfer-events.js';

/** A promise the test settles by hand. */
function gate(): { promise: Promise<void>; open(): void; fail(err: unknown): void } {
  let open!: () => void;
  let fail!: (err: unknown) => void;
  const promise = new Promise<void>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

/** Lets queued promise callbacks run (bounded: a few macrotask turns). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

describe('forEachLimit', () => {
  it('never runs more than `jobs` items at once and processes every item once', async () => {
    const items = Array.from({ length: 23 }, (_, i) => i);
    let running = 0;
    let peak = 0;
    const done: number[] = [];
    await forEachLimit(items, 4, async (item) => {
      running++;
      peak = Math.max(peak, running);
      // Uneven durations, so workers finish out of order.
      for (let i = 0; i < (item % 5) + 1; i++) await new Promise((r) => setImmediate(r));
      done.push(item);
      running--;
    });
    expect(peak).toBe(4);
    expect(running).toBe(0);
    expect([...done].sort((a, b) => a - b)).toEqual(items);
  });

  it('starts the next item as soon as one finishes, keeping `jobs` busy', async () => {
    const gates = Array.from({ length: 5 }, () => gate());
    const started: number[] = [];
    const run = forEachLimit([0, 1, 2, 3, 4], 2, async (item) => {
      started.push(item);
      await gates[item]?.promise;
    });
    await settle();
    expect(started).toEqual([0, 1]);
    gates[1]?.open();
    await settle();
    expect(started).toEqual([0, 1, 2]);
    for (const g of gates) g.open();
    await run;
    expect(started).toEqual([0, 1, 2, 3, 4]);
  });

  it('runs with one worker when jobs is below one, and with no more workers than items', async () => {
    for (const jobs of [0, -3]) {
      let peak = 0;
      let running = 0;
      const done: string[] = [];
      await forEachLimit(['a', 'b', 'c'], jobs, async (item) => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setImmediate(r));
        done.push(item);
        running--;
      });
      expect(peak).toBe(1);
      expect(done).toEqual(['a', 'b', 'c']);
    }
    let calls = 0;
    await forEachLimit([], 8, async () => {
      calls++;
    });
    expect(calls).toBe(0);
  });

  it('rejects with the first failure and starts no new item after it', async () => {
    const items = Array.from({ length: 10 }, (_, i) => i);
    const slow = gate();
    const started: number[] = [];
    const boom = new Error('item 1 failed');
    let settled = false;
    const run = forEachLimit(items, 2, async (item) => {
      started.push(item);
      if (item === 0) await slow.promise;
      if (item === 1) throw boom;
    }).finally(() => {
      settled = true;
    });
    await settle();
    // The failure does not abandon work in flight: the call settles only when item 0 has finished.
    expect(settled).toBe(false);
    slow.open();
    await expect(run).rejects.toBe(boom);
    expect(started).toEqual([0, 1]);
  });

  it('reports the failure that happened first, not the one of the first worker', async () => {
    const late = gate();
    const first = new Error('first failure (item b)');
    const second = new Error('later failure (item a)');
    const run = forEachLimit(['a', 'b'], 2, async (item) => {
      if (item === 'a') {
        await late.promise;
        throw second;
      }
      throw first;
    });
    await settle();
    late.open();
    await expect(run).rejects.toBe(first);
  });
});

describe('summarize', () => {
  const events: TransferEvent[] = [
    { kind: 'blob-start', digest: 'sha256:a', size: 10 },
    { kind: 'blob-bytes', digest: 'sha256:a', bytes: 10 },
    { kind: 'blob-resume', digest: 'sha256:a', offset: 4, reason: 'the connection broke' },
    { kind: 'blob-done', digest: 'sha256:a', size: 10, how: 'sent' },
    { kind: 'blob-done', digest: 'sha256:b', size: 20, how: 'skipped' },
    { kind: 'blob-done', digest: 'sha256:c', size: 30, how: 'mounted' },
    { kind: 'manifest', digest: 'sha256:m', reference: 'r.example/app:1' },
  ];

  it('collects finished blobs and manifests and forwards every event in order', () => {
    const forwarded: TransferEvent[] = [];
    const summary = summarize((e) => forwarded.push(e));
    for (const e of events) summary.listener(e);
    expect(forwarded).toEqual(events);
    expect(summary.blobs).toEqual([
      { digest: 'sha256:a', size: 10, how: 'sent' },
      { digest: 'sha256:b', size: 20, how: 'skipped' },
      { digest: 'sha256:c', size: 30, how: 'mounted' },
    ]);
    expect(summary.manifests).toEqual([{ digest: 'sha256:m', reference: 'r.example/app:1' }]);
  });

  it('collects without a listener to forward to', () => {
    const summary = summarize();
    for (const e of events) summary.listener(e);
    expect(summary.blobs.map((b) => b.digest)).toEqual(['sha256:a', 'sha256:b', 'sha256:c']);
    expect(summary.manifests).toHaveLength(1);
  });
});
