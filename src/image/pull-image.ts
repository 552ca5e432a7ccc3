import type { RegistryClient } from '../registry/registry-client.js';
import { hostPlatform, type Platform, selectPlatform } from '../registry/select-platform.js';
import { collectManifests, type FetchedManifest, fetched } from './collect-manifests.js';
import { OciLayout } from './oci-layout.js';
import { readBlob } from './read-blob.js';
import { forEachLimit, summarize, type TransferListener, type TransferSummary } from './transfer-events.js';

/** Blobs in flight at once; registries and CDNs serve a handful of parallel streams well. */
export const DEFAULT_JOBS = 4;

export interface PullImageOptions {
  /** The platform to pick from an index. Left out: the host's. */
  readonly platform?: Platform;
  /** Keep the whole index with every platform. Left out: false. */
  readonly allPlatforms?: boolean;
  /** The `org.opencontainers.image.ref.name` to record in index.json. Left out: none. */
  readonly refName?: string;
  /** Left out: DEFAULT_JOBS. */
  readonly jobs?: number;
  readonly onEvent?: TransferListener;
}

/**
 * Pulls an image into an OCI image layout: blobs streamed to disk and verified (a blob already
 * in the layout is hashed and skipped), then manifests, then the index.json entry.
 */
export async function pullImage(
  client: RegistryClient,
  repository: string,
  reference: string,
  dir: string,
  options: PullImageOptions = {},
): Promise<TransferSummary> {
  const where = `${client.registry}/${repository}`;
  const load = async (d: { digest: string; platform?: Readonly<Record<string, unknown>> }) =>
    fetched(await client.getManifest(repository, d.digest), `manifest ${where}@${d.digest}`, d.platform);
  let root: FetchedManifest = fetched(
    await client.getManifest(repository, reference),
    `manifest ${where}:${reference}`,
  );
  if (root.parsed.kind === 'index' && !options.allPlatforms) {
    const entry = selectPlatform(root.parsed, options.platform ?? hostPlatform());
    root = await load(entry);
  }
  const { manifests, blobs } = await collectManifests(root, load);
  const layout = await OciLayout.open(dir, { create: true });
  const summary = summarize(options.onEvent);
  const emit = summary.listener;

  await forEachLimit(blobs, options.jobs ?? DEFAULT_JOBS, async (blob) => {
    if (await layout.hasBlob(blob)) {
      emit({ kind: 'blob-done', digest: blob.digest, size: blob.size, how: 'skipped' });
      return;
    }
    emit({ kind: 'blob-start', digest: blob.digest, size: blob.size });
    await layout.writeBlob(
      blob,
      readBlob(client, repository, blob, {
        onBytes: (bytes) => emit({ kind: 'blob-bytes', digest: blob.digest, bytes }),
        onResume: (offset, reason, waitMs) =>
          emit({ kind: 'blob-resume', digest: blob.digest, offset, reason, waitMs }),
      }),
      { sourceVerifies: true },
    );
    emit({ kind: 'blob-done', digest: blob.digest, size: blob.size, how: 'sent' });
  });
  for (const m of manifests) {
    await layout.writeBlobBytes(m.descriptor, m.bytes);
    emit({
      kind: 'manifest',
      digest: m.digest,
      reference: m === root ? (options.refName ?? m.digest) : m.digest,
    });
  }
  await layout.addManifest(root.descriptor, options.refName);
  return {
    digest: root.digest,
    mediaType: root.mediaType,
    blobs: summary.blobs,
    manifests: summary.manifests,
  };
}
