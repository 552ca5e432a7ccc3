import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { AuthResponse, AuthSend } from '../auth/create-auth-client.js';
import { computeDigest, parseDigest, verifyDigest } from '../digest/digest.js';
import { RegauthError } from '../errors/regauth-error.js';
import type { ResourceScope } from '../scope/parse-scope.js';
import { httpErrorFacts } from '../transport/http-error-facts.js';
import type { HttpRequest, HttpResponse } from '../transport/http-types.js';
import { MANIFEST_ACCEPT, OCI_INDEX } from './media-types.js';
import type { Descriptor } from './oci-types.js';
import { parseReferrersIndex } from './parse-referrers-index.js';
import { parseRateLimit, type RateLimit } from './rate-limit.js';
import { referrersTag } from './referrers-tag.js';
import { registryError } from './registry-error.js';
import { registryBaseUrl } from './registry-url.js';

/** The registry's own limit on manifests (distribution: 4 MiB); anything bigger is not one. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Image configs are JSON documents of kilobytes; the largest seen in the wild are a few MiB. */
export const MAX_CONFIG_BYTES = 8 * 1024 * 1024;
/** Tag and catalog pages are JSON lists; 4 MiB holds tens of thousands of names. */
export const MAX_LIST_PAGE_BYTES = 4 * 1024 * 1024;
/**
 * How long abandoning an upload session may take: a courtesy to the registry after a failure or
 * an abort, which expires sessions by itself anyway (distribution: uploadpurging, hours).
 */
export const CANCEL_UPLOAD_TIMEOUT_MS = 5_000;
/** Names asked for per list request; ECR refuses more than 1000 (ggcr#681). */
export const DEFAULT_PAGE_SIZE = 1000;
/**
 * Names one tag list or catalog may hold. Far more than a repository's tags or a registry's
 * catalog hold in practice, and collected in memory still around a hundred MiB: an endless
 * list stops here instead of when the heap runs out.
 */
export const MAX_LIST_ENTRIES = 1_000_000;
/** Pages one list may span: ECR serves 100 names a page whatever `n` asks, so this reaches MAX_LIST_ENTRIES. */
export const MAX_LIST_PAGES = 10_000;
/** Page bytes one list may span: a million names of a hundred characters with their JSON quoting. */
export const MAX_LIST_BYTES = 128 * 1024 * 1024;

/** What every request method takes besides its arguments. */
export interface RequestOptions {
  /**
   * Ends the call: nothing is sent when it is aborted already, a request in flight and a body
   * being read are torn down, and the call rejects with ERR_ABORTED.
   */
  readonly signal?: AbortSignal;
}

/** How a tag list or catalog is read. Every limit reached is an ERR_TOO_LARGE, never a silent cut. */
export interface ListOptions extends RequestOptions {
  /** Names asked for per request (`n`). Left out: DEFAULT_PAGE_SIZE. */
  readonly pageSize?: number;
  /** Left out: MAX_LIST_ENTRIES. */
  readonly maxEntries?: number;
  /** Left out: MAX_LIST_PAGES. */
  readonly maxPages?: number;
  /** Left out: MAX_LIST_BYTES. */
  readonly maxBytes?: number;
}

/** A manifest as RegistryClient.getManifest read it: the exact bytes, their media type and digest. */
export interface Manifest {
  readonly bytes: Buffer;
  readonly mediaType: string;
  /** The digest of `bytes`, computed here (the registry's header is only a hint). */
  readonly digest: string;
  /** Docker Hub's pull quota after this request, when the registry states one. */
  readonly rateLimit?: RateLimit;
}

/** What the registry said to a manifest put. */
export interface PutManifestResult {
  /** The digest of the bytes sent. */
  readonly digest: string;
  /** The registry's `OCI-Subject` answer: it indexed the manifest's subject itself. */
  readonly subject?: string;
}

/** What a HEAD of a manifest says about it, without its bytes. */
export interface ManifestHead {
  readonly digest?: string;
  readonly mediaType: string;
  readonly size?: number;
  readonly rateLimit?: RateLimit;
}

/** Which registry a RegistryClient talks to, and through which send. */
export interface RegistryClientOptions {
  /** The registry as references name it: `docker.io`, `localhost:5000`. */
  readonly registry: string;
  /** The auth layer's send: it adds Authorization, this layer never does. */
  readonly send: AuthSend;
  /** Plain HTTP for a non-loopback registry. Left out: false (HTTPS). */
  readonly insecure?: boolean;
}

