/** An OCI image layout folder (image-spec image-layout.md), and which image in it. */
export interface OciLayoutTarget {
  readonly kind: 'oci-layout';
  readonly dir: string;
  /**
   * The image's `org.opencontainers.image.ref.name` in index.json. A pull left without it
   * records the reference's tag; a push without it takes the layout's only image.
   */
  readonly refName?: string;
}

/** A `docker save` tar that `docker load`, `podman load` and skopeo read; written, never read. */
export interface DockerArchiveTarget {
  readonly kind: 'docker-archive';
  readonly path: string;
}

/** Where a pull writes. */
export type PullTarget = OciLayoutTarget | DockerArchiveTarget;

/** An OCI image layout at `dir` (created by a pull when missing); `refName` picks or names the image. */
export function ociLayout(dir: string, refName?: string): OciLayoutTarget {
  return refName === undefined ? { kind: 'oci-layout', dir } : { kind: 'oci-layout', dir, refName };
}

/** A docker-archive tar at `path`, written whole or not at all (it appears under its name when complete). */
export function dockerArchive(path: string): DockerArchiveTarget {
  return { kind: 'docker-archive', path };
}
