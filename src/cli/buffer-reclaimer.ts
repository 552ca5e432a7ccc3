import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { TransferListener } from '../image/transfer-events.js';

/** Bytes a transfer receives between two looks at how much memory received buffers hold. */
export const RECLAIM_CHECK_BYTES = 8 * 1024 * 1024;

/**
 * Memory in ArrayBuffers (what `process.memoryUsage().arrayBuffers` counts) above which a
 * young-generation collection is asked for. Every chunk a socket receives is a new buffer (two,
 * with node:http's copy of the body), freed only by a collection, and V8 times those by the
 * JavaScript heap, which a download barely touches. Node 20 and 22 collect young buffers at
 * about 32-48 MiB of them by themselves; Node 24 lets them pile up to 80 MiB and more (half of a
 * 1 GiB pull's peak memory) before a full collection.
 */
export const RECLAIM_ABOVE_BYTES = 32 * 1024 * 1024;

/**
 * The first V8 major version that leaves received buffers to pile up (Node 24's, 13.6). Before
 * it, V8 collects them soon enough by itself, and a collection asked for on top only moves
 * chunks still waiting to be written into the old generation: on a 1 GiB pull, Node 20 spent
 * 0.7 s more CPU with it and Node 22 peaked at 133 MB instead of 115-124 MB.
 */
export const PILING_UP_V8_MAJOR = 13;

/** Whether this V8 (`process.versions.v8`) leaves received buffers to pile up. */
export function v8LetsBuffersPileUp(v8Version: string = process.versions.v8): boolean {
  return Number(v8Version.split('.')[0]) >= PILING_UP_V8_MAJOR;
}

export interface BufferReclaimerOptions {
  /** Left out: `process.memoryUsage().arrayBuffers`. */
  readonly arrayBuffers?: () => number;
  /**
   * Runs a young-generation collection. Left out: V8's own, exposed on first use; when this
   * runtime does not give it, the listener does nothing.
   */
  readonly collect?: () => void;
}

/**
 * V8's `gc` function, asking for a young-generation (minor) collection: exposed by the flag in a
 * new context only, the way vscode-cpptools does (Extension/src/Utility/System/garbageCollector.ts),
 * so the CLI's own global scope gets no `gc`, and the flag is turned off again at once.
 */
export function youngGenerationCollector(): (() => void) | undefined {
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    setFlagsFromString('--no-expose-gc');
    if (typeof gc !== 'function') return undefined;
    return () => gc({ type: 'minor' });
  } catch {
    return undefined;
  }
}

/**
 * A transfer listener that keeps the buffers of blobs from piling up: after every
 * RECLAIM_CHECK_BYTES received or sent, when buffers hold more than RECLAIM_ABOVE_BYTES, it asks
 * for a young-generation collection, which frees the chunks already hashed, written or sent. On
 * Node 24 a pull of a gigabyte then peaks at about 120 MB instead of 155 MB, a copy of 512 MiB at
 * 114-118 MB instead of 150-160 MB and a push of it at 102-104 MB instead of 138-142 MB, each
 * spending less CPU time on full collections and on fresh memory. For the CLI only: a library
 * must not run collections in its caller's process. Used only where v8LetsBuffersPileUp.
 */
export function bufferReclaimer(options: BufferReclaimerOptions = {}): TransferListener {
  const arrayBuffers = options.arrayBuffers ?? (() => process.memoryUsage().arrayBuffers);
  let collect = options.collect;
  let tried = options.collect !== undefined;
  let received = 0;
  return (event) => {
    if (event.kind !== 'blob-bytes') return;
    received += event.bytes;
    if (received < RECLAIM_CHECK_BYTES) return;
    received = 0;
    if (arrayBuffers() <= RECLAIM_ABOVE_BYTES) return;
    if (!tried) {
      tried = true;
      collect = youngGenerationCollector();
    }
    collect?.();
  };
}
