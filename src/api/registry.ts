import type { DeletedImage } from '../image/delete-image.js';
import type { TaggedImage } from '../image/tag-image.js';
import type { TransferListener, TransferSummary } from '../image/transfer-events.js';
import type { UntagResult } from '../image/untag.js';
import type { RegistryClients } from '../registry/create-registry-clients.js';
import type { AnyManifest, Descriptor, ImageConfig } from '../registry/oci-types.js';
import type { RateLimit } from '../registry/rate-limit.js';
import type { ListOptions } from '../registry/registry-client.js';
import type { Platform } from '../registry/select-platform.js';
import type { OciLayoutTarget, PullTarget } from './image-targets.js';

/** What every Registry method takes: `signal` stops it (see AbortSignal.timeout for a deadline). */
export interface CallOptions {
  readonly signal?: AbortSignal;
}

export interface ManifestOptions extends CallOptions {
  /** For an index: its manifest for this platform. For one image: refused unless it is this platform. */
  readonly platform?: Platform;
  /** The media types to ask for (Accept). Left out: every kind regauth reads (mediaTypes.MANIFEST_ACCEPT). */
  readonly accept?: readonly string[];
}

/** What Registry.manifest returns: the manifest's bytes, digest and media type, and its JSON. */
export interface ManifestResult {
  /** Exactly as served: its digest is the image's identity. */
  readonly bytes: Uint8Array;
  /** Of `bytes`, computed here; checked against the reference when that is a digest. */
  readonly digest: string;
  readonly mediaType: string;
  /** `bytes` parsed; its structure checked (descriptors with digests and sizes). */
  readonly json: AnyManifest;
  /** Docker Hub's pull quota after this request, when the registry states one. */
  readonly rateLimit?: RateLimit;
}

export interface DigestOptions extends CallOptions {
  /** For an index: the digest of its manifest for this platform. Left out: the digest of what the reference names. */
  readonly platform?: Platform;
}

export interface ListCallOptions extends CallOptions, ListOptions {}

export interface ConfigOptions extends CallOptions {
  /** For an index: this platform's image. Left out: the host's (as docker pull does). */
  readonly platform?: Platform;
}

/** What Registry.config returns: an image's config blob, verified, and its JSON. */
export interface ConfigResult {
  /** The config blob's digest, as its manifest names it; `bytes` were checked against it. */
  readonly digest: string;
  readonly bytes: Uint8Array;
  readonly json: ImageConfig;
}

export interface ReferrersOptions extends CallOptions {
  /** Only referrers of this artifact type. */
  readonly artifactType?: string;
}

/** What Registry.blob returns: a blob's size and type as the registry states them, and its verified bytes. */
export interface BlobResult {
  /** The blob's size as the registry states it (Content-Length); the body is checked against it. */
  readonly size?: number;
  /** The Content-Type the registry sent, when any (registries often send application/octet-stream). */
  readonly mediaType?: string;
  /**
   * The bytes, as a Web stream: the one stream type Node, Deno, Bun and browsers share (in Node,
   * `Readable.fromWeb(body)` makes a node:stream of it). A broken download is resumed with Range.
   * The digest is checked after the last byte: on a mismatch, or a body of another size, the
   * stream errors (ERR_DIGEST_MISMATCH) instead of closing, so a reader that waits for the end
   * never takes a wrong blob for a whole one. Read it to the end or cancel it: until then it
   * holds a connection.
   */
  readonly body: ReadableStream<Uint8Array>;
}

export interface TransferOptions extends CallOptions {
  /** Blobs in flight at once (a docker archive, written front to back, takes them one by one). Left out: 4. */
  readonly jobs?: number;
  /** Called for every step: blob started, bytes, resumed, done (sent, skipped, mounted), manifest. */
  readonly onProgress?: TransferListener;
}

/**
 * How Registry.pull moves an image: one platform of an index (`platform`), or all of them (`allPlatforms`).
 */
