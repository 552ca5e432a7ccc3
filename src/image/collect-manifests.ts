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

/** Indexes inside indexes are allowed by the spec; deeper than this is a loop or abuse. */
const MAX_INDEX_DEPTH = 4;

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
 * in this order) and every blob they name, each once.
 */
export async function collectManifests(
  root: FetchedManifest,
  load: (descriptor: LayoutDescriptor) => Promise<FetchedManifest>,
): Promise<{ manifests: FetchedManifest[]; blobs: LayoutDescriptor[] }> {
  const manifests: FetchedManifest[] = [];
  const blobs = new Map<string, LayoutDescriptor>();
  const visit = async (m: FetchedManifest, depth: number): Promise<void> => {
    if (m.parsed.kind === 'index') {
      if (depth >= MAX_INDEX_DEPTH) return;
      for (const child of m.parsed.manifests) await visit(await load(child), depth + 1);
    } else {
      for (const blob of [m.parsed.config, ...m.parsed.layers])
        if (!blobs.has(blob.digest)) blobs.set(blob.digest, blob);
    }
    if (!manifests.some((x) => x.digest === m.digest)) manifests.push(m);
  };
  await visit(root, 0);
  return { manifests, blobs: [...blobs.values()] };
}
