import { throwIfAborted } from '../errors/aborted-error.js';
import { RegauthError } from '../errors/regauth-error.js';
import type { Manifest } from '../registry/registry-client.js';
import type { LayoutDescriptor } from './oci-layout.js';
import { type ParsedManifest, parseManifest } from './parse-manifest.js';

/** A manifest with its bytes exactly as served, and what it says. */
export interface FetchedManifest {
  readonly digest: string;
  readonly mediaType: string;
  readonly bytes: Buffer;
  readonly parsed: ParsedManifest;
  readonly descriptor: LayoutDescriptor;
}

/**
 * Indexes inside indexes are allowed by the image spec; images nest one level (an index of
 * platform images), seldom two. Deeper than this is a loop or abuse.
 */
export const MAX_INDEX_DEPTH = 4;
/**
 * Distinct manifests one image may lead to. A multi-platform image with attestations has tens;
 * this leaves two orders of magnitude of room and still bounds what one pull or copy can be
 * made to fetch, since each manifest is a request.
 */
export const MAX_MANIFESTS_PER_IMAGE = 10_000;
/**
 * Manifest bytes one image may hold in memory during the walk: real images hold kilobytes to a
 * few MiB, while 10,000 manifests at the registries' 4 MiB limit would be 40 GiB.
 */
export const MAX_MANIFEST_BYTES_PER_IMAGE = 64 * 1024 * 1024;

export interface CollectLimits {
  /** Left out: MAX_INDEX_DEPTH. */
  readonly maxDepth?: number;
  /** Left out: MAX_MANIFESTS_PER_IMAGE. */
  readonly maxManifests?: number;
  /** Left out: MAX_MANIFEST_BYTES_PER_IMAGE. */
  readonly maxBytes?: number;
  /** No manifest is loaded once it is aborted (ERR_ABORTED); give `load` the same signal. */
  readonly signal?: AbortSignal;
}

export function fetched(
  manifest: Manifest,
  what: string,
  platform?: LayoutDescriptor['platform'],
): FetchedManifest {
  const parsed = parseManifest(manifest.bytes, manifest.mediaType, what);
  return {
    digest: manifest.digest,
    mediaType: parsed.mediaType,
    bytes: manifest.bytes,
    parsed,
    descriptor: {
      mediaType: parsed.mediaType,
      digest: manifest.digest,
      size: manifest.bytes.length,
      ...(platform === undefined ? {} : { platform }),
    },
  };
}

/**
 * Every manifest under `root` (children before their index, so they can be written or pushed
 * in this order) and every blob they name, each once. A digest named many times, in one index
 * or across nested ones, is loaded once: without that, an index whose entries all name one
 * child index whose entries all name one image costs entries² requests. Depth, distinct
 * manifests and their bytes are bounded (ERR_TOO_LARGE) before any request past a limit.
 */
export async function collectManifests(
  root: FetchedManifest,
  load: (descriptor: LayoutDescriptor) => Promise<FetchedManifest>,
  limits: CollectLimits = {},
): Promise<{ manifests: FetchedManifest[]; blobs: LayoutDescriptor[] }> {
  const maxDepth = limits.maxDepth ?? MAX_INDEX_DEPTH;
  const maxManifests = limits.maxManifests ?? MAX_MANIFESTS_PER_IMAGE;
  const maxBytes = limits.maxBytes ?? MAX_MANIFEST_BYTES_PER_IMAGE;
  const manifests: FetchedManifest[] = [];
  const blobs = new Map<string, LayoutDescriptor>();
  /** Every manifest digest met so far, loaded or about to be: each is loaded once. */
  const named = new Set<string>([root.digest]);
  let bytes = 0;
  const tooLarge = (why: string) =>
    new RegauthError('ERR_TOO_LARGE', `image ${root.digest}: ${why}; refusing to walk it`);
  const visit = async (m: FetchedManifest, depth: number): Promise<void> => {
    bytes += m.bytes.length;
    if (bytes > maxBytes) throw tooLarge(`its manifests hold more than ${maxBytes} bytes`);
    if (m.parsed.kind === 'index') {
      const children: LayoutDescriptor[] = [];
      for (const child of m.parsed.manifests) {
        if (named.has(child.digest)) continue;
        named.add(child.digest);
        children.push(child);
      }
      if (children.length > 0 && depth + 1 > maxDepth) {
        throw tooLarge(`index ${m.digest} nests indexes more than ${maxDepth} levels deep`);
      }
      if (named.size > maxManifests) throw tooLarge(`it names more than ${maxManifests} distinct manifests`);
      for (const child of children) {
        throwIfAborted(limits.signal, `the walk of image ${root.digest}`);
        await visit(await load(child), depth + 1);
      }
    } else {
      for (const blob of [m.parsed.config, ...m.parsed.layers])
        if (!blobs.has(blob.digest)) blobs.set(blob.digest, blob);
    }
    manifests.push(m);
  };
  await visit(root, 0);
  return { manifests, blobs: [...blobs.values()] };
}