const pull = (repository: string): ResourceScope => ({
  type: 'repository',
  name: repository,
  actions: ['pull'],
});

function escapePath(repository: string): string {
  return repository.split('/').map(encodeURIComponent).join('/');
}

const push = (repository: string): ResourceScope => ({
  type: 'repository',
  name: repository,
  actions: ['pull', 'push'],
});

/** The registry's upload session, as its Location header names it. */
export interface UploadSession {
  readonly location: URL;
  /** OCI-Chunk-Min-Length: the smallest PATCH the registry takes, when it says. */
  readonly minChunkBytes?: number;
}

/** Tags and digests go into the path as they are (`sha256:…` keeps its colon, as registries expect). */
function escapeReference(reference: string): string {
  return /^[\w.:+=-]+$/.test(reference) ? reference : encodeURIComponent(reference);
}

/** The registry HTTP API for one registry (distribution spec): manifests, blobs, tags, catalog. */
export class RegistryClient {
  readonly registry: string;
  readonly baseUrl: URL;
  readonly #send: AuthSend;
  readonly #extraScopes: readonly ResourceScope[];
  readonly #insecure: boolean;

  constructor(options: RegistryClientOptions, extraScopes: readonly ResourceScope[] = []) {
    this.registry = options.registry;
    this.#insecure = options.insecure ?? false;
    this.baseUrl = registryBaseUrl(options.registry, this.#insecure);
    this.#send = options.send;
    this.#extraScopes = extraScopes;
  }

  /**
   * The same client asking for `extra` scopes with every request: a copy within one registry
   * asks for pull on the source with every destination request, so one token serves the blob
   * checks, the mounts and the uploads (distribution asks push on the target and pull on the
   * `from` repository for a mount: registry/handlers/app.go appendAccessRecords).
   */
  withScopes(extra: readonly ResourceScope[]): RegistryClient {
    return new RegistryClient({ registry: this.registry, send: this.#send, insecure: this.#insecure }, [
      ...this.#extraScopes,
      ...extra,
    ]);
  }

  /**
   * Whether requests of both clients go through one auth client, and so with one account's
   * credentials: only then can one token cover a cross-repository mount (push on the target and
   * pull on the source).
   */
  sharesCredentialsWith(other: RegistryClient): boolean {
    return this.#send === other.#send;
  }

  #url(path: string): URL {
    return new URL(path, this.baseUrl);
  }

