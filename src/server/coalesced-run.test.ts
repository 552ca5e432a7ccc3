import { describe, expect, it } from 'vitest';
import { coalescedRun } from './coalesced-run.js';

/** A task whose runs end when the test says so. */
function controlled() {
  const ends: (() => void)[] = [];
  let running = 0;
  let most = 0;
  let runs = 0;
  const task = () =>
    new Promise<void>((resolve) => {
      runs++;
      running++;
      most = Math.max(most, running);
      ends.push(() => {
        running--;
        resolve();
      });
    });
  const tick = () => new Promise((resolve) => setImmediate(resolve));
  return { task, ends, tick, counts: () => ({ runs, most }) };
}

describe('coalescedRun', () => {
  it('runs once more after the current run, however many calls came during it, never two at once', async () => {
    const c = controlled();
    const run = coalescedRun(c.task);
    const first = run();
    await c.tick();
    const during = [run(), run(), run()];
    await c.tick();
    expect(c.counts()).toEqual({ runs: 1, most: 1 });
    c.ends.shift()?.();
    await first;
    await c.tick();
    expect(c.counts()).toEqual({ runs: 2, most: 1 });
    c.ends.shift()?.();
    await Promise.all(during);
    expect(c.counts()).toEqual({ runs: 2, most: 1 });
  });

  it('a call after a run ended starts a new one; a failed run does not stop the next', async () => {
    let runs = 0;
    const run = coalescedRun(async () => {
      runs++;
      if (runs === 1) throw new Error('bad config');
    });
    await expect(run()).rejects.toThrow('bad config');
    await run();
    await run();
    expect(runs).toBe(3);
  });
});
