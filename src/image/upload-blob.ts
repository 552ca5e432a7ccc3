import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { parseDigest } from '../digest/digest.js';
import { RegauthError } from '../errors/regauth-error.js';
import type { RegistryClient, RequestOptions, UploadSession } from '../registry/registry-client.js';
import type { BlobDescriptor } from './read-blob.js';

/**
 * Blobs up to this size go in one PUT, read into memory first (so a failure can simply send
 * them again). Larger ones go as chunked PATCHes of DEFAULT_CHUNK_BYTES, each streamed from the
 * source: memory stays flat whatever the blob's size.
 */
export const MONOLITHIC_MAX_BYTES = 8 * 1024 * 1024;
/**
 * PATCH chunk size: big enough that the round trip after each chunk costs little next to the
 * transfer (64 MiB takes ~0.5 s at 1 Gbit/s against a 20 ms round trip), small enough that a
 * broken chunk costs little to send again.
 */
export const DEFAULT_CHUNK_BYTES = 64 * 1024 * 1024;
/** Times the upload is picked up again from the registry's offset after a failed chunk. */
const MAX_RESUMES = 3;

/** The blob's bytes from `offset` on (a file opened there, a registry read with Range). */
export type BlobSource = (offset: number) => AsyncIterable<Uint8Array>;

export interface UploadBlobOptions {
  /** Mount from this repository of the same registry instead of sending bytes, when it has the blob. */
  readonly mountFrom?: string;
  /** Left out: DEFAULT_CHUNK_BYTES (raised to the registry's OCI-Chunk-Min-Length). */
  readonly chunkBytes?: number;
  readonly onBytes?: (bytes: number) => void;
  /** Says where the bytes come from, for error messages (a file path, a source reference). */
  readonly sourceName?: string;
  /**
   * Ends the upload (ERR_ABORTED): the request in flight is torn down, nothing resumes, and the
   * registry's upload session is cancelled (one DELETE, bounded in time, not under this signal).
   */
  readonly signal?: AbortSignal;
}

/** Reads an async iterable in exact-size pieces, each handed out as a stream. */
class PieceReader {
  readonly #iterator: AsyncIterator<Uint8Array>;
  #leftover: Buffer | undefined;
  #done = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.#iterator = source[Symbol.asyncIterator]();
  }

  async #next(): Promise<Buffer | undefined> {
    if (this.#leftover) {
      const b = this.#leftover;
      this.#leftover = undefined;
      return b;
    }
    if (this.#done) return undefined;
    const r = await this.#iterator.next();
    if (r.done) {
      this.#done = true;
      return undefined;
    }
    return Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
  }

  /** Up to `n` bytes, as they arrive; fewer only at the end of the source. */
  async *take(n: number): AsyncGenerator<Buffer> {
    let remaining = n;
    while (remaining > 0) {
      const b = await this.#next();
      if (b === undefined) return;
      if (b.length > remaining) {
        this.#leftover = b.subarray(remaining);
        yield b.subarray(0, remaining);
        return;
      }
      remaining -= b.length;
      yield b;
    }
  }

  /** Whether any byte is left. */
  async more(): Promise<boolean> {
    const b = await this.#next();
    if (b === undefined) return false;
    this.#leftover = b;
    return true;
  }

  async close(): Promise<void> {
    await this.#iterator.return?.();
  }
}

/**
 * Puts one blob into a repository: skipped when the registry has it (HEAD), mounted from
 * `mountFrom` when possible, else uploaded — one PUT when small, chunked PATCHes otherwise (each
 * streamed, Content-Range set, OCI-Chunk-Min-Length honoured). A failed chunk is not guessed at:
 * the registry's upload status says how far it got, and the upload resumes from there with the
 * source reopened at that offset. The bytes are hashed on the way; a mismatch abandons the
 * upload (never completed), and after a resume the registry's own digest check on the final PUT
 * is what guards the content.
 */
