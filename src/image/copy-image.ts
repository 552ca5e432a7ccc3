import { abortable } from '../errors/aborted-error.js';
import type { RegistryClient, RequestOptions } from '../registry/registry-client.js';
import type { Platform } from '../registry/select-platform.js';
import { collectManifests } from './collect-manifests.js';
import { manifestForPlatform, manifestLoader } from './manifest-for-platform.js';
import { DEFAULT_JOBS } from './pull-image.js';
import { pushManifests } from './push-manifests.js';
import { readBlob } from './read-blob.js';
import type { TransferListener, TransferSummary } from './transfer-events.js';

export interface ImageLocation {
  readonly client: RegistryClient;
  readonly repository: string;
  /** A tag or a digest. */
  readonly reference: string;
}

export interface CopyImageOptions {
  /**
   * Copy only this platform's manifest out of an index; a single-platform image of another
   * platform is refused. Left out: the whole index, or the image whatever its platform.
   */
  readonly platform?: Platform;
  readonly jobs?: number;
  readonly chunkBytes?: number;
  readonly onEvent?: TransferListener;
  /**
   * Ends the copy (ERR_ABORTED): no new blob starts, transfers in flight are torn down and their
   * upload sessions cancelled, and no manifest is pushed, so `dst.reference` is left as it was.
   */
  readonly signal?: AbortSignal;
}

/**
 * Copies an image between repositories, registry to registry, without touching disk and
 * holding at most one chunk per blob in memory. Blobs the destination has are skipped; within
 * one registry, read and written with the same credentials, they are mounted from the source
 * repository instead of sent. Manifests are pushed byte for byte, so every digest is preserved.
 */
export async function copyImage(
  src: ImageLocation,
  dst: ImageLocation,
  options: CopyImageOptions = {},
): Promise<TransferSummary> {
  const name = (l: ImageLocation) => `${l.client.registry}/${l.repository}:${l.reference}`;
  return abortable(options.signal, `the copy of ${name(src)} to ${name(dst)}`, (signal) =>
    copy(src, dst, options, signal),
  );
}

async function copy(
  src: ImageLocation,
  dst: ImageLocation,
  options: CopyImageOptions,
  signal: AbortSignal | undefined,
): Promise<TransferSummary> {
  const request: RequestOptions = signal === undefined ? {} : { signal };
  const where = `${src.client.registry}/${src.repository}`;
  const load = manifestLoader(src.client, src.repository, request);
  // Without a platform an index is copied whole.
  const root = await manifestForPlatform(src.client, src.repository, src.reference, {
    ...(options.platform === undefined ? {} : { platform: options.platform }),
    ...request,
  });
  const { manifests, blobs } = await collectManifests(root, load, request);
  // A mount needs one token for both repositories: not there when each side has its own account.
  const sameRegistry =
    src.client.registry === dst.client.registry &&
    src.repository !== dst.repository &&
    src.client.sharesCredentialsWith(dst.client);
  // One token for every destination request: push on the destination, pull on the source
  // for mounts (https://github.com/opencontainers/distribution-spec/blob/main/spec.md#mounting-a-blob-from-another-repository).
  const target = sameRegistry
    ? dst.client.withScopes([{ type: 'repository', name: src.repository, actions: ['pull'] }])
    : dst.client;
  return pushManifests(
    target,
    dst.repository,
    dst.reference,
    { root, manifests, blobs },
    {
      jobs: options.jobs ?? DEFAULT_JOBS,
      ...(options.chunkBytes === undefined ? {} : { chunkBytes: options.chunkBytes }),
      ...(options.onEvent === undefined ? {} : { onEvent: options.onEvent }),
      ...(sameRegistry ? { mountFrom: src.repository } : {}),
      ...request,
      sourceName: (blob) => `${where}@${blob.digest}`,
      source: (blob, emit) => (from) =>
        readBlob(src.client, src.repository, blob, {
          offset: from,
          ...request,
          onResume: (offset, reason, waitMs) =>
            emit({ kind: 'blob-resume', digest: blob.digest, offset, reason, waitMs }),
        }),
    },
  );
}
