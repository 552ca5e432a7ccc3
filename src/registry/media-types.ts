/** An OCI image manifest (image-spec manifest.md). */
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
/** An OCI image index: one manifest per platform (image-spec image-index.md). */
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
/** Docker image manifest v2, schema 2: what docker push writes. */
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
/** Docker's manifest list: the index of a multi-platform Docker image. */
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
/** Image configs: the blobs that say which platform an image is for (os, architecture, variant). */
export const OCI_IMAGE_CONFIG = 'application/vnd.oci.image.config.v1+json';
/** A Docker image config blob. */
export const DOCKER_IMAGE_CONFIG = 'application/vnd.docker.container.image.v1+json';
/** Schema 1: read-only, for old images that still exist on some registries. */
export const DOCKER_MANIFEST_V1_SIGNED = 'application/vnd.docker.distribution.manifest.v1+prettyjws';
/** Schema 1 without a signature. */
export const DOCKER_MANIFEST_V1 = 'application/vnd.docker.distribution.manifest.v1+json';

/** Everything regauth reads, newest first; schema 1 last so a registry never down-converts to it. */
export const MANIFEST_ACCEPT = [
  OCI_INDEX,
  OCI_MANIFEST,
  DOCKER_MANIFEST_LIST,
  DOCKER_MANIFEST,
  `${DOCKER_MANIFEST_V1_SIGNED};q=0.5`,
  `${DOCKER_MANIFEST_V1};q=0.5`,
].join(', ');

/** Whether a media type is an index (OCI image index or Docker manifest list) rather than one image. */
export function isIndexMediaType(mediaType: string): boolean {
  return mediaType === OCI_INDEX || mediaType === DOCKER_MANIFEST_LIST;
}
