import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { DigestAlgorithm } from './digest.js';

/**
 * An incremental hash. `update` may return a promise: the caller waits for it before handing
 * more bytes (the hashing thread is behind). `digest` ends it; `close` frees what it holds and
 * is safe to call at any time, also after `digest` or twice.
 */
export interface Digester {
  update(bytes: Uint8Array): Promise<void> | undefined;
  /** The lowercase hex of the hash of every byte given. */
  digest(): Promise<string>;
  close(): void;
}

/**
 * Content at least this large is hashed on a worker thread. SHA-256 costs about 0.7 s of CPU per
 * GiB (SHA-NI): a quarter of the work of the thread that also reads the sockets and drives the
 * file writes, which is what limits a pull; a worker runs it on another core. Below this size the worker's start
 * (a new V8 isolate, some milliseconds) costs more than hashing on the spot.
 */
export const WORKER_DIGEST_MIN_BYTES = 32 * 1024 * 1024;

/**
 * Bytes copied into one message to the worker: large enough that posting (a few microseconds)
 * costs little next to hashing them (about 180 µs), small enough that the copy stays in the CPU
 * cache and the buffers of four parallel downloads add little to a pull's peak memory.
 */
const BATCH_BYTES = 256 * 1024;

/**
 * Batches posted but not hashed yet before `update` asks the caller to wait: bounds the memory a
 * digester holds (this many batches plus the one being filled) when the worker is starved of CPU.
 * With four, a pull of 4 layers holds at most 5 MiB for them (seen: 1 MiB batches, 3 in flight,
 * added 30 MB to the peak RSS of a 1 GiB pull).
 */
const MAX_BATCHES_IN_FLIGHT = 4;

/**
 * The worker: one hash per stream id; hashes each batch, hands its buffer back for reuse, and
 * answers a stream's end with its hex digest. Given as source (`eval`), so it runs the same from
 * the library's files and from the CLI's bundle, which has no separate worker file to point at.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hashes = new Map();
parentPort.on('message', (m) => {
  if (m.algorithm !== undefined) {
    hashes.set(m.id, createHash(m.algorithm));
    return;
  }
  const hash = hashes.get(m.id);
  if (m.end) {
    hashes.delete(m.id);
    parentPort.postMessage({ id: m.id, hex: hash.digest('hex') });
  } else if (m.drop) {
    hashes.delete(m.id);
  } else {
    hash.update(new Uint8Array(m.buffer, 0, m.length));
    parentPort.postMessage({ id: m.id, buffer: m.buffer }, [m.buffer]);
  }
});
`;

function inThreadDigester(algorithm: DigestAlgorithm): Digester {
  const hash = createHash(algorithm);
  return {
    update(bytes) {
      hash.update(bytes);
      return undefined;
    },
    digest: async () => hash.digest('hex'),
    close() {},
  };
}

interface Answer {
  buffer?: ArrayBuffer;
  hex?: string;
}

/**
 * The one hashing thread all large digests share: one more thread is what takes hashing off the
 * thread that moves the bytes, and every further one would cost its own V8 heap (about 10 MB)
 * on a pull whose memory is bounded. It ends when its last digest is closed.
 */
class HashingThread {
  readonly worker: Worker;
  readonly #streams = new Map<number, { answer(message: Answer): void; fail(err: Error): void }>();
  #nextId = 0;
  #busy = 0;
  #ended = false;

