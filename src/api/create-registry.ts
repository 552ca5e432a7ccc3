import { staticCredentials } from '../auth/credentials/static-credentials.js';
import { parseDigest } from '../digest/digest.js';
import { RegauthError } from '../errors/regauth-error.js';
import { copyImage } from '../image/copy-image.js';
import { deleteImage } from '../image/delete-image.js';
import { getPlatformManifest, platformManifest } from '../image/get-image-config.js';
import { parseManifest } from '../image/parse-manifest.js';
import { pullImage } from '../image/pull-image.js';
import { pushImage } from '../image/push-image.js';
import { readBlob } from '../image/read-blob.js';
import { resolveDigest } from '../image/resolve-digest.js';
import { tagImage } from '../image/tag-image.js';
import type { TransferSummary } from '../image/transfer-events.js';
import { untag } from '../image/untag.js';
import { type ImageReference, parseReference, parseRegistry, TAG_RE } from '../reference/parse-reference.js';
import { createRegistryClients, type RegistryClients } from '../registry/create-registry-clients.js';
import { DOCKER_MANIFEST_V1, DOCKER_MANIFEST_V1_SIGNED } from '../registry/media-types.js';
import type { AnyManifest, ImageConfig } from '../registry/oci-types.js';
import type { Manifest, RegistryClient, RequestOptions } from '../registry/registry-client.js';
import type { Registry } from './registry.js';
import type { RegistryOptions } from './registry-options.js';
import { verifiedBlobStream } from './verified-blob-stream.js';

/** The tag or digest a reference names, as the registry API takes it. */
const target = (ref: ImageReference): string => ref.digest ?? ref.tag ?? 'latest';

/**
 * Where a push or copy puts an image: a tag, or a digest (pushed by digest, checked by the
 * registry). A reference with both would leave the digest unchecked, so it is refused.
 */
function destination(text: string): ImageReference {
  const ref = parseReference(text);
  if (ref.tag !== undefined && ref.digest !== undefined) {
    throw new RegauthError(
      'ERR_INVALID_REFERENCE',
      `${text} names a tag and a digest: push to ${ref.registry}/${ref.repository}:${ref.tag}, or to the digest alone`,
    );
  }
  return ref;
}

/** A repository reference without tag or digest (`host/repo`), as tags() takes it. */
function repositoryOnly(text: string, what: string): ImageReference {
  const ref = parseReference(text, { defaultTag: false });
  if (ref.tag !== undefined || ref.digest !== undefined) {
    throw new RegauthError(
      'ERR_INVALID_REFERENCE',
      `${what} takes a repository without a tag or digest, such as ${ref.registry}/${ref.repository}`,
    );
  }
  return ref;
}

function parseJson<T>(bytes: Uint8Array, what: string): T {
  try {
    const value = JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as T;
  } catch {
    // Said below.
  }
  throw new RegauthError('ERR_MANIFEST_INVALID', `${what} is not a JSON object`);
}

/** A manifest's JSON, its structure checked as the transfers check it; schema 1 as it is. */
function manifestJson(manifest: Manifest, what: string): AnyManifest {
  const json = parseJson<{ schemaVersion?: unknown }>(manifest.bytes, what);
  const schema1 =
    json.schemaVersion === 1 ||
    manifest.mediaType === DOCKER_MANIFEST_V1 ||
    manifest.mediaType === DOCKER_MANIFEST_V1_SIGNED;
  if (!schema1) parseManifest(manifest.bytes, manifest.mediaType, what);
  return json as AnyManifest;
}

/**
 * A Registry: every task of the CLI as one call on reference strings, over one set of clients
 * (connections, credentials and tokens shared by every call). Nothing is sent until a method is
 * called.
 *
 * ```ts
 * const registry = createRegistry({ credentials: { username: 'alice', password } });
 * const { digest, json } = await registry.manifest('localhost:5000/alice/app:v1');
 * ```
 */
export function createRegistry(options: RegistryOptions = {}): Registry {
  const given = options.credentials;
  const credentials =
    given === undefined || 'find' in given
      ? given
      : staticCredentials({
          username: given.username,
          password: given.password,
          ...(given.registry === undefined ? {} : { registry: given.registry }),
        });
  const clients = createRegistryClients({
    ...(credentials === undefined ? {} : { credentials }),
    ...(options.store === undefined ? {} : { store: options.store }),
    ...(options.tokenCache === undefined ? {} : { tokenCache: options.tokenCache }),
    ...(options.onStoreError === undefined ? {} : { onStoreError: options.onStoreError }),
    ...(options.send === undefined ? {} : { send: options.send }),
    ...(options.caFile === undefined ? {} : { caFile: options.caFile }),
    ...(options.insecure === undefined ? {} : { insecure: options.insecure }),
    ...(options.trace === undefined ? {} : { trace: options.trace }),
    ...(options.retries === undefined ? {} : { maxRetries: options.retries }),
    ...(options.env === undefined ? {} : { env: options.env }),
  });
  return registryOver(clients);
}

