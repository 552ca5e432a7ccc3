import { randomBytes } from 'node:crypto';
import { open, rename, rm, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { parseDigest } from '../digest/digest.js';
import { abortable } from '../errors/aborted-error.js';
import { fileSystemError, withFileSystemErrors } from '../errors/file-system-error.js';
import { RegauthError } from '../errors/regauth-error.js';
import type { RegistryClient, RequestOptions } from '../registry/registry-client.js';
import { hostPlatform, type Platform } from '../registry/select-platform.js';
import { manifestForPlatform } from './manifest-for-platform.js';
import { REF_NAME_ANNOTATION } from './oci-layout.js';
import { readBlob } from './read-blob.js';
import { summarize, type TransferListener, type TransferSummary } from './transfer-events.js';

export interface DockerArchiveOptions {
  /**
   * The `RepoTags` entry (`repo:tag`) docker load tags the image with. Left out: none, and docker
   * load keeps the image untagged, as for `docker save IMAGE_ID` (right for a pull by digest: a
   * made-up `:latest` would move the user's own).
   */
  readonly tag?: string;
  readonly platform?: Platform;
  readonly onEvent?: TransferListener;
  /**
   * Where the tar is written until it is complete and renamed to `output`; a caller that may be
   * ended by a signal names it so it can remove it. Left out: a random name next to `output`.
   */
  readonly partialPath?: string;
  /** Ends the pull (ERR_ABORTED); the half-written tar is removed, nothing appears at `output`. */
  readonly signal?: AbortSignal;
}

/** tar-stream's entries are streamx writables: write() and 'drain' as in node:stream. */
interface EntrySink {
  write(chunk: Uint8Array): boolean;
  once(event: 'drain' | 'close', listener: () => void): unknown;
  removeListener(event: 'drain' | 'close', listener: () => void): unknown;
}

/** The entry closed under a write: the archive file failed, and says why through the pipeline. */
class ArchiveClosedError extends Error {}

/** Waits for room in the entry; an entry closed under it (the file failed) ends the wait. */
async function write(stream: EntrySink, chunk: Uint8Array): Promise<void> {
  if (stream.write(chunk)) return;
  await new Promise<void>((resolve, reject) => {
    const drained = () => {
      stream.removeListener('close', closed);
      resolve();
    };
    const closed = () => {
      stream.removeListener('drain', drained);
      reject(new ArchiveClosedError('the archive closed while a blob was being written'));
    };
    stream.once('drain', drained);
    stream.once('close', closed);
  });
}

const blobName = (digest: string) => {
  const { algorithm, hex } = parseDigest(digest);
  return `blobs/${algorithm}/${hex}`;
};

/**
 * Pulls one platform's image into a tar that `docker load`, `podman load` and
 * `skopeo copy docker-archive:` read: the layout docker save writes since Docker 25 — blobs
 * under `blobs/sha256/`, `manifest.json` naming config and layers, and `index.json`/`oci-layout`.
 * Blobs stream from the registry into the tar in order (a tar is written front to back); the
 * file appears under its name only when complete.
 */
export async function pullDockerArchive(
  client: RegistryClient,
  repository: string,
  reference: string,
  output: string,
  options: DockerArchiveOptions,
): Promise<TransferSummary> {
  const name = `${client.registry}/${repository}${reference.includes(':') ? '@' : ':'}${reference}`;
  return abortable(options.signal, `the pull of ${name} to ${output}`, (signal) =>
    pullArchive(client, repository, reference, output, options, signal),
  );
}

async function pullArchive(
  client: RegistryClient,
  repository: string,
  reference: string,
  output: string,
  options: DockerArchiveOptions,
  signal: AbortSignal | undefined,
): Promise<TransferSummary> {
  const request: RequestOptions = signal === undefined ? {} : { signal };
  const where = `${client.registry}/${repository}`;
  const action = 'write the docker archive';
  // A folder would be found only at the final rename, after the whole download.
  if ((await stat(output).catch(() => undefined))?.isDirectory()) {
    throw new RegauthError(
      'ERR_FILE_SYSTEM',
      `cannot ${action} ${output}: it is a folder; give the path of a .tar file, such as ${output}/image.tar`,
    );
  }
  const image = await manifestForPlatform(client, repository, reference, {
    indexDefault: hostPlatform(),
    ...(options.platform === undefined ? {} : { platform: options.platform }),
    ...request,
  });
  if (image.parsed.kind !== 'image') {
    throw new RegauthError(
      'ERR_UNSUPPORTED',
      `manifest ${where}:${reference} is an index of indexes: no single image to save`,
    );
  }
  const { config, layers } = image.parsed;
  const summary = summarize(options.onEvent);
  const emit = summary.listener;
  const temp = options.partialPath ?? `${output}.${randomBytes(6).toString('hex')}.partial`;
  // Opened before the pipeline starts: a folder that may not be written to is one clear error
  // here, not a stream failure that nothing awaits yet.
  const file = await withFileSystemErrors(action, output, () => open(temp, 'wx', 0o644));
  const pack = tar.pack();
  const done = pipeline(pack, file.createWriteStream());
  // Awaited at the end; a failure before then (a full disk) also stops the writes below.
  done.catch(() => {});
  const addBytes = async (name: string, bytes: Uint8Array) => {
    await new Promise<void>((resolve, reject) => {
      pack.entry({ name, size: bytes.length, mode: 0o644, mtime: new Date(0) }, Buffer.from(bytes), (err) =>
        err ? reject(err) : resolve(),
      );
    });
  };
  try {
    const seen = new Set<string>();
    for (const blob of [config, ...layers]) {
      if (seen.has(blob.digest)) continue;
      seen.add(blob.digest);
      emit({ kind: 'blob-start', digest: blob.digest, size: blob.size });
      const entry = pack.entry({
        name: blobName(blob.digest),
        size: blob.size,
        mode: 0o644,
        mtime: new Date(0),
      });
      const finished = new Promise<void>((resolve, reject) => {
        entry.on('finish', resolve);
        entry.on('error', reject);
      });
      for await (const chunk of readBlob(client, repository, blob, {
        ...request,
        onResume: (offset, reason, waitMs) =>
          emit({ kind: 'blob-resume', digest: blob.digest, offset, reason, waitMs }),
      })) {
        await write(entry, chunk);
        emit({ kind: 'blob-bytes', digest: blob.digest, bytes: chunk.length });
      }
      (entry as unknown as { end(): void }).end();
      await finished;
      emit({ kind: 'blob-done', digest: blob.digest, size: blob.size, how: 'sent' });
    }
    await addBytes(blobName(image.digest), image.bytes);
    await addBytes(
      'manifest.json',
      Buffer.from(
        JSON.stringify([
          {
            Config: blobName(config.digest),
            RepoTags: options.tag === undefined ? [] : [options.tag],
            Layers: layers.map((l) => blobName(l.digest)),
          },
        ]),
      ),
    );
    await addBytes(
      'index.json',
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          manifests: [
            options.tag === undefined
              ? image.descriptor
              : { ...image.descriptor, annotations: { [REF_NAME_ANNOTATION]: options.tag } },
          ],
        }),
      ),
    );
    await addBytes('oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
    pack.finalize();
    await done;
    await rename(temp, output);
  } catch (caught) {
    // The file's own failure says more than the closed entry it caused.
    const err =
      caught instanceof ArchiveClosedError
        ? await done.then(
            () => caught,
            (failure: unknown) => failure,
          )
        : caught;
    pack.destroy();
    await done.catch(() => {});
    await file.close().catch(() => {});
    await rm(temp, { force: true });
    throw fileSystemError(err, action, output);
  }
  emit({ kind: 'manifest', digest: image.digest, reference: options.tag ?? image.digest });
  return {
    digest: image.digest,
    mediaType: image.mediaType,
    blobs: summary.blobs,
    manifests: summary.manifests,
  };
}
