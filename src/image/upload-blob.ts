import { createHash } from 'node:crypto';
import { parseDigest } from '../digest/digest.js';
import { RegauthError } from '../errors/regauth-error.js';
import type { RegistryClient, UploadSession } from '../registry/registry-client.js';
import type { BlobDescriptor } from './read-blob.js';

/**
 * Chunk size for PATCH uploads, and the largest blob sent in one PUT. Each chunk is held in
 * memory so that a failed one can be sent again: --jobs chunks in flight stay far below the
 * 150 MB budget, and 8 MiB chunks keep the per-request round trip small next to the transfer.
 */
export const DEFAULT_CHUNK_BYTES = 8 * 1024 * 1024;
/** Times a failed chunk is checked against the registry's offset and sent again. */
const MAX_CHUNK_RETRIES = 3;

export interface UploadBlobOptions {
  /** Mount from this repository of the same registry instead of sending bytes, when it has the blob. */
  readonly mountFrom?: string;
  /** Left out: DEFAULT_CHUNK_BYTES (raised to the registry's OCI-Chunk-Min-Length). */
  readonly chunkBytes?: number;
  readonly onBytes?: (bytes: number) => void;
  /** Says where the bytes come from, for error messages (a file path, a source reference). */
  readonly sourceName?: string;
}

/**
 * Puts one blob into a repository: skipped when the registry has it (HEAD), mounted from
 * `mountFrom` when possible, else uploaded — monolithic PUT when it fits in one chunk, chunked
 * PATCHes otherwise. The bytes are hashed on the way and the upload is abandoned (never
 * completed) when they do not match the digest, so a corrupt source never lands.
 */
export async function uploadBlob(
  client: RegistryClient,
  repository: string,
  descriptor: BlobDescriptor,
  source: () => AsyncIterable<Uint8Array>,
  options: UploadBlobOptions = {},
): Promise<'sent' | 'skipped' | 'mounted'> {
  if ((await client.headBlob(repository, descriptor.digest)).exists) return 'skipped';
  const started = await client.startUpload(
    repository,
    options.mountFrom === undefined ? undefined : { digest: descriptor.digest, from: options.mountFrom },
  );
  if (started.mounted) return 'mounted';
  let session: UploadSession = started;
  const chunkBytes = Math.max(options.chunkBytes ?? DEFAULT_CHUNK_BYTES, session.minChunkBytes ?? 0);
  const { algorithm } = parseDigest(descriptor.digest);
  const hash = createHash(algorithm);
  let offset = 0;
  const sendChunk = async (chunk: Buffer): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      try {
        session = await client.uploadChunk(repository, session, chunk, offset);
        offset += chunk.length;
        return;
      } catch (err) {
        if (attempt >= MAX_CHUNK_RETRIES) throw err;
        // The registry may have stored the chunk before the answer was lost: ask where it stands.
        const status = await client.uploadOffset(repository, session);
        session = status.session;
        // distribution answers `Range: 0-0` for an empty session too: with nothing stored yet, 1 means 0.
        if (offset === 0 && status.offset === 1 && chunk.length !== 1) status.offset = 0;
        if (status.offset === offset + chunk.length) {
          offset += chunk.length;
          return;
        }
        if (status.offset !== offset) throw err;
      }
    }
  };

  // One chunk buffer, reused: a full chunk is sent only once more bytes follow it, so the
  // last chunk always goes with the completing PUT (one request for a small blob).
  const chunk = Buffer.allocUnsafe(Math.min(chunkBytes, descriptor.size ?? chunkBytes));
  let current = chunk;
  let used = 0;
  try {
    for await (const piece of source()) {
      let data = Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
      hash.update(data);
      options.onBytes?.(data.length);
      while (data.length > 0) {
        if (used === current.length) {
          if (current.length < chunkBytes) {
            // The descriptor understated the size: grow to a full chunk.
            const bigger = Buffer.allocUnsafe(chunkBytes);
            current.copy(bigger, 0, 0, used);
            current = bigger;
            continue;
          }
          await sendChunk(current);
          used = 0;
        }
        const n = Math.min(current.length - used, data.length);
        data.copy(current, used, 0, n);
        used += n;
        data = data.subarray(n);
      }
    }
    const actual = `${algorithm}:${hash.digest('hex')}`;
    const size = offset + used;
    if (actual !== descriptor.digest || (descriptor.size !== undefined && size !== descriptor.size)) {
      throw new RegauthError(
        'ERR_DIGEST_MISMATCH',
        `${options.sourceName ?? 'the source'} of blob ${descriptor.digest} holds ${size} bytes hashing to ${actual}; ` +
          'the upload was abandoned',
      );
    }
    await client.completeUpload(repository, session, descriptor.digest, current.subarray(0, used));
    return 'sent';
  } catch (err) {
    await client.cancelUpload(repository, session);
    throw err;
  }
}
