import { describe, expect, it } from 'vitest';
import { abortable } from '../errors/aborted-error.js';
import { isRegauthError } from '../errors/regauth-error.js';
import { forEachLimit } from './transfer-events.js';

describe('forEachLimit: abort', () => {
  it('starts no job after the abort and rejects with ERR_ABORTED, not the errors of the jobs it tore down', async () => {
    const controller = new AbortController();
    const started: number[] = [];
    const items = Array.from({ length: 20 }, (_, i) => i);
    const run = forEachLimit(
      items,
      3,
      (item) =>
        new Promise<void>((resolve, reject) => {
          started.push(item);
          if (item === 4) controller.abort(new Error('stop'));
          // A job torn down by the abort fails its own way (a closed socket, a stream error).
          if (controller.signal.aborted) reject(new Error(`job ${item} torn down`));
          else controller.signal.addEventListener('abort', () => reject(new Error(`job ${item} torn down`)));
          setTimeout(resolve, 1);
        }),
      { signal: controller.signal, what: 'the test work' },
    );
    let err: unknown;
    try {
      await run;
    } catch (caught) {
      err = caught;
    }
    expect(isRegauthError(err, 'ERR_ABORTED')).toBe(true);
    expect((err as Error).message).toBe('the test work was aborted');
    expect((err as Error).cause).toEqual(new Error('stop'));
    expect(started.length).toBeLessThanOrEqual(5 + 2);
    expect(started).not.toContain(19);
  });

  it('starts nothing when the signal is aborted already', async () => {
    const controller = new AbortController();
    controller.abort();
    let ran = 0;
    const err = await forEachLimit(
      [1, 2, 3],
      2,
      async () => {
        ran++;
      },
      { signal: controller.signal },
    ).catch((e: unknown) => e);
    expect(isRegauthError(err, 'ERR_ABORTED')).toBe(true);
    expect(ran).toBe(0);
  });

  it('a job that failed before the abort is what the call rejects with, not ERR_ABORTED', async () => {
    const controller = new AbortController();
    const err = await forEachLimit(
      [0, 1],
      2,
      async (item) => {
        if (item === 0) throw new Error('real failure');
        // Heeds no signal: still running when, after that failure, the caller aborts.
        await new Promise((resolve) => setImmediate(resolve));
        controller.abort(new Error('deadline'));
      },
      { signal: controller.signal },
    ).catch((e: unknown) => e);
    expect(controller.signal.aborted).toBe(true);
    expect(err).toEqual(new Error('real failure'));
  });
});

describe('forEachLimit in abortable: the first failure stops the task', () => {
  /** A job that runs until its signal aborts (then rejects as a request torn down does), at most 2 s. */
  const untilAborted = (signal: AbortSignal, stopped: string[], name: string) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, 2000);
      signal.addEventListener('abort', () => {
        clearTimeout(timer);
        stopped.push(name);
        reject(new Error(`${name} torn down`));
      });
    });

  it('aborts the task signal at the first failure, so running jobs stop, and rejects with that failure', async () => {
    const stopped: string[] = [];
    let reason: unknown;
    const err = await abortable(undefined, 'the task', (signal) =>
      forEachLimit(
        ['bad', 'slow', 'slower'],
        3,
        async (item) => {
          if (item === 'bad') throw new Error('digest mismatch');
          await untilAborted(signal, stopped, item).finally(() => {
            reason = signal.reason;
          });
        },
        { signal, what: 'the jobs' },
      ),
    ).catch((e: unknown) => e);
    expect(err).toEqual(new Error('digest mismatch'));
    expect(stopped.sort()).toEqual(['slow', 'slower']);
    expect(reason).toEqual(new Error('digest mismatch'));
  });

  it("the caller's abort after that failure does not hide it; one before it is ERR_ABORTED", async () => {
    const late = new AbortController();
    const err = await abortable(late.signal, 'the task', (signal) =>
      forEachLimit(
        [0, 1],
        2,
        async (item) => {
          if (item === 0) throw new Error('real failure');
          // Winding down after the stop, the caller's deadline passes.
          await untilAborted(signal, [], 'job').catch(() => {});
          late.abort(new Error('deadline'));
          throw new Error('job torn down');
        },
        { signal },
      ),
    ).catch((e: unknown) => e);
    expect(late.signal.aborted).toBe(true);
    expect(err).toEqual(new Error('real failure'));

    const early = new AbortController();
    const aborted = await abortable(early.signal, 'the task', (signal) =>
      forEachLimit(
        [0, 1],
        2,
        async (item) => {
          if (item === 0) early.abort(new Error('deadline'));
          throw new Error(`job ${item} torn down`);
        },
        { signal },
      ),
    ).catch((e: unknown) => e);
    expect(isRegauthError(aborted, 'ERR_ABORTED')).toBe(true);
    expect((aborted as Error).message).toBe('the task was aborted');
  });
});