export type PullOptions = TransferOptions & {
  /**
   * When the pull is aborted, keep the blobs it had not finished, so the next pull into the same
   * layout resumes them (OCI layouts only). Left out: false, an aborted pull leaves no unfinished file.
   */
  readonly keepPartial?: boolean;
} & (
    | {
        /**
         * The platform to take from an index; a single-platform image of another platform is
         * refused. Left out: the host's from an index, a single image whatever its platform.
         */
        readonly platform?: Platform;
        readonly allPlatforms?: false;
      }
    | {
        /** Keep the whole index with every platform (OCI layouts only). */
        readonly allPlatforms: true;
        readonly platform?: never;
      }
  );

export interface PushOptions extends TransferOptions {
  /** Bytes per PATCH when a blob goes in chunks. Left out: 64 MiB (raised to what the registry asks as its minimum). */
  readonly chunkBytes?: number;
}

export interface CopyOptions extends TransferOptions {
  /** Copy only this platform's manifest out of an index. Left out: the whole index. */
  readonly platform?: Platform;
  readonly chunkBytes?: number;
  /**
   * Writes the destination with another Registry's credentials and options (another account).
   * Left out: this one. Within one registry, with one Registry, blobs are mounted from the source
   * repository instead of sent; with two, they are streamed through.
   */
  readonly to?: Registry;
}

export interface DeleteOptions extends CallOptions {
  /**
   * Delete a tag's image even when other tags name it too (they go with it: registries delete
   * by digest). Left out: refused with ERR_REFUSED, the other tags in its `hint`.
   */
  readonly force?: boolean;
}

/**
 * A registry client for one set of credentials and options: every task by reference string
 * (`host/repo:tag`, `host/repo@sha256:…`, or Docker Hub's short names such as `alpine`).
 * Made by createRegistry.
 */
export interface Registry {
  /** A manifest or index, exactly as served, with its digest and parsed JSON. */
  manifest(ref: string, options?: ManifestOptions): Promise<ManifestResult>;
  /** The digest a reference names (HEAD; the manifest is hashed where the registry leaves the digest out). */
  digest(ref: string, options?: DigestOptions): Promise<string>;
  /** Every tag of a repository (`host/repo`, no tag), in the registry's order. */
  tags(repository: string, options?: ListCallOptions): Promise<string[]>;
  /** Every repository of a registry (`host[:port]`), where the registry lists them. */
  catalog(registry: string, options?: ListCallOptions): Promise<string[]>;
  /** An image's config, verified against the digest its manifest names. */
  config(ref: string, options?: ConfigOptions): Promise<ConfigResult>;
  /** The manifests whose subject is `ref` (OCI referrers API, or its tag fallback). */
  referrers(ref: string, options?: ReferrersOptions): Promise<Descriptor[]>;
  /** A blob of the repository `ref` names (its tag or digest is ignored), streamed and verified. */
  blob(ref: string, digest: string, options?: CallOptions): Promise<BlobResult>;
  /** Pulls an image into an OCI layout folder or a docker-archive tar; blobs verified, downloads resumed. */
  pull(ref: string, target: PullTarget, options?: PullOptions): Promise<TransferSummary>;
  /** Pushes an image of an OCI layout to `ref`: blobs the registry lacks, then manifests. */
  push(source: OciLayoutTarget, ref: string, options?: PushOptions): Promise<TransferSummary>;
  /** Copies an image registry to registry without touching disk; digests preserved. */
  copy(source: string, destination: string, options?: CopyOptions): Promise<TransferSummary>;
  /** Puts `ref`'s manifest under more tags of its repository (no blob moves, the digest stays). */
  tag(ref: string, tags: string | readonly string[], options?: CallOptions): Promise<TaggedImage>;
  /** Removes one tag; its image and other tags stay. */
  untag(ref: string, options?: CallOptions): Promise<UntagResult>;
  /** Deletes the image `ref` names, with every tag of it; see DeleteOptions.force. */
  delete(ref: string, options?: DeleteOptions): Promise<DeletedImage>;
  /** The lower-level clients underneath (registry HTTP API, auth), for what these methods do not cover. */
  readonly clients: RegistryClients;
}