/** The request options a call passes down: its signal, when it has one. */
const withSignal = (signal: AbortSignal | undefined): RequestOptions =>
  signal === undefined ? {} : { signal };

function registryOver(clients: RegistryClients): Registry {
  const at = (text: string): { ref: ImageReference; client: RegistryClient } => {
    const ref = parseReference(text);
    return { ref, client: clients.forRegistry(ref.registry) };
  };
  return {
    clients,

    async manifest(text, { platform, accept, signal } = {}) {
      if (platform !== undefined && accept !== undefined) {
        throw new RegauthError(
          'ERR_INVALID_OPTIONS',
          'manifest() takes platform or accept, not both: platform asks for an index to pick from, accept for the media types you read',
        );
      }
      const { ref, client } = at(text);
      const manifest =
        platform === undefined
          ? await client.getManifest(ref.repository, target(ref), {
              ...withSignal(signal),
              ...(accept === undefined ? {} : { accept }),
            })
          : await getPlatformManifest(client, ref.repository, target(ref), platform, withSignal(signal));
      const json = manifestJson(manifest, `manifest ${ref.registry}/${ref.repository}@${manifest.digest}`);
      return {
        bytes: manifest.bytes,
        digest: manifest.digest,
        mediaType: manifest.mediaType,
        json,
        ...(manifest.rateLimit === undefined ? {} : { rateLimit: manifest.rateLimit }),
      };
    },

    async digest(text, { platform, signal } = {}) {
      const { ref, client } = at(text);
      if (platform !== undefined)
        return (await getPlatformManifest(client, ref.repository, target(ref), platform, withSignal(signal)))
          .digest;
      return ref.digest ?? (await resolveDigest(client, ref.repository, target(ref), withSignal(signal)));
    },

    async tags(text, list = {}) {
      const ref = repositoryOnly(text, 'tags()');
      return clients.forRegistry(ref.registry).listTags(ref.repository, list);
    },

    async catalog(text, list = {}) {
      const name = parseRegistry(text);
      return clients.forRegistry(name).catalog(list);
    },

    async config(text, { platform, signal } = {}) {
      const { ref, client } = at(text);
      const { manifest, config: fetched } = await platformManifest(
        client,
        ref.repository,
        target(ref),
        platform,
        withSignal(signal),
      );
      const where = `manifest ${ref.registry}/${ref.repository}@${manifest.digest}`;
      const json = manifestJson(manifest, where);
      if (json.schemaVersion !== 2 || !('config' in json)) {
        throw new RegauthError(
          'ERR_UNSUPPORTED',
          `${where} has no config: it is ${json.schemaVersion === 1 ? 'a schema 1 manifest' : 'an index'}`,
        );
      }
      // Checking a single-platform image's platform read (and verified) the config already.
      const bytes =
        fetched ??
        (await client.getBlobBytes(ref.repository, json.config.digest, undefined, withSignal(signal)));
      return {
        digest: json.config.digest,
        bytes,
        json: parseJson<ImageConfig>(bytes, `config ${json.config.digest} of ${where}`),
      };
    },

    async referrers(text, { artifactType, signal } = {}) {
      const { ref, client } = at(text);
      const digest =
        ref.digest ?? (await resolveDigest(client, ref.repository, target(ref), withSignal(signal)));
      const { manifests } = await client.referrers(ref.repository, digest, artifactType, withSignal(signal));
      return manifests;
    },

    async blob(text, digest, { signal } = {}) {
      const ref = parseReference(text, { defaultTag: false });
      parseDigest(digest);
      const client = clients.forRegistry(ref.registry);
      // The first answer says the size; readBlob goes on with it, resuming with Range should it break.
      const first = await client.getBlob(ref.repository, digest, 0, withSignal(signal));
      const length = first.status === 200 ? Number(first.header('content-length')) : Number.NaN;
      const size = Number.isSafeInteger(length) && length >= 0 ? length : undefined;
      const contentType = first.header('content-type');
      let pending: typeof first | undefined = first;
      const source = readBlob(
        {
          registry: client.registry,
          getBlob: async (repository, d, offset, request) => {
            const res = pending;
            pending = undefined;
            if (res !== undefined && offset === 0) return res;
            await res?.dump();
            return client.getBlob(repository, d, offset, request);
          },
        },
        ref.repository,
        size === undefined ? { digest } : { digest, size },
        withSignal(signal),
      );
      return {
        ...(size === undefined ? {} : { size }),
        ...(contentType ? { mediaType: contentType } : {}),
        body: verifiedBlobStream(
          source,
          signal,
          `the read of blob ${ref.registry}/${ref.repository}@${digest}`,
        ),
      };
    },

    async pull(text, destination, options = {}) {
      const { ref, client } = at(text);
      const common = {
        ...withSignal(options.signal),
        ...(options.platform === undefined ? {} : { platform: options.platform }),
        ...(options.onProgress === undefined ? {} : { onEvent: options.onProgress }),
      };
      if (destination.kind === 'docker-archive') {
        if (options.allPlatforms) {
          throw new RegauthError(
            'ERR_INVALID_OPTIONS',
            'a docker archive holds one image, so allPlatforms cannot go into one: pull into an OCI layout, or pick a platform',
          );
        }
        const { pullDockerArchive } = await import('../image/docker-archive.js');
        // A tar is written front to back: its blobs come one after another, whatever `jobs` says.
        return pullDockerArchive(client, ref.repository, target(ref), destination.path, {
          ...common,
          // A pull by digest alone names no tag: the image loads untagged, as `docker save ID` makes it.
          ...(ref.tag === undefined
            ? {}
            : {
                tag: `${ref.registry === 'docker.io' ? '' : `${ref.registry}/`}${ref.repository}:${ref.tag}`,
              }),
        });
      }
      const refName = destination.refName ?? ref.tag;
      return pullImage(client, ref.repository, target(ref), destination.dir, {
        ...common,
        ...(options.jobs === undefined ? {} : { jobs: options.jobs }),
        ...(options.allPlatforms ? { allPlatforms: true } : {}),
        ...(options.keepPartial === undefined ? {} : { keepPartial: options.keepPartial }),
        ...(refName === undefined ? {} : { refName }),
      });
    },

    async push(source, text, options = {}) {
      const ref = destination(text);
      return pushImage(
        source.dir,
        clients.forRegistry(ref.registry),
        ref.repository,
        ref.tag ?? ref.digest ?? 'latest',
        {
          ...withSignal(options.signal),
          ...(source.refName === undefined ? {} : { refName: source.refName }),
          ...(options.jobs === undefined ? {} : { jobs: options.jobs }),
          ...(options.chunkBytes === undefined ? {} : { chunkBytes: options.chunkBytes }),
          ...(options.onProgress === undefined ? {} : { onEvent: options.onProgress }),
        },
      );
    },

    async copy(sourceText, destinationText, options = {}): Promise<TransferSummary> {
      const src = parseReference(sourceText);
      const dst = destination(destinationText);
      const dstClients = options.to?.clients ?? clients;
      return copyImage(
        { client: clients.forRegistry(src.registry), repository: src.repository, reference: target(src) },
        {
          client: dstClients.forRegistry(dst.registry),
          repository: dst.repository,
          reference: dst.tag ?? dst.digest ?? 'latest',
        },
        {
          ...withSignal(options.signal),
          ...(options.platform === undefined ? {} : { platform: options.platform }),
          ...(options.jobs === undefined ? {} : { jobs: options.jobs }),
          ...(options.chunkBytes === undefined ? {} : { chunkBytes: options.chunkBytes }),
          ...(options.onProgress === undefined ? {} : { onEvent: options.onProgress }),
        },
      );
    },

    async tag(text, tags, { signal } = {}) {
      const { ref, client } = at(text);
      const list = typeof tags === 'string' ? [tags] : [...tags];
      const bad = list.find((t) => !TAG_RE.test(t));
      if (bad !== undefined) {
        throw new RegauthError(
          'ERR_INVALID_REFERENCE',
          `${JSON.stringify(bad)} is not a tag: a tag is up to 128 letters, digits, "_", "." or "-", not starting with "." or "-"`,
        );
      }
      return tagImage(client, ref.repository, target(ref), list, withSignal(signal));
    },

    async untag(text, { signal } = {}) {
      const ref = parseReference(text, { defaultTag: false });
      if (ref.tag === undefined || ref.digest !== undefined) {
        throw new RegauthError(
          'ERR_INVALID_REFERENCE',
          `untag takes a tag, such as ${ref.registry}/${ref.repository}:v1; an image by digest is removed with delete`,
        );
      }
      return untag(clients.forRegistry(ref.registry), ref.repository, ref.tag, withSignal(signal));
    },

    async delete(text, { force, signal } = {}) {
      const { ref, client } = at(text);
      return deleteImage(client, ref.repository, ref, {
        ...withSignal(signal),
        ...(force === undefined ? {} : { force }),
      });
    },
  };
}
