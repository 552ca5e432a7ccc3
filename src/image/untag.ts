import { randomBytes } from 'node:crypto';
import { computeDigest } from '../digest/digest.js';
import { isAbortedError } from '../errors/aborted-error.js';
import { RegauthError } from '../errors/regauth-error.js';
import { OCI_MANIFEST } from '../registry/media-types.js';
import type { RegistryClient, RequestOptions } from '../registry/registry-client.js';
import { uploadBlob } from './upload-blob.js';

/** The OCI empty descriptor's content and media type (image-spec 1.1 manifest.md, "Guidance for an Empty Descriptor"). */
const EMPTY_JSON = Buffer.from('{}');
const EMPTY_MEDIA_TYPE = 'application/vnd.oci.empty.v1+json';
/** Annotation keys of the placeholder manifest; the nonce makes its digest unique. */
export const UNTAG_ANNOTATION_PREFIX = 'dev.regauth.untag';

export interface UntagOptions extends RequestOptions {
  /** The placeholder's creation time. Left out: now. */
  readonly now?: () => Date;
}

/** How a tag was removed: by the registry's own tag delete, or by a placeholder deleted by digest. */
export interface UntagResult {
  /** The digest the tag named; that manifest stays. */
  readonly digest: string;
  /**
   * `registry`: the registry's own tag delete. `placeholder`: the tag was pointed at a unique
   * placeholder manifest, which was then deleted by digest.
   */
  readonly method: 'registry' | 'placeholder';
}

/** An empty-config OCI manifest whose annotations (a random nonce, the time) make its digest unique. */
function placeholderManifest(tag: string, now: Date): Buffer {
  const empty = { mediaType: EMPTY_MEDIA_TYPE, digest: computeDigest(EMPTY_JSON), size: EMPTY_JSON.length };
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: empty,
      layers: [empty],
      annotations: {
        'org.opencontainers.image.created': now.toISOString(),
        [`${UNTAG_ANNOTATION_PREFIX}.tag`]: tag,
        [`${UNTAG_ANNOTATION_PREFIX}.nonce`]: randomBytes(16).toString('hex'),
      },
    }),
  );
}

/**
 * Removes one tag and nothing else: the manifest it named and that manifest's other tags stay.
 * The registry's tag delete where it has one; otherwise regclient's technique (TagDelete in
 * https://github.com/regclient/regclient/blob/main/scheme/reg/tag.go): the tag is pointed at a
 * placeholder manifest nothing else names, and that placeholder is deleted by digest, which
 * takes the tag with it. Should that delete fail (deletion disabled), or the call be aborted once
 * the placeholder was sent, the tag is put back on the original manifest before the error
 * (ERR_ABORTED for an abort) is thrown.
 */
export async function untag(
  client: RegistryClient,
  repository: string,
  tag: string,
  options: UntagOptions = {},
): Promise<UntagResult> {
  const request: RequestOptions = options.signal === undefined ? {} : { signal: options.signal };
  const original = await client.getManifest(repository, tag, request);
  if (await client.deleteTag(repository, tag, request)) {
    // The spec's tag delete removes the tag alone; a registry that took the manifest with it
    // took its other tags too, and that must not pass unsaid.
    try {
      await client.headManifest(repository, original.digest, request);
    } catch (err) {
      if (!(err instanceof RegauthError && err.code === 'ERR_MANIFEST_UNKNOWN')) throw err;
      throw new RegauthError(
        'ERR_REGISTRY',
        `${client.registry}/${repository} deleted the manifest ${original.digest} when asked to delete ` +
          `only the tag ${tag}: every tag of that image is gone with it`,
        { cause: err },
      );
    }
    return { digest: original.digest, method: 'registry' };
  }

  await uploadBlob(
    client,
    repository,
    { digest: computeDigest(EMPTY_JSON), size: EMPTY_JSON.length, mediaType: EMPTY_MEDIA_TYPE },
    async function* () {
      yield EMPTY_JSON;
    },
    request,
  );
  const placeholder = placeholderManifest(tag, (options.now ?? (() => new Date()))());
  const placeholderDigest = computeDigest(placeholder);
  // From the moment the placeholder PUT is sent the tag may name the placeholder: an abort that
  // lands after the registry stored it but before its answer arrived leaves no sign of that
  // here, so any failure from now on puts the original back before it is thrown.
  let stored = false;
  try {
    await client.putManifest(repository, tag, placeholder, OCI_MANIFEST, request);
    stored = true;
    await client.deleteManifest(repository, placeholderDigest, request);
  } catch (err) {
    // A PUT the registry answered with a refusal changed nothing: the tag still names the image.
    // One aborted or cut off before its answer may have been stored.
    const refused =
      err instanceof RegauthError &&
      err.status !== undefined &&
      !isAbortedError(err) &&
      !options.signal?.aborted;
    if (!stored && refused) throw err;
    const name = `${client.registry}/${repository}`;
    try {
      // Not under the caller's signal: an abort right here must still put the tag back. The
      // transport's connect and idle timeouts bound it.
      await client.putManifest(repository, tag, original.bytes, original.mediaType);
    } catch {
      throw new RegauthError(
        err instanceof RegauthError ? err.code : 'ERR_REGISTRY',
        `${err instanceof Error ? err.message : String(err)}; ${name}:${tag} ${stored ? 'now names' : 'may now name'} ` +
          `the placeholder ${placeholderDigest} and putting it back to ${original.digest} failed`,
        { cause: err, hint: { kind: 'restore-tag', source: `${name}@${original.digest}`, tag } },
      );
    }
    throw err;
  }
  return { digest: original.digest, method: 'placeholder' };
}
