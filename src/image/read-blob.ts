import { createHash } from 'node:crypto';
import { parseDigest } from '../digest/digest.js';
import { raceSignal, sleepUnlessAborted, throwIfAborted } from '../errors/aborted-error.js';
import { RegauthError } from '../errors/regauth-error.js';
import type { RegistryClient } from '../registry/registry-client.js';
import { isRetryableNetworkError } from '../transport/create-transport.js';
import { httpErrorFacts } from '../transport/http-error-facts.js';

/** A content descriptor (OCI image-spec descriptor.md), the parts a transfer needs. */
export interface BlobDescriptor {
  readonly digest: string;
  readonly size?: number;
  readonly mediaType?: string;
}

/** Times a broken blob download is picked up again from where it stopped. */
export const MAX_BLOB_RESUMES = 5;

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
  const { algorithm } = parseDigest(descriptor.digest);
  const hash = createHash(algorithm);
  const { signal } = options;
  const what = `blob ${descriptor.digest} from ${client.registry}/${repository}`;
  const sleep = options.sleep ?? ((ms: number) => sleepUnlessAborted(ms, signal, what));
  const from = options.offset ?? 0;
  let offset = from;
  if (options.held !== undefined) {
    if (from > 0) throw new TypeError('readBlob: held and offset exclude each other');
    for await (const chunk of options.held) {
      hash.update(chunk);
      offset += chunk.length;
    }
    if (descriptor.size !== undefined && offset > descriptor.size) {
      throw sizeError(
        descriptor.digest,
        `the ${offset} bytes held are more than the ${descriptor.size} bytes its descriptor states`,
      );
    }
    if (offset > 0) options.onResume?.(offset, 'continuing a partial download', 0);
  }
  const held = offset - from;
  let resumes = 0;
  const resume = async (reason: string, err?: unknown): Promise<void> => {
    if (resumes >= MAX_BLOB_RESUMES) {
      throw new RegauthError(
        'ERR_NETWORK',
        `blob ${descriptor.digest} from ${client.registry}/${repository}: ${reason} after ${offset} bytes, ` +
          `${MAX_BLOB_RESUMES} resumes did not finish it`,
        err === undefined ? {} : { cause: err },
      );
    }
    resumes++;
    const waitMs = 100 * 2 ** resumes;
    options.onResume?.(offset, reason, waitMs);
    await raceSignal(sleep(waitMs), signal, what);
  };

  // Held bytes may already be the whole blob: then only the digest is left to check.
  const complete = options.held !== undefined && offset > 0 && offset === descriptor.size;
  while (!complete) {
    throwIfAborted(signal, what);
    let res: Awaited<ReturnType<RegistryClient['getBlob']>>;
    try {
      res = await client.getBlob(
        repository,
        descriptor.digest,
        offset,
        signal === undefined ? {} : { signal },
      );
    } catch (err) {
      if (!(err instanceof RegauthError && err.code === 'ERR_NETWORK') && !isRetryableNetworkError(err))
        throw err;
      await resume('the connection failed', err);
      continue;
    }
    let skip = offset;
    if (res.status === 206) {
      const start = /^bytes (\d+)-/.exec(res.header('content-range') ?? '')?.[1];
      if (Number(start) === offset) skip = 0;
      else {
        // A range we did not ask for: start this answer over from its own beginning.
        await res.dump();
        throw new RegauthError(
          'ERR_REGISTRY',
          `blob ${descriptor.digest}: the registry answered a range request from ${offset} with ${res.header('content-range') ?? 'no Content-Range'}`,
          httpErrorFacts(res),
        );
      }
    }
    try {
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        let data = chunk;
        if (skip > 0) {
          if (data.length <= skip) {
            skip -= data.length;
            continue;
          }
          data = data.subarray(skip);
          skip = 0;
        }
        if (descriptor.size !== undefined && offset + data.length > descriptor.size) {
          res.body.destroy();
          throw sizeError(
            descriptor.digest,
            `the registry sent more than the ${descriptor.size} bytes its descriptor states`,
          );
        }
        hash.update(data);
        offset += data.length;
        options.onBytes?.(data.length);
        yield data;
      }
    } catch (err) {
      if (err instanceof RegauthError || !isRetryableNetworkError(err)) throw err;
      await resume(`the connection broke (${(err as { code?: string }).code})`, err);
      continue;
    }
    if (descriptor.size !== undefined && offset < descriptor.size) {
      await resume(`the body ended at ${offset} of ${descriptor.size} bytes`);
      continue;
    }
    break;
  }
  if (from > 0) return;
  const actual = `${algorithm}:${hash.digest('hex')}`;
  if (actual !== descriptor.digest) {
    throw new RegauthError(
      'ERR_DIGEST_MISMATCH',
      `blob ${descriptor.digest} from ${client.registry}/${repository}: ${held > 0 ? `the ${held} bytes held and those received` : 'the bytes received'} hash to ${actual}; nothing was kept`,
    );
  }
}
