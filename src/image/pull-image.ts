import { abortable, throwIfAborted } from '../errors/aborted-error.js';
import type { RegistryClient, RequestOptions } from '../registry/registry-client.js';
import { hostPlatform, type Platform } from '../registry/select-platform.js';
import { collectManifests } from './collect-manifests.js';
import { manifestForPlatform, manifestLoader } from './manifest-for-platform.js';
import { OciLayout } from './oci-layout.js';
import { pumpBlob } from './read-blob.js';
import { forEachLimit, summarize, type TransferListener, type TransferSummary } from './transfer-events.js';

/** Blobs in flight at once; registries and CDNs serve a handful of parallel streams well. */
export const DEFAULT_JOBS = 4;

export interface PullImageOptions {
  /**
   * The platform to pick from an index. A single-platform image of another platform is refused.
   * Left out: the host's from an index, and a single-platform image whatever its platform.
   */
  readonly platform?: Platform;
  /** Keep the whole index with every platform. Left out: false. */
  readonly allPlatforms?: boolean;
  /** The `org.opencontainers.image.ref.name` to record in index.json. Left out: none. */
  readonly refName?: string;
  /** Left out: DEFAULT_JOBS. */
  readonly jobs?: number;
  readonly onEvent?: TransferListener;
  /**
   * Ends the pull (ERR_ABORTED): no new blob starts, downloads in flight are torn down, and the
   * unfinished blob files this pull wrote or took over are removed (see `keepPartial`). Complete,
   * verified blobs stay; a folder the pull created is removed when nothing complete arrived.
   */
  readonly signal?: AbortSignal;
  /**
   * On abort, keep the unfinished blobs in the layout's `.regauth-partial/` folder, so that a
   * later pull into the same layout resumes them from where they stopped. Left out: false.
   */
  readonly keepPartial?: boolean;
}

/**
 * Pulls an image into an OCI image layout: blobs streamed to disk and verified (a blob already
 * in the layout is hashed and skipped), then manifests, then the index.json entry. A blob whose
 * download an earlier pull left unfinished continues from where it stopped (OciLayout.writeBlob);
 * a pull that fails keeps a valid layout, or removes the folder it made when nothing arrived.
 */
export async function pullImage(
  client: RegistryClient,
  repository: string,
  reference: string,
  dir: string,
  options: PullImageOptions = {},
): Promise<TransferSummary> {
  const name = `${client.registry}/${repository}${reference.includes(':') ? '@' : ':'}${reference}`;
  return abortable(options.signal, `the pull of ${name}`, (signal) =>
    pull(client, repository, reference, dir, options, signal),
  );
}

async function pull(
  client: RegistryClient,
  repository: string,
  reference: string,
  dir: string,
  options: PullImageOptions,
  signal: AbortSignal | undefined,
): Promise<TransferSummary> {
  const request: RequestOptions = signal === undefined ? {} : { signal };
  const what = `the pull of ${client.registry}/${repository}`;
  const load = manifestLoader(client, repository, request);
  // --all-platforms keeps an index whole; else its entry for the platform (the host's by default).
  const root = await manifestForPlatform(
    client,
    repository,
    reference,
    options.allPlatforms
      ? request
      : {
          indexDefault: hostPlatform(),
          ...(options.platform === undefined ? {} : { platform: options.platform }),
          ...request,
        },
  );
  const { manifests, blobs } = await collectManifests(root, load, request);
  throwIfAborted(signal, what);
  const layout = await OciLayout.open(dir, { create: true });
  const summary = summarize(options.onEvent);
  const emit = summary.listener;
  try {
    await forEachLimit(
      blobs,
      options.jobs ?? DEFAULT_JOBS,
      async (blob) => {
        if (await layout.hasBlob(blob)) {
          emit({ kind: 'blob-done', digest: blob.digest, size: blob.size, how: 'skipped' });
          return;
        }
        emit({ kind: 'blob-start', digest: blob.digest, size: blob.size });
        let attempts = 0;
        await layout.writeBlob(
          blob,
          {
            // Each chunk goes to the file as it comes (over plain HTTP, from the connection's read buffer).
            pump: (held, write) => {
              // writeBlob asks again only after discarding a partial file that proved wrong.
              if (attempts++ > 0) {
                emit({
                  kind: 'blob-resume',
                  digest: blob.digest,
                  offset: held?.size ?? 0,
                  reason: 'the partial download was wrong; starting over',
                  waitMs: 0,
                });
              }
              return pumpBlob(client, repository, blob, write, {
                ...(held === undefined ? {} : { held: held.read() }),
                ...request,
                onBytes: (bytes) => emit({ kind: 'blob-bytes', digest: blob.digest, bytes }),
                onResume: (offset, reason, waitMs) =>
                  emit({ kind: 'blob-resume', digest: blob.digest, offset, reason, waitMs }),
              });
            },
          },
          {
            sourceVerifies: true,
            ...request,
            ...(options.keepPartial === undefined ? {} : { keepPartial: options.keepPartial }),
          },
        );
        emit({ kind: 'blob-done', digest: blob.digest, size: blob.size, how: 'sent' });
      },
      { ...request, what },
    );
    for (const m of manifests) {
      throwIfAborted(signal, what);
      await layout.writeBlobBytes(m.descriptor, m.bytes);
      emit({
        kind: 'manifest',
        digest: m.digest,
        reference: m === root ? (options.refName ?? m.digest) : m.digest,
      });
    }
    throwIfAborted(signal, what);
    await layout.addManifest(root.descriptor, options.refName);
  } catch (err) {
    // Each aborted download removed its own file (writeBlob); their folders go with them.
    if (signal?.aborted && !options.keepPartial) await layout.removeEmptyPartialFolders().catch(() => {});
    // A new folder that received nothing goes again; one with bytes in it stays a valid layout,
    // its partial downloads waiting for the next pull.
    await layout.removeIfEmpty().catch(() => {});
    throw err;
  }
  // Tidying up is no reason to fail a pull that has everything: what stays goes with the next one.
  await layout.sweepPartials().catch(() => {});
  return {
    digest: root.digest,
    mediaType: root.mediaType,
    blobs: summary.blobs,
    manifests: summary.manifests,
  };
}
