import { abortedError, isAbortedError, stopTask } from '../errors/aborted-error.js';

/** What moving an image reports as it goes: the CLI draws progress from these. */
export type TransferEvent =
  | { readonly kind: 'blob-start'; readonly digest: string; readonly size: number }
  | { readonly kind: 'blob-bytes'; readonly digest: string; readonly bytes: number }
  | {
      readonly kind: 'blob-resume';
      readonly digest: string;
      readonly offset: number;
      readonly reason: string;
      /** How long the transfer waits before it picks the blob up again. */
      readonly waitMs?: number;
    }
  | {
      readonly kind: 'blob-done';
      readonly digest: string;
      readonly size: number;
      /** sent: bytes moved; skipped: already there; mounted: linked from another repository. */
      readonly how: 'sent' | 'skipped' | 'mounted';
    }
  | { readonly kind: 'manifest'; readonly digest: string; readonly reference: string };

/** Receives a transfer's events as they happen: pull, push and copy take one as `onProgress`. */
export type TransferListener = (event: TransferEvent) => void;

/** The summary `--json` prints. */
export interface TransferSummary {
  readonly digest: string;
  readonly mediaType: string;
  readonly blobs: {
    readonly digest: string;
    readonly size: number;
    readonly how: 'sent' | 'skipped' | 'mounted';
  }[];
  readonly manifests: { readonly digest: string; readonly reference: string }[];
}

/** Collects events into a summary while passing them on. */
export function summarize(listener?: TransferListener): {
  listener: TransferListener;
  blobs: TransferSummary['blobs'];
  manifests: TransferSummary['manifests'];
} {
  const blobs: TransferSummary['blobs'] = [];
  const manifests: TransferSummary['manifests'] = [];
  return {
    blobs,
    manifests,
    listener: (event) => {
      if (event.kind === 'blob-done') blobs.push({ digest: event.digest, size: event.size, how: event.how });
      if (event.kind === 'manifest') manifests.push({ digest: event.digest, reference: event.reference });
      listener?.(event);
    },
  };
}

export interface ForEachLimitOptions {
  /**
   * No job starts once it is aborted, and the call then rejects with ERR_ABORTED (whatever the
   * jobs in flight, which should heed the same signal, failed with), unless a job had failed
   * before the abort: that failure is thrown. A task's signal from abortable is aborted by the
   * first failure (stopTask), so the jobs still running stop at once. Left out: never aborted.
   */
  readonly signal?: AbortSignal;
  /** Names the work in the abort error. Left out: "the work". */
  readonly what?: string;
}

/** Runs `work` over `items` with at most `jobs` at once; the first failure stops new work. */
export async function forEachLimit<T>(
  items: readonly T[],
  jobs: number,
  work: (item: T) => Promise<void>,
  options: ForEachLimitOptions = {},
): Promise<void> {
  const { signal } = options;
  let next = 0;
  // The first failure in time, not the first worker's: a later one may only be a consequence.
  // One that came before any abort is a real one, and what the call fails with.
  let failure: { readonly reason: unknown; readonly beforeAbort: boolean } | undefined;
  const worker = async () => {
    while (!failure && next < items.length && !signal?.aborted) {
      const item = items[next++] as T;
      try {
        await work(item);
      } catch (reason) {
        if (failure === undefined) {
          failure = { reason, beforeAbort: !signal?.aborted };
          if (failure.beforeAbort) stopTask(signal, reason);
        }
        return;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(jobs, items.length)) }, worker));
  if (failure?.beforeAbort) throw failure.reason;
  // Jobs torn down by the abort fail with whatever that caused: the caller gets the abort.
  if (signal?.aborted) {
    throw failure !== undefined && isAbortedError(failure.reason)
      ? failure.reason
      : abortedError(options.what ?? 'the work', signal);
  }
  if (failure) throw failure.reason;
}