  async #request(
    method: string,
    url: URL,
    scopes: readonly ResourceScope[],
    headers: Record<string, string> = {},
    body?: HttpRequest['body'],
    options: RequestOptions & { readonly retries?: number; readonly bulkBody?: boolean } = {},
  ): Promise<AuthResponse> {
    const res = await this.#send({
      method,
      url,
      headers,
      registry: this.registry,
      scopes: [...scopes, ...this.#extraScopes],
      ...(body === undefined ? {} : { body }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      ...(options.retries === undefined ? {} : { retries: options.retries }),
      ...(options.bulkBody ? { bulkBody: true } : {}),
    });
    // A caller's own send may not say which method it answered: errors name the request.
    return res.method === undefined ? { ...res, method } : res;
  }

  /**
   * GET a manifest: the bytes exactly as served, with their digest computed here and checked
   * against `reference` when it is a digest (ERR_DIGEST_MISMATCH). `accept` narrows the media
   * types asked for (Accept); left out: every kind regauth reads.
   */
  async getManifest(
    repository: string,
    reference: string,
    options: RequestOptions & { readonly accept?: readonly string[] } = {},
  ): Promise<Manifest> {
    const where = `${this.registry}/${repository}${reference.includes(':') ? '@' : ':'}${reference}`;
    const res = await this.#request(
      'GET',
      this.#url(`/v2/${escapePath(repository)}/manifests/${escapeReference(reference)}`),
      [pull(repository)],
      { accept: options.accept === undefined ? MANIFEST_ACCEPT : options.accept.join(', ') },
      undefined,
      options,
    );
    if (res.status !== 200) {
      throw await registryError(res, `manifest ${where}`, {
        registry: this.registry,
        repository,
        action: 'pull',
        notFound: 'ERR_MANIFEST_UNKNOWN',
      });
    }
    const length = Number(res.header('content-length'));
    if (length > MAX_MANIFEST_BYTES) {
      await res.dump();
      throw new RegauthError(
        'ERR_TOO_LARGE',
        `manifest ${where} is ${length} bytes, over the ${MAX_MANIFEST_BYTES}-byte limit registries enforce`,
        httpErrorFacts(res),
      );
    }
    const bytes = await res.bytes(MAX_MANIFEST_BYTES);
    let mediaType = (res.header('content-type') ?? '').split(';')[0]?.trim() ?? '';
    if (mediaType === '' || mediaType === 'application/json') {
      try {
        const parsed = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown };
        if (typeof parsed.mediaType === 'string') mediaType = parsed.mediaType;
      } catch {
        // Left as served.
      }
    }
    const rateLimit = parseRateLimit(res);
    const extra = rateLimit === undefined ? {} : { rateLimit };
    if (reference.includes(':')) {
      verifyDigest(bytes, reference, `manifest ${where}`);
      return { bytes, mediaType, digest: reference, ...extra };
    }
    const headerDigest = res.header('docker-content-digest');
    let algorithm: 'sha256' | 'sha512' = 'sha256';
    if (headerDigest) {
      try {
        algorithm = parseDigest(headerDigest).algorithm;
      } catch {
        // A malformed hint is ignored; the content decides.
      }
    }
    return { bytes, mediaType, digest: computeDigest(bytes, algorithm), ...extra };
  }

  /** HEAD a manifest: its digest as the registry states it (no body to hash), media type and size. */
  async headManifest(
    repository: string,
    reference: string,
    options: RequestOptions = {},
  ): Promise<ManifestHead> {
    const where = `${this.registry}/${repository}${reference.includes(':') ? '@' : ':'}${reference}`;
    const res = await this.#request(
      'HEAD',
      this.#url(`/v2/${escapePath(repository)}/manifests/${escapeReference(reference)}`),
      [pull(repository)],
      { accept: MANIFEST_ACCEPT },
      undefined,
      options,
    );
    await res.dump();
    if (res.status !== 200) {
      // HEAD answers have no body: the status is all there is.
      throw await registryError(res, `manifest ${where}`, {
        registry: this.registry,
        repository,
        action: 'pull',
        notFound: 'ERR_MANIFEST_UNKNOWN',
      });
    }
    const digest = res.header('docker-content-digest');
    const size = Number(res.header('content-length'));
    const rateLimit = parseRateLimit(res);
    return {
      ...(rateLimit === undefined ? {} : { rateLimit }),
      mediaType: (res.header('content-type') ?? '').split(';')[0]?.trim() ?? '',
      ...(digest ? { digest } : {}),
      ...(Number.isFinite(size) ? { size } : {}),
    };
  }

  /** A small blob (an image config) read whole and verified against its digest. */
  async getBlobBytes(
    repository: string,
    digest: string,
    limit: number = MAX_CONFIG_BYTES,
    options: RequestOptions = {},
  ): Promise<Buffer> {
    parseDigest(digest);
    const where = `blob ${this.registry}/${repository}@${digest}`;
    const res = await this.#request(
      'GET',
      this.#url(`/v2/${escapePath(repository)}/blobs/${digest}`),
      [pull(repository)],
      {},
      undefined,
      options,
    );
    if (res.status !== 200)
      throw await registryError(res, where, {
        registry: this.registry,
        repository,
        action: 'pull',
        notFound: 'ERR_BLOB_UNKNOWN',
      });
    const bytes = await res.bytes(limit);
    verifyDigest(bytes, digest, where);
    return bytes;
  }

  /** Whether the registry has a blob (HEAD), and its size. Asks with push scope: used before uploads. */
  async headBlob(
    repository: string,
    digest: string,
    options: RequestOptions = {},
  ): Promise<{ exists: boolean; size?: number }> {
    parseDigest(digest); // it goes into the URL path: never `../`
    const res = await this.#request(
      'HEAD',
      this.#url(`/v2/${escapePath(repository)}/blobs/${digest}`),
      [push(repository)],
      {},
      undefined,
      options,
    );
    await res.dump();
    if (res.status === 404) return { exists: false };
    if (res.status !== 200) {
      // Asked while pushing (push scope): a refusal here is a refusal to push.
      throw await registryError(res, `blob ${this.registry}/${repository}@${digest}`, {
        registry: this.registry,
        repository,
        action: 'push',
      });
    }
    const size = Number(res.header('content-length'));
    return Number.isFinite(size) ? { exists: true, size } : { exists: true };
  }

  /**
   * GET a blob as a stream, from `offset` on when given (Range). The answer is 200 (the whole
   * blob: the caller skips what it has) or 206 (from the offset). Redirects to storage hosts are
   * followed without credentials by the transport. `bulkBody`: see HttpRequest.bulkBody.
   */
  async getBlob(
    repository: string,
    digest: string,
    offset = 0,
    options: RequestOptions & { readonly bulkBody?: boolean } = {},
  ): Promise<HttpResponse> {
    parseDigest(digest); // it goes into the URL path: never `../`
    const res = await this.#request(
      'GET',
      this.#url(`/v2/${escapePath(repository)}/blobs/${digest}`),
      [pull(repository)],
      offset > 0 ? { range: `bytes=${offset}-` } : {},
      undefined,
      options,
    );
    if (res.status === 200 || res.status === 206) return res;
    throw await registryError(res, `blob ${this.registry}/${repository}@${digest}`, {
      registry: this.registry,
      repository,
      action: 'pull',
      notFound: 'ERR_BLOB_UNKNOWN',
    });
  }

  /**
   * Starts an upload (POST …/blobs/uploads/). With `mount`, asks the registry to link a blob of
   * another repository instead: 201 means mounted, nothing to send; 202 means the registry
   * opened an upload session instead, which is returned for use
   * (https://github.com/opencontainers/distribution-spec/blob/main/spec.md#mounting-a-blob-from-another-repository).
   */
  async startUpload(
    repository: string,
    mount?: { readonly digest: string; readonly from: string },
    options: RequestOptions = {},
  ): Promise<{ readonly mounted: true } | ({ readonly mounted: false } & UploadSession)> {
    const url = this.#url(`/v2/${escapePath(repository)}/blobs/uploads/`);
    if (mount) {
      url.searchParams.set('mount', mount.digest);
      url.searchParams.set('from', mount.from);
    }
    const res = await this.#request(
      'POST',
      url,
      [push(repository), ...(mount ? [pull(mount.from)] : [])],
      { 'content-length': '0' },
      undefined,
      options,
    );
    if (mount && res.status === 201) {
      await res.dump();
      return { mounted: true };
    }
    if (res.status !== 202) {
      throw await registryError(res, `upload to ${this.registry}/${repository}`, {
        registry: this.registry,
        repository,
        action: 'push',
      });
    }
    await res.dump();
    return { mounted: false, ...this.#session(res, `upload to ${this.registry}/${repository}`) };
  }

  #session(res: HttpResponse, what: string): UploadSession {
    const location = res.header('location');
    if (!location)
      throw new RegauthError(
        'ERR_REGISTRY',
        `${what}: the registry sent no Location for the upload`,
        httpErrorFacts(res),
      );
    // Locations may be relative or drop the port: resolve against the URL that answered.
    const min = Number(res.header('oci-chunk-min-length'));
    return {
      location: new URL(location, res.url),
      ...(Number.isFinite(min) && min > 0 ? { minChunkBytes: min } : {}),
    };
  }

  /**
   * Sends one chunk (PATCH with Content-Range): a buffer, or a stream of exactly `length` bytes
   * (sent once: a stream cannot be replayed). Returns the session's next Location.
   */
  async uploadChunk(
    repository: string,
    session: UploadSession,
    chunk: Buffer | Readable,
    offset: number,
    length: number = (chunk as Buffer).length,
    options: RequestOptions = {},
  ): Promise<UploadSession> {
    const res = await this.#request(
      'PATCH',
      session.location,
      [push(repository)],
      {
        'content-type': 'application/octet-stream',
        'content-length': String(length),
        'content-range': `${offset}-${offset + length - 1}`,
      },
      chunk,
      options,
    );
    if (res.status !== 202) {
      throw await registryError(res, `upload to ${this.registry}/${repository}`, {
        registry: this.registry,
        repository,
        action: 'push',
      });
    }
    await res.dump();
    return { ...session, ...this.#session(res, `upload to ${this.registry}/${repository}`) };
  }

  /** How many bytes the registry holds for an upload session (GET on its Location). */
  async uploadOffset(
    repository: string,
    session: UploadSession,
    options: RequestOptions = {},
  ): Promise<{ session: UploadSession; offset: number }> {
    const res = await this.#request('GET', session.location, [push(repository)], {}, undefined, options);
    if (res.status !== 204 && res.status !== 202) {
      throw await registryError(res, `upload status ${this.registry}/${repository}`, {
        registry: this.registry,
        repository,
        action: 'push',
      });
    }
    await res.dump();
    const end = /^(?:bytes=)?0-(\d+)$/.exec(res.header('range') ?? '')?.[1];
    return {
      session: { ...session, ...this.#session(res, 'upload status') },
      offset: end === undefined ? 0 : Number(end) + 1,
    };
  }

  /**
   * Completes an upload (PUT ?digest=), with the last bytes when given: a whole small blob in
   * one request is the monolithic upload of the spec.
   */
  async completeUpload(
    repository: string,
    session: UploadSession,
    digest: string,
    body?: Buffer | Readable,
    length: number = body === undefined ? 0 : (body as Buffer).length,
    options: RequestOptions = {},
  ): Promise<void> {
    const url = new URL(session.location.href);
    url.searchParams.set('digest', digest);
    const res = await this.#request(
      'PUT',
      url,
      [push(repository)],
      { 'content-type': 'application/octet-stream', 'content-length': String(length) },
      body ?? '',
      options,
    );
    if (res.status !== 201) {
      throw await registryError(res, `upload of ${digest} to ${this.registry}/${repository}`, {
        registry: this.registry,
        repository,
        action: 'push',
      });
    }
    await res.dump();
  }

  /**
   * Abandons an upload session; errors are ignored (the registry expires sessions anyway). One
   * attempt, ended after CANCEL_UPLOAD_TIMEOUT_MS (or by `signal`): it tidies up after a failure
   * or an abort, and must not hold the caller up.
   */
  async cancelUpload(
    repository: string,
    session: UploadSession,
    options: RequestOptions = {},
  ): Promise<void> {
    const deadline = AbortSignal.timeout(CANCEL_UPLOAD_TIMEOUT_MS);
    const signal = options.signal === undefined ? deadline : AbortSignal.any([options.signal, deadline]);
    try {
      const res = await this.#request('DELETE', session.location, [push(repository)], {}, undefined, {
        signal,
        retries: 0,
      });
      await res.dump();
    } catch {
      // Best effort.
    }
  }

  /** PUT a manifest under a tag or its digest; returns its digest. */
  async putManifest(
    repository: string,
    reference: string,
    bytes: Buffer,
    mediaType: string,
    options: RequestOptions = {},
  ): Promise<string> {
    return (await this.putManifestDetailed(repository, reference, bytes, mediaType, options)).digest;
  }

  /**
   * PUT a manifest, with what the registry said about it: `subject` is its `OCI-Subject` header,
   * set by a registry that indexed the manifest's subject for the referrers API; without it a
   * client keeps the referrers tag itself (OCI distribution 1.1, "Pushing Manifests with Subject":
   * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pushing-manifests-with-subject).
   */
  async putManifestDetailed(
    repository: string,
    reference: string,
    bytes: Buffer,
    mediaType: string,
    options: RequestOptions = {},
  ): Promise<PutManifestResult> {
    const digest = computeDigest(bytes);
    const res = await this.#request(
      'PUT',
      this.#url(`/v2/${escapePath(repository)}/manifests/${escapeReference(reference)}`),
      [push(repository)],
      { 'content-type': mediaType, 'content-length': String(bytes.length) },
      bytes,
      options,
    );
    if (res.status !== 201 && res.status !== 200) {
      throw await registryError(res, `manifest ${this.registry}/${repository}:${reference}`, {
        registry: this.registry,
        repository,
        action: 'push',
      });
    }
    await res.dump();
    const subject = res.header('oci-subject');
    return subject ? { digest, subject } : { digest };
  }

  /** DELETE a manifest by digest. A registry with deletion disabled answers 405: said plainly. */
  async deleteManifest(repository: string, digest: string, options: RequestOptions = {}): Promise<void> {
    parseDigest(digest);
    const scope: ResourceScope = { type: 'repository', name: repository, actions: ['delete'] };
    const res = await this.#request(
      'DELETE',
      this.#url(`/v2/${escapePath(repository)}/manifests/${digest}`),
      [scope],
      {},
      undefined,
      options,
    );
    if (res.status === 202 || res.status === 200) {
      await res.dump();
      return;
    }
    if (res.status === 405) {
      await res.dump();
      throw new RegauthError(
        'ERR_UNSUPPORTED',
        `${this.registry} does not allow deleting manifests (405); on distribution it needs storage.delete.enabled: true`,
        httpErrorFacts(res),
      );
    }
    throw await registryError(res, `manifest ${this.registry}/${repository}@${digest}`, {
      registry: this.registry,
      repository,
      action: 'delete',
      notFound: 'ERR_MANIFEST_UNKNOWN',
    });
  }

  /**
   * DELETE a tag, leaving its manifest and the manifest's other tags (OCI distribution 1.1:
   * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#deleting-tags).
   * Returns false when the registry does not do this: distribution 2.8 answers 400
   * DIGEST_INVALID (it takes the tag for a malformed digest), others 404, 405 or 501.
   */
  async deleteTag(repository: string, tag: string, options: RequestOptions = {}): Promise<boolean> {
    const scope: ResourceScope = { type: 'repository', name: repository, actions: ['delete'] };
    const res = await this.#request(
      'DELETE',
      this.#url(`/v2/${escapePath(repository)}/manifests/${escapeReference(tag)}`),
      [scope],
      {},
      undefined,
      options,
    );
    if (res.status === 202 || res.status === 200) {
      await res.dump();
      return true;
    }
    if ([400, 404, 405, 501].includes(res.status)) {
      await res.dump();
      return false;
    }
    throw await registryError(res, `tag ${this.registry}/${repository}:${tag}`, {
      registry: this.registry,
      repository,
      action: 'delete',
    });
  }

  /**
   * The referrers of a manifest (OCI distribution 1.1): the referrers API, or where the registry
   * lacks it (404), the `sha256-<hex>` tag schema fallback. An image index either way.
   */
  async referrers(
    repository: string,
    digest: string,
    artifactType?: string,
    options: RequestOptions = {},
  ): Promise<{ manifests: Descriptor[] }> {
    parseDigest(digest);
    const url = this.#url(`/v2/${escapePath(repository)}/referrers/${digest}`);
    if (artifactType !== undefined) url.searchParams.set('artifactType', artifactType);
    const res = await this.#request(
      'GET',
      url,
      [pull(repository)],
      { accept: OCI_INDEX },
      undefined,
      options,
    );
    const what = `referrers of ${this.registry}/${repository}@${digest}`;
    let all: Descriptor[];
    if (res.status === 200) {
      all = parseReferrersIndex(await res.bytes(MAX_MANIFEST_BYTES), what);
    } else if (res.status === 404) {
      await res.dump();
      try {
        const fallback = await this.getManifest(repository, referrersTag(digest), options);
        all = parseReferrersIndex(fallback.bytes, `${what} (the ${referrersTag(digest)} tag)`);
      } catch (err) {
        if (err instanceof RegauthError && err.code === 'ERR_MANIFEST_UNKNOWN') all = [];
        else throw err;
      }
    } else {
      throw await registryError(res, what, {
        registry: this.registry,
        repository,
        action: 'pull',
      });
    }
    // The server may ignore artifactType (it then omits OCI-Filters-Applied): filter here too.
    const manifests = artifactType === undefined ? all : all.filter((m) => m.artifactType === artifactType);
    return { manifests };
  }

  /**
   * The tags of a repository page by page, following `Link: <…>; rel="next"` in order: a
   * caller that prints them as they come holds one page in memory, however long the list.
   */
  tagPages(repository: string, options: ListOptions = {}): AsyncGenerator<string[]> {
    const first = this.#url(`/v2/${escapePath(repository)}/tags/list`);
    first.searchParams.set('n', String(options.pageSize ?? DEFAULT_PAGE_SIZE));
    return this.#pages(first, [pull(repository)], 'tags', `tags of ${this.registry}/${repository}`, options);
  }

  /** Every tag of a repository, in the registry's order. */
  async listTags(repository: string, options: ListOptions = {}): Promise<string[]> {
    return collect(this.tagPages(repository, options));
  }

  /** The repository names of a registry (`/v2/_catalog`) page by page. */
  catalogPages(options: ListOptions = {}): AsyncGenerator<string[]> {
    const first = this.#url('/v2/_catalog');
    first.searchParams.set('n', String(options.pageSize ?? DEFAULT_PAGE_SIZE));
    const scope: ResourceScope = { type: 'registry', name: 'catalog', actions: ['*'] };
    return this.#pages(first, [scope], 'repositories', `catalog of ${this.registry}`, options);
  }

  /** Every repository name of a registry. */
  async catalog(options: ListOptions = {}): Promise<string[]> {
    return collect(this.catalogPages(options));
  }

  async *#pages(
    first: URL,
    scopes: readonly ResourceScope[],
    field: string,
    what: string,
    options: ListOptions,
  ): AsyncGenerator<string[]> {
    const maxEntries = options.maxEntries ?? MAX_LIST_ENTRIES;
    const maxPages = options.maxPages ?? MAX_LIST_PAGES;
    const maxBytes = options.maxBytes ?? MAX_LIST_BYTES;
    /** The page number each URL was read as: a Link back to one of them would never end. */
    const read = new Map<string, number>();
    let entries = 0;
    let bytes = 0;
    let url: URL | undefined = first;
    for (let page = 1; url; page++) {
      if (page > maxPages) {
        throw new RegauthError('ERR_TOO_LARGE', `${what}: more than ${maxPages} pages; stopping there`);
      }
      const key = createHash('sha256').update(url.href).digest('base64');
      const before = read.get(key);
      if (before !== undefined) {
        throw new RegauthError(
          'ERR_REGISTRY',
          `${what}: page ${page - 1} links to page ${before} as the next one; the registry's paging loops, stopping`,
        );
      }
      read.set(key, page);
      const res: AuthResponse = await this.#request('GET', url, scopes, {}, undefined, options);
      if (res.status !== 200) {
        const scope = scopes[0];
        throw await registryError(res, what, {
          registry: this.registry,
          ...(scope?.type === 'repository' ? { repository: scope.name, action: 'pull' } : { action: 'list' }),
        });
      }
      let text: string;
      let body: Record<string, unknown>;
      try {
        text = await res.text(MAX_LIST_PAGE_BYTES);
        body = JSON.parse(text) as Record<string, unknown>;
      } catch (cause) {
        if (cause instanceof RegauthError) throw cause;
        throw new RegauthError('ERR_REGISTRY', `${what}: the registry sent a page that is not JSON`, {
          cause,
          ...httpErrorFacts(res),
        });
      }
      bytes += Buffer.byteLength(text);
      if (bytes > maxBytes) {
        throw new RegauthError(
          'ERR_TOO_LARGE',
          `${what}: more than ${maxBytes} bytes of pages; stopping there`,
        );
      }
      const items = body[field];
      // Some registries send `"tags": null` for an empty list.
      const names = Array.isArray(items)
        ? items.filter((item): item is string => typeof item === 'string')
        : [];
      entries += names.length;
      if (entries > maxEntries) {
        throw new RegauthError('ERR_TOO_LARGE', `${what}: more than ${maxEntries} names; stopping there`);
      }
      if (names.length > 0) yield names;
      // Against the URL that answered: a loopback registry's scheme may be the one its ping found.
      url = nextPage(res, res.url.host === url.host ? res.url : url);
    }
  }
}

async function collect(pages: AsyncIterable<string[]>): Promise<string[]> {
  const out: string[] = [];
  for await (const page of pages) for (const name of page) out.push(name);
  return out;
}

/** The `rel="next"` target of a Link header, resolved against the request; same origin only. */
export function nextPage(res: HttpResponse, current: URL): URL | undefined {
  for (const value of res.headerValues('link')) {
    for (const part of value.split(/,(?=\s*<)/)) {
      const m = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
      if (!m || !/\brel\s*=\s*"?next"?/i.test(m[2] ?? '')) continue;
      const next = new URL(m[1] ?? '', current);
      return next.origin === current.origin ? next : undefined;
    }
  }
  return undefined;
}
