/**
 * Runs `task` one at a time, folding calls that come while it runs into one more run after it:
 * three SIGHUPs during a reload cause one further reload, which reads the file as it is by then.
 * Each call resolves (or rejects) with a run that began after the call was made.
 */
export function coalescedRun(task: () => Promise<void>): () => Promise<void> {
  let tail: Promise<void> = Promise.resolve();
  /** The run that waits for its turn and has not begun: later calls join it. */
  let waiting: Promise<void> | undefined;
  return () => {
    if (waiting !== undefined) return waiting;
    const run = tail
      .catch(() => {})
      .then(() => {
        waiting = undefined;
        return task();
      });
    waiting = run;
    tail = run;
    return run;
  };
}