export async function uploadBlob(
  client: RegistryClient,
  repository: string,
  descriptor: BlobDescriptor,
  source: BlobSource,
  options: UploadBlobOptions = {},
): Promise<'sent' | 'skipped' | 'mounted'> {
  const request: RequestOptions = options.signal === undefined ? {} : { signal: options.signal };
  if ((await client.headBlob(repository, descriptor.digest, request)).exists) return 'skipped';
  const started = await client.startUpload(
    repository,
    options.mountFrom === undefined ? undefined : { digest: descriptor.digest, from: options.mountFrom },
    request,
  );
  if (started.mounted) return 'mounted';
  let session: UploadSession = started;
  const chunkBytes = Math.max(options.chunkBytes ?? DEFAULT_CHUNK_BYTES, session.minChunkBytes ?? 0);
  const { algorithm } = parseDigest(descriptor.digest);
  const what = `${options.sourceName ?? 'the source'} of blob ${descriptor.digest}`;
  const mismatch = (size: number, actual: string) =>
    new RegauthError(
      'ERR_DIGEST_MISMATCH',
      `${what} holds ${size} bytes hashing to ${actual}; the upload was abandoned`,
    );

  try {
    // Small blobs: read whole, one PUT (a buffer, so the transport may send it again).
    if (descriptor.size !== undefined && descriptor.size <= Math.min(MONOLITHIC_MAX_BYTES, chunkBytes)) {
      const parts: Buffer[] = [];
      let size = 0;
      for await (const piece of source(0)) {
        parts.push(Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength));
        size += piece.byteLength;
        if (size > descriptor.size) break;
      }
      const bytes = Buffer.concat(parts);
      const actual = `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
      if (actual !== descriptor.digest || bytes.length !== descriptor.size)
        throw mismatch(bytes.length, actual);
      options.onBytes?.(bytes.length);
      await client.completeUpload(repository, session, descriptor.digest, bytes, bytes.length, request);
      return 'sent';
    }

    // Large blobs: streamed chunks.
    const hash = createHash(algorithm);
    let hashValid = true;
    let offset = 0;
    let resumes = 0;
    let reader = new PieceReader(source(0));
    for (;;) {
      if (!(await reader.more())) break;
      const start = offset;
      let sent = 0;
      const piece = reader.take(chunkBytes);
      const counted = async function* () {
        for await (const b of piece) {
          if (hashValid) hash.update(b);
          sent += b.length;
          options.onBytes?.(b.length);
          yield b;
        }
      };
      // The chunk's length must be known for Content-Range: it is a full chunk unless the
      // descriptor says the blob ends sooner; without a size, the last chunk goes with the PUT.
      const length =
        descriptor.size === undefined
          ? chunkBytes
          : Math.min(chunkBytes, Math.max(0, descriptor.size - start));
      try {
        if (descriptor.size === undefined) {
          const bytes = [];
          for await (const b of counted()) bytes.push(b);
          const buf = Buffer.concat(bytes);
          if (await reader.more())
            session = await client.uploadChunk(repository, session, buf, start, buf.length, request);
          else {
            offset += buf.length;
            const actual = `${algorithm}:${hash.digest('hex')}`;
            if (hashValid && actual !== descriptor.digest) throw mismatch(offset, actual);
            await client.completeUpload(repository, session, descriptor.digest, buf, buf.length, request);
            return 'sent';
          }
        } else if (start + length === descriptor.size) {
          // The last chunk goes with the completing PUT: one round trip less per blob.
          try {
            await client.completeUpload(
              repository,
              session,
              descriptor.digest,
              Readable.from(counted()),
              length,
              request,
            );
          } catch (err) {
            // A source that hashes wrong is the clearer story than the registry's DIGEST_INVALID.
            if (hashValid && sent === length) {
              const actual = `${algorithm}:${hash.digest('hex')}`;
              if (actual !== descriptor.digest) throw mismatch(start + sent, actual);
            }
            throw err;
          }
          if (sent !== length) throw mismatch(start + sent, '(a short read)');
          return 'sent';
        } else {
          session = await client.uploadChunk(
            repository,
            session,
            Readable.from(counted()),
            start,
            length,
            request,
          );
        }
        offset += sent;
        if (descriptor.size !== undefined && sent !== length) throw mismatch(offset, '(a short read)');
      } catch (err) {
        if (options.signal?.aborted) throw err;
        if (err instanceof RegauthError && (err.code === 'ERR_DIGEST_MISMATCH' || err.code === 'ERR_DENIED'))
          throw err;
        if (resumes >= MAX_RESUMES) throw err;
        resumes++;
        // Where did the registry get to? Resume there, with the source reopened at that offset.
        const status = await client.uploadOffset(repository, session, request);
        session = status.session;
        // distribution answers `Range: 0-0` for an empty session too.
        offset = start === 0 && status.offset === 1 ? 0 : status.offset;
        hashValid = false;
        await reader.close();
        reader = new PieceReader(source(offset));
      }
    }
    if (descriptor.size !== undefined && offset !== descriptor.size)
      throw mismatch(offset, '(a short source)');
    if (hashValid) {
      const actual = `${algorithm}:${hash.digest('hex')}`;
      if (actual !== descriptor.digest) throw mismatch(offset, actual);
    }
    await client.completeUpload(repository, session, descriptor.digest, undefined, 0, request);
    return 'sent';
  } catch (err) {
    // Without the caller's signal, aborted or not: cancelUpload bounds it in time itself.
    await client.cancelUpload(repository, session);
    throw err;
  }
}
