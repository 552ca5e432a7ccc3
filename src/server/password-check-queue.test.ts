import { describe, expect, it } from 'vitest';
import { PasswordCheckQueue } from './password-check-queue.js';

/** A task the test finishes by hand, and a record of when it started. */
function gate(started: string[], name: string) {
  let open: () => void = () => {};
  const done = new Promise<string>((resolve) => {
    open = () => resolve(name);
  });
  return {
    task: () => {
      started.push(name);
      return done;
    },
    open: () => open(),
  };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('PasswordCheckQueue', () => {
  it('runs up to its concurrency, queues up to its limit, and refuses the rest at once', async () => {
    const queue = new PasswordCheckQueue({ concurrency: 2, maxWaiting: 2, perAddress: 10 });
    const started: string[] = [];
    const gates = ['a', 'b', 'c', 'd', 'e'].map((n) => gate(started, n));
    const admissions = gates.map((g, i) => queue.run(`10.0.0.${i}`, false, g.task));
    await tick();
    expect(admissions.map((a) => a.refused)).toEqual([undefined, undefined, undefined, undefined, 'busy']);
    expect(started).toEqual(['a', 'b']);
    expect(queue.stats()).toEqual({ running: 2, waiting: 2, refusedBusy: 1, refusedAddress: 0 });
    gates[0]?.open();
    await tick();
    expect(started).toEqual(['a', 'b', 'c']);
    for (const g of gates) g.open();
    const results = await Promise.all(admissions.map((a) => (a.refused ? a.refused : a.result)));
    expect(results).toEqual(['a', 'b', 'c', 'd', 'busy']);
    expect(queue.stats()).toMatchObject({ running: 0, waiting: 0 });
  });

  it('refuses an address that already holds its share', async () => {
    const queue = new PasswordCheckQueue({ concurrency: 1, maxWaiting: 10, perAddress: 2 });
    const started: string[] = [];
    const gates = ['a', 'b', 'c'].map((n) => gate(started, n));
    const admissions = gates.map((g) => queue.run('10.0.0.1', false, g.task));
    expect(admissions.map((a) => a.refused)).toEqual([undefined, undefined, 'address']);
    expect(queue.run('10.0.0.2', false, gate(started, 'other').task).refused).toBeUndefined();
    expect(queue.stats().refusedAddress).toBe(1);
    for (const g of gates) g.open();
    await tick();
    await tick();
    // Its share is free again once its checks are done.
    expect(queue.run('10.0.0.1', false, gate(started, 'again').task).refused).toBeUndefined();
  });

  it('lets preferred checks wait in a line of their own, served first', async () => {
    const queue = new PasswordCheckQueue({ concurrency: 1, maxWaiting: 1, perAddress: 10 });
    const started: string[] = [];
    const first = gate(started, 'first');
    queue.run('10.0.0.1', false, first.task);
    queue.run('10.0.0.2', false, gate(started, 'stranger').task);
    expect(queue.run('10.0.0.3', false, gate(started, 'stranger-2').task).refused).toBe('busy');
    const known = gate(started, 'known');
    expect(queue.run('10.0.0.4', true, known.task).refused).toBeUndefined();
    first.open();
    await tick();
    expect(started).toEqual(['first', 'known']);
  });

  it('frees its slot when a check fails', async () => {
    const queue = new PasswordCheckQueue({ concurrency: 1, maxWaiting: 0, perAddress: 1 });
    const failed = queue.run('10.0.0.1', false, () => Promise.reject(new Error('bcrypt broke')));
    if (failed.refused) throw new Error('refused');
    await expect(failed.result).rejects.toThrow('bcrypt broke');
    const next = queue.run('10.0.0.1', false, () => Promise.resolve('ok'));
    if (next.refused) throw new Error('refused');
    expect(await next.result).toBe('ok');
  });
});
