import { stat } from 'node:fs/promises';
import { abortable } from '../errors/aborted-error.js';
import { RegauthError } from '../errors/regauth-error.js';
import type { RegistryClient } from '../registry/registry-client.js';
import { collectManifests, type FetchedManifest } from './collect-manifests.js';
import { type LayoutDescriptor, OciLayout } from './oci-layout.js';
import { parseManifest } from './parse-manifest.js';
import { DEFAULT_JOBS } from './pull-image.js';
import { pushManifests } from './push-manifests.js';
import type { TransferListener, TransferSummary } from './transfer-events.js';

export interface PushImageOptions {
  /** Which image of the layout (its ref.name). Left out: the only one. */
  readonly refName?: string;
  readonly jobs?: number;
  readonly chunkBytes?: number;
  readonly onEvent?: TransferListener;
  /**
   * Ends the push (ERR_ABORTED): no new blob starts, uploads in flight are torn down and their
   * sessions cancelled, and no manifest is pushed, so `reference` is left as it was.
   */
  readonly signal?: AbortSignal;
}

/**
 * Pushes an image from an OCI layout: every blob the registry lacks (HEAD first), then the
 * manifests, children before their index, the root under `reference`. The layout is checked
 * whole before anything is sent: a missing blob is named, and nothing is pushed.
 */
export async function pushImage(
  dir: string,
  client: RegistryClient,
  repository: string,
  reference: string,
  options: PushImageOptions = {},
): Promise<TransferSummary> {
  return abortable(
    options.signal,
    `the push of ${dir} to ${client.registry}/${repository}:${reference}`,
    (signal) => push(dir, client, repository, reference, options, signal),
  );
}

async function push(
  dir: string,
  client: RegistryClient,
  repository: string,
  reference: string,
  options: PushImageOptions,
  signal: AbortSignal | undefined,
): Promise<TransferSummary> {
  const layout = await OciLayout.open(dir);
  const load = async (d: LayoutDescriptor): Promise<FetchedManifest> => {
    const bytes = await layout.readBlobBytes(d);
    const parsed = parseManifest(bytes, d.mediaType, `manifest ${layout.blobPath(d.digest)}`);
    return {
      digest: d.digest,
      mediaType: parsed.mediaType,
      bytes,
      parsed,
      descriptor: { ...d, mediaType: parsed.mediaType },
    };
  };
  const root = await load(await layout.findManifest(options.refName));
  const { manifests, blobs } = await collectManifests(root, load);
  for (const blob of blobs) {
    const path = layout.blobPath(blob.digest);
    const info = await stat(path).catch(() => undefined);
    if (!info)
      throw new RegauthError(
        'ERR_INVALID_LAYOUT',
        `blob ${blob.digest} is missing from the layout: ${path}; nothing was pushed`,
      );
    if (info.size !== blob.size) {
      throw new RegauthError(
        'ERR_INVALID_LAYOUT',
        `${path} has ${info.size} bytes, but the manifest says ${blob.size}: the layout is corrupt; nothing was pushed`,
      );
    }
  }
  return pushManifests(
    client,
    repository,
    reference,
    { root, manifests, blobs },
    {
      jobs: options.jobs ?? DEFAULT_JOBS,
      ...(options.chunkBytes === undefined ? {} : { chunkBytes: options.chunkBytes }),
      ...(options.onEvent === undefined ? {} : { onEvent: options.onEvent }),
      ...(signal === undefined ? {} : { signal }),
      sourceName: (blob) => layout.blobPath(blob.digest),
      source: (blob) =>
        async function* (offset: number) {
          yield* (await layout.openBlob(blob, offset)) as AsyncIterable<Buffer>;
        },
    },
  );
}
