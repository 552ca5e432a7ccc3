import type { RegistryClient } from '../registry/registry-client.js';
import type { Platform } from '../registry/select-platform.js';
import { selectPlatform } from '../registry/select-platform.js';
import { collectManifests, type FetchedManifest, fetched } from './collect-manifests.js';
import { DEFAULT_JOBS } from './pull-image.js';
import { readBlob } from './read-blob.js';
import { forEachLimit, summarize, type TransferListener, type TransferSummary } from './transfer-events.js';
import { uploadBlob } from './upload-blob.js';

export interface ImageLocation {
  readonly client: RegistryClient;
  readonly repository: string;
  /** A tag or a digest. */
  readonly reference: string;
}

export interface CopyImageOptions {
  /** Copy only this platform's manifest out of an index. Left out: the whole index. */
  readonly platform?: Platform;
  readonly jobs?: number;
  readonly chunkBytes?: number;
  readonly onEvent?: TransferListener;
}

/**
 * Copies an image between repositories, registry to registry, without touching disk and
 * holding at most one chunk per blob in memory. Blobs the destination has are skipped; within
 * one registry they are mounted from the source repository instead of sent. Manifests are
 * pushed byte for byte, so every digest is preserved.
 */
export async function copyImage(
  src: ImageLocation,
  dst: ImageLocation,
  options: CopyImageOptions = {},
): Promise<TransferSummary> {
  const where = `${src.client.registry}/${src.repository}`;
  const load = async (d: { digest: string; platform?: Readonly<Record<string, unknown>> }) =>
    fetched(
      await src.client.getManifest(src.repository, d.digest),
      `manifest ${where}@${d.digest}`,
      d.platform,
    );
  let root: FetchedManifest = fetched(
    await src.client.getManifest(src.repository, src.reference),
    `manifest ${where}:${src.reference}`,
  );
  if (root.parsed.kind === 'index' && options.platform !== undefined) {
    root = await load(selectPlatform(root.parsed, options.platform));
  }
  const { manifests, blobs } = await collectManifests(root, load);
  const sameRegistry = src.client.registry === dst.client.registry && src.repository !== dst.repository;
  // One token for every destination request: push on the destination, pull on the source
  // for mounts (PROTOCOL.md §3).
  const target = sameRegistry
    ? dst.client.withScopes([{ type: 'repository', name: src.repository, actions: ['pull'] }])
    : dst.client;
  const summary = summarize(options.onEvent);
  const emit = summary.listener;
  await forEachLimit(blobs, options.jobs ?? DEFAULT_JOBS, async (blob) => {
    emit({ kind: 'blob-start', digest: blob.digest, size: blob.size });
    const how = await uploadBlob(
      target,
      dst.repository,
      blob,
      (from) =>
        readBlob(src.client, src.repository, blob, {
          offset: from,
          onResume: (offset, reason) => emit({ kind: 'blob-resume', digest: blob.digest, offset, reason }),
        }),
      {
        sourceName: `${where}@${blob.digest}`,
        onBytes: (bytes) => emit({ kind: 'blob-bytes', digest: blob.digest, bytes }),
        ...(sameRegistry ? { mountFrom: src.repository } : {}),
        ...(options.chunkBytes === undefined ? {} : { chunkBytes: options.chunkBytes }),
      },
    );
    emit({ kind: 'blob-done', digest: blob.digest, size: blob.size, how });
  });
  for (const m of manifests) {
    const ref = m === root ? dst.reference : m.digest;
    await target.putManifest(dst.repository, ref, m.bytes, m.mediaType);
    emit({ kind: 'manifest', digest: m.digest, reference: ref });
  }
  return {
    digest: root.digest,
    mediaType: root.mediaType,
    blobs: summary.blobs,
    manifests: summary.manifests,
  };
}
