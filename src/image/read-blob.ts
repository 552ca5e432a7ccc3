import { createHash } from 'node:crypto';
import { parseDigest } from '../digest/digest.js';
import { raceSignal, sleepUnlessAborted, throwIfAborted } from '../errors/aborted-error.js';
import { RegauthError } from '../errors/regauth-error.js';
import type { RegistryClient } from '../registry/registry-client.js';
import { isRetryableNetworkError } from '../transport/create-transport.js';
import { httpErrorFacts } from '../transport/http-error-facts.js';
import type { HttpResponse } from '../transport/http-types.js';
import { type ChunkWriter, pumpBody } from '../transport/raw-http-get.js';

/** A content descriptor (OCI image-spec descriptor.md), the parts a transfer needs. */
export interface BlobDescriptor {
  readonly digest: string;
  readonly size?: number;
  readonly mediaType?: string;
}

/** Times a broken blob download is picked up again from where it stopped. */
export const MAX_BLOB_RESUMES = 5;

/**
 * pumpBlob asks for a body this large or larger as a bulk body (HttpRequest.bulkBody): over
 * plain HTTP it comes on a connection of its own, one round trip more than a kept-alive one.
 * Below this the CPU it saves is small, and a registry far away (an `--insecure` one across a
 * WAN) would pay that round trip on many small layers.
 */
const BULK_BODY_BYTES = 4 * 1024 * 1024;

export interface ReadBlobOptions {
  /** Called with each number of bytes that arrives (progress). */
  readonly onBytes?: (bytes: number) => void;
  /** Called when a download resumes after a break: the offset, why, and the wait before it. */
  readonly onResume?: (offset: number, reason: string, waitMs: number) => void;
  /** How to wait between resumes; tests pass a fast one. */
  readonly sleep?: (ms: number) => Promise<void>;
  /**
   * Start at this byte (an upload resuming where the registry stopped). The digest covers the
   * whole blob, so a read from an offset checks only the size; the receiver checks the rest.
   */
  readonly offset?: number;
  /**
   * The first bytes of the blob, already held (a partial download kept on disk): they are hashed
   * first, the download continues after them with `Range`, and the digest of the whole blob is
   * still checked at the end. Only the bytes after them are yielded. Not with `offset`.
   */
  readonly held?: AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
  /** Ends the download (ERR_ABORTED): the request and its body are torn down, nothing resumes. */
  readonly signal?: AbortSignal;
}

function sizeError(digest: string, what: string): RegauthError {
  return new RegauthError('ERR_DIGEST_MISMATCH', `blob ${digest}: ${what}; nothing was kept`);
}

/** How a blob's download goes on after each answer's body. */
type BodyEnd = 'done' | 'again';

/**
 * One blob download across its answers: what is hashed, where it stands, when it resumes and
 * when it gives up. readBlob and pumpBlob differ only in how each answer's body is handed on.
 */
class BlobDownload {
  readonly #hash;
  readonly #algorithm: string;
  readonly #client: Pick<RegistryClient, 'registry' | 'getBlob'>;
  readonly #repository: string;
  readonly #descriptor: BlobDescriptor;
  readonly #options: ReadBlobOptions;
  readonly #what: string;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #from: number;
  #offset: number;
  #held = 0;
  #resumes = 0;
  /** Bytes of the current answer's body still to drop (a 200 answering a resume). */
  #skip = 0;

  constructor(
    client: Pick<RegistryClient, 'registry' | 'getBlob'>,
    repository: string,
    descriptor: BlobDescriptor,
    options: ReadBlobOptions,
  ) {
    this.#algorithm = parseDigest(descriptor.digest).algorithm;
    this.#hash = createHash(this.#algorithm);
    this.#client = client;
    this.#repository = repository;
    this.#descriptor = descriptor;
    this.#options = options;
    this.#what = `blob ${descriptor.digest} from ${client.registry}/${repository}`;
    this.#sleep = options.sleep ?? ((ms: number) => sleepUnlessAborted(ms, options.signal, this.#what));
    this.#from = options.offset ?? 0;
    this.#offset = this.#from;
  }

