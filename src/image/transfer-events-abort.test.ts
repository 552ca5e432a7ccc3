import { describe, expect, it } from 'vitest';
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
});
