import { setMaxListeners } from 'node:events';
import { RegauthError } from './regauth-error.js';

/**
 * The error of a call its caller aborted through an AbortSignal: `what` names the request or
 * the task (`GET https://host/v2/…`, `pull of host/repo:tag`; never a secret), `cause` is the
 * signal's reason, as `fetch` keeps it.
 */
export function abortedError(what: string, signal?: AbortSignal): RegauthError<'ERR_ABORTED'> {
  return new RegauthError('ERR_ABORTED', `${what} was aborted`, {
    ...(signal === undefined ? {} : { cause: signal.reason }),
  });
}

/** Whether an error is regauth's abort error. */
export function isAbortedError(err: unknown): err is RegauthError<'ERR_ABORTED'> {
  return err instanceof RegauthError && err.code === 'ERR_ABORTED';
}

/** Throws abortedError when `signal` has been aborted already. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw abortedError(what, signal);
}

/**
 * `work`, unless `signal` aborts first: then an abortedError at once, while `work` (shared with
 * other callers, who keep waiting for it) goes on and its outcome is dropped for this caller.
 */
export function raceSignal<T>(work: Promise<T>, signal: AbortSignal | undefined, what: string): Promise<T> {
  if (signal === undefined) return work;
  if (signal.aborted) {
    work.catch(() => {});
    return Promise.reject(abortedError(what, signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      work.catch(() => {});
      reject(abortedError(what, signal));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** Waits `ms`, ending at once with abortedError when `signal` aborts; the timer goes with it. */
export function sleepUnlessAborted(ms: number, signal: AbortSignal | undefined, what: string): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortedError(what, signal));
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortedError(what, signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A signal of a task's own that follows the caller's: one listener on the caller's signal
 * however many requests the task sends at once, so parallel jobs do not trip Node's listener
 * warning on a signal that is not the task's to configure. `done` detaches it.
 */
export function followSignal(signal: AbortSignal | undefined): {
  readonly signal: AbortSignal | undefined;
  done(): void;
} {
  if (signal === undefined) return { signal: undefined, done: () => {} };
  const own = new AbortController();
  // Every job and request of the task listens to this one; their number is bounded by the task.
  setMaxListeners(0, own.signal);
  const onAbort = () => own.abort(signal.reason);
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  return { signal: own.signal, done: () => signal.removeEventListener('abort', onAbort) };
}

/** A task abortable runs: its own controller, and the failure that stopped it, if one did. */
interface Task {
  readonly controller: AbortController;
  failure?: { readonly reason: unknown };
}

/** The tasks abortable is running, by the signal it gave each: how a job's failure stops the rest. */
const tasks = new WeakMap<AbortSignal, Task>();

/**
 * Ends the task that `signal` was given by abortable, because one of its jobs failed with
 * `reason`: the signal aborts, so the jobs still running stop at once instead of finishing work
 * whose result is thrown away (or hanging on a stalled download), and the task fails with
 * `reason`, even should its caller abort later. Does nothing once that signal has aborted (the
 * caller's abort or another failure came first), or for a signal that no task owns.
 */
export function stopTask(signal: AbortSignal | undefined, reason: unknown): void {
  const task = signal === undefined ? undefined : tasks.get(signal);
  if (task === undefined || task.controller.signal.aborted) return;
  task.failure = { reason };
  task.controller.abort(reason);
}

/**
 * Runs a task with a signal of its own that follows the caller's (one listener on the caller's
 * signal, as followSignal) and that stopTask aborts on a job's failure. When the caller aborted
 * first, the task rejects with ERR_ABORTED naming it, whatever error the abort caused inside it
 * (a request torn down, a job stopped): the caller asked for that outcome and gets one code for
 * it. A failure that stopped the task before the caller aborted is what it rejects with: a
 * deadline that passes while the jobs wind down must not hide why they were stopped.
 */
export async function abortable<T>(
  signal: AbortSignal | undefined,
  what: string,
  task: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  throwIfAborted(signal, what);
  const own: Task = { controller: new AbortController() };
  // Every job and request of the task listens to this one; their number is bounded by the task.
  setMaxListeners(0, own.controller.signal);
  tasks.set(own.controller.signal, own);
  const onAbort = () => own.controller.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await task(own.controller.signal);
  } catch (err) {
    // Jobs torn down by stopTask fail with ERR_ABORTED: the failure that stopped them is the outcome.
    if (own.failure !== undefined) throw isAbortedError(err) ? own.failure.reason : err;
    if (signal?.aborted) throw abortedError(what, signal);
    throw err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
