import type {
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  DOCKER_MANIFEST_V1,
  DOCKER_MANIFEST_V1_SIGNED,
  OCI_INDEX,
  OCI_MANIFEST,
} from './media-types.js';
import type { Platform } from './select-platform.js';

// The JSON documents of OCI image-spec v1.1 (https://github.com/opencontainers/image-spec/tree/v1.1.0)
// and of Docker's image manifest v2 schema 2 (https://distribution.github.io/distribution/spec/manifest-v2-2/),
// as regauth reads them. Registries and tools add fields of their own: unknown ones are kept, untyped.

/** A platform as an index entry states it (image-spec image-index.md). */
export interface DescriptorPlatform extends Platform {
  readonly 'os.version'?: string;
  readonly 'os.features'?: readonly string[];
  readonly features?: readonly string[];
}

/** A reference to content by digest and size (image-spec descriptor.md). */
export interface Descriptor {
  readonly mediaType: string;
  /** `algorithm:encoded`, such as `sha256:<64 hex>`. */
  readonly digest: string;
  readonly size: number;
  readonly urls?: readonly string[];
  readonly annotations?: Readonly<Record<string, string>>;
  /** The content itself, base64, for small blobs. */
  readonly data?: string;
  readonly artifactType?: string;
  /** Set on the entries of an index. */
  readonly platform?: DescriptorPlatform;
}

/** An OCI image manifest (image-spec manifest.md): one image or artifact. */
export interface OciImageManifest {
  readonly schemaVersion: 2;
  /** SHOULD be set (image-spec 1.1); older manifests leave it out, and the Content-Type says. */
  readonly mediaType?: typeof OCI_MANIFEST;
  readonly artifactType?: string;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
  /** The manifest this one refers to (signatures, SBOMs: the referrers API). */
  readonly subject?: Descriptor;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** A Docker image manifest, v2 schema 2. */
export interface DockerImageManifest {
  readonly schemaVersion: 2;
  readonly mediaType: typeof DOCKER_MANIFEST;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
}

/** One image's manifest: OCI, or Docker v2 schema 2. `'layers' in m` tells it from an index. */
export type ImageManifest = OciImageManifest | DockerImageManifest;

/** An OCI image index (image-spec image-index.md): one manifest per platform, or artifacts. */
export interface OciImageIndex {
  readonly schemaVersion: 2;
  readonly mediaType?: typeof OCI_INDEX;
  readonly artifactType?: string;
  readonly manifests: readonly Descriptor[];
  readonly subject?: Descriptor;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** A Docker manifest list (v2 schema 2): Docker's index. */
export interface DockerManifestList {
  readonly schemaVersion: 2;
  readonly mediaType: typeof DOCKER_MANIFEST_LIST;
  readonly manifests: readonly Descriptor[];
}

/** A multi-platform image: OCI index or Docker manifest list. `'manifests' in m` tells it from an image. */
export type ImageIndex = OciImageIndex | DockerManifestList;

/**
 * A Docker schema 1 manifest (deprecated, https://distribution.github.io/distribution/spec/deprecated-schema-v1/):
 * old images on some registries still have one. regauth reads them but does not move them.
 */
export interface DockerSchema1Manifest {
  readonly schemaVersion: 1;
  readonly mediaType?: typeof DOCKER_MANIFEST_V1 | typeof DOCKER_MANIFEST_V1_SIGNED;
  readonly name: string;
  readonly tag: string;
  readonly architecture: string;
  readonly fsLayers: readonly { readonly blobSum: string }[];
  readonly history: readonly { readonly v1Compatibility: string }[];
}

/** What a registry serves as a manifest: branch on `schemaVersion`, then on `'manifests' in m`. */
export type AnyManifest = ImageManifest | ImageIndex | DockerSchema1Manifest;

/** The image config (image-spec config.md; Docker's is the same document). */
export interface ImageConfig {
  readonly created?: string;
  readonly author?: string;
  readonly architecture: string;
  readonly os: string;
  readonly variant?: string;
  readonly 'os.version'?: string;
  readonly 'os.features'?: readonly string[];
  /** How a container of this image runs. */
  readonly config?: {
    readonly User?: string;
    readonly ExposedPorts?: Readonly<Record<string, object>>;
    readonly Env?: readonly string[];
    readonly Entrypoint?: readonly string[] | null;
    readonly Cmd?: readonly string[] | null;
    readonly Volumes?: Readonly<Record<string, object>>;
    readonly WorkingDir?: string;
    readonly Labels?: Readonly<Record<string, string>> | null;
    readonly StopSignal?: string;
    readonly ArgsEscaped?: boolean;
  };
  readonly rootfs: { readonly type: 'layers'; readonly diff_ids: readonly string[] };
  readonly history?: readonly {
    readonly created?: string;
    readonly author?: string;
    readonly created_by?: string;
    readonly comment?: string;
    readonly empty_layer?: boolean;
  }[];
}

/** Whether a manifest is an index (OCI index or Docker manifest list). */
export function isImageIndex(manifest: AnyManifest): manifest is ImageIndex {
  return manifest.schemaVersion === 2 && 'manifests' in manifest;
}

/** Whether a manifest is one image's (OCI or Docker v2 schema 2). */
export function isImageManifest(manifest: AnyManifest): manifest is ImageManifest {
  return manifest.schemaVersion === 2 && 'layers' in manifest;
}