  /** Hashes the bytes held; answers whether they are the whole blob already. */
  async start(): Promise<boolean> {
    const options = this.#options;
    const descriptor = this.#descriptor;
    if (options.held === undefined) return false;
    if (this.#from > 0) throw new TypeError('readBlob: held and offset exclude each other');
    for await (const chunk of options.held) {
      this.#hash.update(chunk);
      this.#offset += chunk.length;
    }
    if (descriptor.size !== undefined && this.#offset > descriptor.size) {
      throw sizeError(
        descriptor.digest,
        `the ${this.#offset} bytes held are more than the ${descriptor.size} bytes its descriptor states`,
      );
    }
    this.#held = this.#offset;
    if (this.#offset > 0) options.onResume?.(this.#offset, 'continuing a partial download', 0);
    // Held bytes may already be the whole blob: then only the digest is left to check.
    return this.#offset > 0 && this.#offset === descriptor.size;
  }

  async #resume(reason: string, err?: unknown): Promise<void> {
    if (this.#resumes >= MAX_BLOB_RESUMES) {
      throw new RegauthError(
        'ERR_NETWORK',
        `${this.#what}: ${reason} after ${this.#offset} bytes, ${MAX_BLOB_RESUMES} resumes did not finish it`,
        err === undefined ? {} : { cause: err },
      );
    }
    this.#resumes++;
    const waitMs = 100 * 2 ** this.#resumes;
    this.#options.onResume?.(this.#offset, reason, waitMs);
    await raceSignal(this.#sleep(waitMs), this.#options.signal, this.#what);
  }

  /** The next answer, from where the download stands; undefined after a failure it resumes from. */
  async request(bulkBody: boolean): Promise<HttpResponse | undefined> {
    const { signal } = this.#options;
    const descriptor = this.#descriptor;
    throwIfAborted(signal, this.#what);
    let res: HttpResponse;
    try {
      res = await this.#client.getBlob(this.#repository, descriptor.digest, this.#offset, {
        ...(signal === undefined ? {} : { signal }),
        ...(bulkBody ? { bulkBody } : {}),
      });
    } catch (err) {
      if (!(err instanceof RegauthError && err.code === 'ERR_NETWORK') && !isRetryableNetworkError(err))
        throw err;
      await this.#resume('the connection failed', err);
      return undefined;
    }
    this.#skip = this.#offset;
    if (res.status === 206) {
      const start = /^bytes (\d+)-/.exec(res.header('content-range') ?? '')?.[1];
      if (Number(start) === this.#offset) this.#skip = 0;
      else {
        // A range we did not ask for: start this answer over from its own beginning.
        await res.dump();
        throw new RegauthError(
          'ERR_REGISTRY',
          `blob ${descriptor.digest}: the registry answered a range request from ${this.#offset} with ${res.header('content-range') ?? 'no Content-Range'}`,
          httpErrorFacts(res),
        );
      }
    }
    return res;
  }

  /** The part of `chunk` that is new, hashed and counted; undefined when all of it was had already. */
  take<T extends Uint8Array>(chunk: T, res: HttpResponse): T | undefined {
    const descriptor = this.#descriptor;
    let data = chunk;
    if (this.#skip > 0) {
      if (data.length <= this.#skip) {
        this.#skip -= data.length;
        return undefined;
      }
      data = data.subarray(this.#skip) as T;
      this.#skip = 0;
    }
    if (descriptor.size !== undefined && this.#offset + data.length > descriptor.size) {
      const err = sizeError(
        descriptor.digest,
        `the registry sent more than the ${descriptor.size} bytes its descriptor states`,
      );
      // The body fails with this error, not a broken connection's: that one would be resumed.
      res.body.destroy(err);
      throw err;
    }
    this.#hash.update(data);
    this.#offset += data.length;
    this.#options.onBytes?.(data.length);
    return data;
  }

  /** After an answer's body ended (`err` when it broke): whether the download is done or goes on. */
  async ended(err?: unknown): Promise<BodyEnd> {
    const descriptor = this.#descriptor;
    if (err !== undefined) {
      if (err instanceof RegauthError || !isRetryableNetworkError(err)) throw err;
      await this.#resume(`the connection broke (${(err as { code?: string }).code})`, err);
      return 'again';
    }
    if (descriptor.size !== undefined && this.#offset < descriptor.size) {
      await this.#resume(`the body ended at ${this.#offset} of ${descriptor.size} bytes`);
      return 'again';
    }
    return 'done';
  }

  /** Checks the digest of the whole blob (not for a read from an offset: the receiver checks that). */
  verify(): void {
    if (this.#from > 0) return;
    const descriptor = this.#descriptor;
    const actual = `${this.#algorithm}:${this.#hash.digest('hex')}`;
    if (actual !== descriptor.digest) {
      const held = this.#held - this.#from;
      throw new RegauthError(
        'ERR_DIGEST_MISMATCH',
        `${this.#what}: ${held > 0 ? `the ${held} bytes held and those received` : 'the bytes received'} hash to ${actual}; nothing was kept`,
      );
    }
  }

  /** Whether the rest of the blob is large enough to be worth a connection of its own (bulkBody). */
  get bulk(): boolean {
    const size = this.#descriptor.size;
    return size === undefined || size - this.#offset >= BULK_BODY_BYTES;
  }
}

/**
 * A blob's bytes as they arrive, hashed on the way. A connection that breaks mid-blob, or a body
 * that ends short of the descriptor's size, is picked up again with `Range` from the last byte
 * received (a registry that answers 200 instead of 206 is skipped forward). After the last byte
 * the digest is checked: a mismatch throws ERR_DIGEST_MISMATCH, so a consumer that writes to a
 * temporary file never keeps a wrong blob. Bytes `held` from an earlier try count towards that
 * digest, so a download resumed across runs is verified as a whole.
 */
export async function* readBlob(
  client: Pick<RegistryClient, 'registry' | 'getBlob'>,
  repository: string,
  descriptor: BlobDescriptor,
  options: ReadBlobOptions = {},
): AsyncGenerator<Buffer> {
  const download = new BlobDownload(client, repository, descriptor, options);
  const complete = await download.start();
  while (!complete) {
    const res = await download.request(false);
    if (res === undefined) continue;
    let broke: unknown;
    try {
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        const data = download.take(chunk, res);
        if (data !== undefined) yield data;
      }
    } catch (err) {
      broke = err ?? new Error('the body failed');
    }
    if ((await download.ended(broke)) === 'done') break;
  }
  download.verify();
}

/**
 * readBlob for a writer that takes each chunk at once: the same resumes, size and digest checks,
 * and `write` gets every new byte in order. Over plain HTTP a large blob's chunks are views of
 * the connection's read buffer (HttpRequest.bulkBody), each valid only until `write` returns or
 * the promise it returns settles: a writer that keeps a chunk longer must copy it.
 */
export async function pumpBlob(
  client: Pick<RegistryClient, 'registry' | 'getBlob'>,
  repository: string,
  descriptor: BlobDescriptor,
  write: ChunkWriter,
  options: ReadBlobOptions = {},
): Promise<void> {
  const download = new BlobDownload(client, repository, descriptor, options);
  const complete = await download.start();
  while (!complete) {
    const res = await download.request(download.bulk);
    if (res === undefined) continue;
    let broke: unknown;
    try {
      await pumpBody(res.body, (chunk) => {
        const data = download.take(chunk, res);
        return data === undefined ? undefined : write(data);
      });
    } catch (err) {
      broke = err ?? new Error('the body failed');
    }
    if ((await download.ended(broke)) === 'done') break;
  }
  download.verify();
}