  constructor() {
    this.worker = new Worker(WORKER_SOURCE, { eval: true });
    // Referenced only while it owes an answer: an idle thread never keeps a process alive.
    this.worker.unref();
    this.worker.on('message', (message: Answer & { id: number }) => {
      // Every message answers one that was owed, also for a stream closed since.
      this.owe(-1);
      this.#streams.get(message.id)?.answer(message);
    });
    const fail = (err: Error) => {
      this.#ended = true;
      if (shared === this) shared = undefined;
      for (const stream of this.#streams.values()) stream.fail(err);
      this.#streams.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => {
      if (!this.#ended) fail(new Error(`the hashing thread exited (code ${code}) before it finished`));
    });
  }

  open(
    algorithm: DigestAlgorithm,
    stream: { answer(message: Answer): void; fail(err: Error): void },
  ): number {
    const id = this.#nextId++;
    this.#streams.set(id, stream);
    this.worker.postMessage({ id, algorithm });
    return id;
  }

  /** Counts answers owed: the thread is referenced while any is. */
  owe(delta: 1 | -1): void {
    this.#busy += delta;
    if (delta === 1 && this.#busy === 1) this.worker.ref();
    if (this.#busy === 0) this.worker.unref();
  }

  close(id: number): void {
    if (!this.#streams.delete(id) || this.#ended) return;
    this.worker.postMessage({ id, drop: true });
    if (this.#streams.size === 0) {
      this.#ended = true;
      if (shared === this) shared = undefined;
      void this.worker.terminate();
    }
  }
}

let shared: HashingThread | undefined;

/**
 * A hash over bytes that arrive in pieces: on the shared hashing thread when `expectedBytes` is
 * at least WORKER_DIGEST_MIN_BYTES, else on the calling thread. A thread that cannot start leaves
 * the hashing on the calling thread; one that fails later fails `update` or `digest` with its
 * error, so no digest is ever reported for bytes that were not all hashed.
 */
export function createDigester(algorithm: DigestAlgorithm, expectedBytes?: number): Digester {
  if (expectedBytes === undefined || expectedBytes < WORKER_DIGEST_MIN_BYTES)
    return inThreadDigester(algorithm);
  try {
    shared ??= new HashingThread();
  } catch {
    return inThreadDigester(algorithm);
  }
  return new ThreadDigester(shared, algorithm);
}

class ThreadDigester implements Digester {
  readonly #thread: HashingThread;
  readonly #id: number;
  readonly #free: ArrayBuffer[] = [];
  #batch: Uint8Array | undefined;
  #filled = 0;
  #inFlight = 0;
  #failure: Error | undefined;
  #closed = false;
  #room: { resolve: () => void; reject: (err: Error) => void } | undefined;
  #answer: { resolve: (hex: string) => void; reject: (err: Error) => void } | undefined;

  constructor(thread: HashingThread, algorithm: DigestAlgorithm) {
    this.#thread = thread;
    this.#id = thread.open(algorithm, {
      answer: (message) => {
        if (message.hex !== undefined) {
          const answer = this.#answer;
          this.#answer = undefined;
          answer?.resolve(message.hex);
          return;
        }
        this.#inFlight--;
        if (message.buffer !== undefined && this.#free.length < MAX_BATCHES_IN_FLIGHT)
          this.#free.push(message.buffer);
        if (this.#inFlight < MAX_BATCHES_IN_FLIGHT) {
          const room = this.#room;
          this.#room = undefined;
          room?.resolve();
        }
      },
      fail: (err) => {
        this.#failure ??= err;
        for (const waiter of [this.#room, this.#answer]) waiter?.reject(err);
        this.#room = undefined;
        this.#answer = undefined;
      },
    });
  }

  #post(): void {
    const batch = this.#batch;
    if (batch === undefined || this.#filled === 0) return;
    this.#inFlight++;
    this.#thread.owe(1);
    this.#thread.worker.postMessage({ id: this.#id, buffer: batch.buffer, length: this.#filled }, [
      batch.buffer as ArrayBuffer,
    ]);
    this.#batch = undefined;
    this.#filled = 0;
  }

  update(bytes: Uint8Array): Promise<void> | undefined {
    if (this.#failure) throw this.#failure;
    if (this.#closed) throw new Error('the digester was closed');
    let offset = 0;
    while (offset < bytes.length) {
      this.#batch ??= new Uint8Array(this.#free.pop() ?? new ArrayBuffer(BATCH_BYTES));
      const n = Math.min(bytes.length - offset, BATCH_BYTES - this.#filled);
      this.#batch.set(bytes.subarray(offset, offset + n), this.#filled);
      this.#filled += n;
      offset += n;
      if (this.#filled === BATCH_BYTES) this.#post();
    }
    if (this.#inFlight < MAX_BATCHES_IN_FLIGHT) return undefined;
    return new Promise((resolve, reject) => {
      this.#room = { resolve, reject };
    });
  }

  async digest(): Promise<string> {
    if (this.#failure) throw this.#failure;
    if (this.#closed) throw new Error('the digester was closed');
    this.#post();
    const answer = new Promise<string>((resolve, reject) => {
      this.#answer = { resolve, reject };
    });
    this.#thread.owe(1);
    this.#thread.worker.postMessage({ id: this.#id, end: true });
    try {
      return await answer;
    } finally {
      this.close();
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#batch = undefined;
    this.#free.length = 0;
    this.#thread.close(this.#id);
  }
}
