import { throwIfAborted } from '../errors/aborted-error.js';
import { RegauthError } from '../errors/regauth-error.js';
import type { RegistryClient, RequestOptions } from '../registry/registry-client.js';
import type { FetchedManifest } from './collect-manifests.js';
import type { LayoutDescriptor } from './oci-layout.js';
import { forEachLimit, summarize, type TransferListener, type TransferSummary } from './transfer-events.js';
import { updateReferrersFallback } from './update-referrers-fallback.js';
import { type BlobSource, uploadBlob } from './upload-blob.js';

export interface PushManifestsOptions {
  readonly jobs: number;
  readonly chunkBytes?: number;
  readonly onEvent?: TransferListener;
  /** Mount blobs from this repository of the same registry instead of sending them. */
  readonly mountFrom?: string;
  /** Where a blob's bytes come from, from an offset on. */
  readonly source: (blob: LayoutDescriptor, emit: TransferListener) => BlobSource;
  /** Names a blob's source in error messages. */
  readonly sourceName: (blob: LayoutDescriptor) => string;
  /** Ends the push (ERR_ABORTED): no blob starts, uploads in flight are cancelled, no manifest is pushed. */
  readonly signal?: AbortSignal;
}

/**
 * The second half of a push or a copy: every blob (at most `jobs` at once; skipped, mounted or
 * sent), then the manifests in the order given — children before their index — with `root`
 * under `reference` and the others under their digests. A manifest with a `subject` that the
 * registry did not index is added to the subject's referrers tag.
 */
export async function pushManifests(
  client: RegistryClient,
  repository: string,
  reference: string,
  collected: {
    readonly root: FetchedManifest;
    readonly manifests: readonly FetchedManifest[];
    readonly blobs: readonly LayoutDescriptor[];
  },
  options: PushManifestsOptions,
): Promise<TransferSummary> {
  const summary = summarize(options.onEvent);
  const emit = summary.listener;
  const { signal } = options;
  const request: RequestOptions = signal === undefined ? {} : { signal };
  const what = `the push to ${client.registry}/${repository}:${reference}`;
  await forEachLimit(
    collected.blobs,
    options.jobs,
    async (blob) => {
      emit({ kind: 'blob-start', digest: blob.digest, size: blob.size });
      const how = await uploadBlob(client, repository, blob, options.source(blob, emit), {
        sourceName: options.sourceName(blob),
        onBytes: (bytes) => emit({ kind: 'blob-bytes', digest: blob.digest, bytes }),
        ...(options.mountFrom === undefined ? {} : { mountFrom: options.mountFrom }),
        ...(options.chunkBytes === undefined ? {} : { chunkBytes: options.chunkBytes }),
        ...request,
      });
      emit({ kind: 'blob-done', digest: blob.digest, size: blob.size, how });
    },
    { ...request, what },
  );
  for (const m of collected.manifests) {
    throwIfAborted(signal, what);
    const ref = m === collected.root ? reference : m.digest;
    const answer = await client.putManifestDetailed(repository, ref, m.bytes, m.mediaType, request);
    emit({ kind: 'manifest', digest: m.digest, reference: ref });
    if (answer.subject === undefined) {
      let fallback: Awaited<ReturnType<typeof updateReferrersFallback>>;
      try {
        fallback = await updateReferrersFallback(client, repository, m, request);
      } catch (err) {
        // The manifest is in: say so, so that nobody pushes it again to mend the referrers tag.
        if (!(err instanceof RegauthError)) throw err;
        throw new RegauthError(
          err.code,
          `${client.registry}/${repository}@${m.digest} was pushed, but the referrers tag that lists it ` +
            `for registries without the referrers API could not be updated: ${err.message}`,
          {
            cause: err,
            registryErrors: err.registryErrors,
            ...(err.status === undefined ? {} : { status: err.status }),
            ...(err.request === undefined ? {} : { request: err.request }),
            ...(err.hint === undefined ? {} : { hint: err.hint }),
            ...(err.access === undefined ? {} : { access: err.access }),
          },
        );
      }
      if (fallback) emit({ kind: 'manifest', digest: fallback.digest, reference: fallback.tag });
    }
  }
  const { root } = collected;
  return {
    digest: root.digest,
    mediaType: root.mediaType,
    blobs: summary.blobs,
    manifests: summary.manifests,
  };
}
