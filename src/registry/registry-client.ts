import type { AuthSend } from '../auth/create-auth-client.js';
import { computeDigest, parseDigest, verifyDigest } from '../digest/digest.js';
import { RegauthError } from '../errors/regauth-error.js';
import type { ResourceScope } from '../scope/parse-scope.js';
import type { HttpResponse } from '../transport/http-types.js';
import { MANIFEST_ACCEPT } from './media-types.js';
import { parseRateLimit, type RateLimit } from './rate-limit.js';
import { registryError } from './registry-error.js';
import { registryBaseUrl } from './registry-url.js';

/** The registry's own limit on manifests (distribution: 4 MiB); anything bigger is not one. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Image configs are JSON documents of kilobytes; the largest seen in the wild are a few MiB. */
export const MAX_CONFIG_BYTES = 8 * 1024 * 1024;
/** Tag and catalog pages are JSON lists; 4 MiB holds tens of thousands of names. */
export const MAX_LIST_PAGE_BYTES = 4 * 1024 * 1024;
/** Pages asked for per list request; ECR refuses more than 1000 (PROTOCOL.md §7). */
export const DEFAULT_PAGE_SIZE = 1000;
/** A runaway Link chain stops here. */
const MAX_PAGES = 10_000;

export interface Manifest {
  readonly bytes: Buffer;
  readonly mediaType: string;
  /** The digest of `bytes`, computed here (the registry's header is only a hint). */
  readonly digest: string;
  /** Docker Hub's pull quota after this request, when the registry states one. */
  readonly rateLimit?: RateLimit;
}

export interface ManifestHead {
  readonly digest?: string;
  readonly mediaType: string;
  readonly size?: number;
  readonly rateLimit?: RateLimit;
}

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

/** Tags and digests go into the path as they are (`sha256:…` keeps its colon, as registries expect). */
function escapeReference(reference: string): string {
  return /^[\w.:+=-]+$/.test(reference) ? reference : encodeURIComponent(reference);
}

/** The registry HTTP API for one registry (distribution spec): manifests, blobs, tags, catalog. */
export class RegistryClient {
  readonly registry: string;
  readonly baseUrl: URL;
  readonly #send: AuthSend;

  constructor(options: RegistryClientOptions) {
    this.registry = options.registry;
    this.baseUrl = registryBaseUrl(options.registry, options.insecure);
    this.#send = options.send;
  }

  #url(path: string): URL {
    return new URL(path, this.baseUrl);
  }

  async #request(
    method: string,
    url: URL,
    scopes: readonly ResourceScope[],
    headers: Record<string, string> = {},
  ): Promise<HttpResponse> {
    return this.#send({ method, url, headers, registry: this.registry, scopes });
  }

  /**
   * GET a manifest: the bytes exactly as served, with their digest computed here and checked
   * against `reference` when it is a digest (ERR_DIGEST_MISMATCH).
   */
  async getManifest(repository: string, reference: string): Promise<Manifest> {
    const where = `${this.registry}/${repository}${reference.includes(':') ? '@' : ':'}${reference}`;
    const res = await this.#request(
      'GET',
      this.#url(`/v2/${escapePath(repository)}/manifests/${escapeReference(reference)}`),
      [pull(repository)],
      { accept: MANIFEST_ACCEPT },
    );
    if (res.status !== 200) {
      throw await registryError(res, `manifest ${where}`, {
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
  async headManifest(repository: string, reference: string): Promise<ManifestHead> {
    const where = `${this.registry}/${repository}${reference.includes(':') ? '@' : ':'}${reference}`;
    const res = await this.#request(
      'HEAD',
      this.#url(`/v2/${escapePath(repository)}/manifests/${escapeReference(reference)}`),
      [pull(repository)],
      { accept: MANIFEST_ACCEPT },
    );
    await res.dump();
    if (res.status !== 200) {
      // HEAD answers have no body: the status is all there is.
      throw await registryError(res, `manifest ${where}`, {
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
  async getBlobBytes(repository: string, digest: string, limit: number = MAX_CONFIG_BYTES): Promise<Buffer> {
    parseDigest(digest);
    const where = `blob ${this.registry}/${repository}@${digest}`;
    const res = await this.#request('GET', this.#url(`/v2/${escapePath(repository)}/blobs/${digest}`), [
      pull(repository),
    ]);
    if (res.status !== 200)
      throw await registryError(res, where, { action: 'pull', notFound: 'ERR_BLOB_UNKNOWN' });
    const bytes = await res.bytes(limit);
    verifyDigest(bytes, digest, where);
    return bytes;
  }

  /** Every tag of a repository, following `Link: <…>; rel="next"` pages in order. */
  async listTags(repository: string, pageSize: number = DEFAULT_PAGE_SIZE): Promise<string[]> {
    const first = this.#url(`/v2/${escapePath(repository)}/tags/list?n=${pageSize}`);
    return this.#list(first, [pull(repository)], 'tags', `tags of ${this.registry}/${repository}`);
  }

  /** Every repository name (`/v2/_catalog`), following pages. */
  async catalog(pageSize: number = DEFAULT_PAGE_SIZE): Promise<string[]> {
    const first = this.#url(`/v2/_catalog?n=${pageSize}`);
    const scope: ResourceScope = { type: 'registry', name: 'catalog', actions: ['*'] };
    return this.#list(first, [scope], 'repositories', `catalog of ${this.registry}`);
  }

  async #list(first: URL, scopes: readonly ResourceScope[], field: string, what: string): Promise<string[]> {
    const out: string[] = [];
    let url: URL | undefined = first;
    for (let page = 0; url && page < MAX_PAGES; page++) {
      const res: HttpResponse = await this.#request('GET', url, scopes);
      if (res.status !== 200) throw await registryError(res, what, { action: 'list' });
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(await res.text(MAX_LIST_PAGE_BYTES)) as Record<string, unknown>;
      } catch (cause) {
        if (cause instanceof RegauthError) throw cause;
        throw new RegauthError('ERR_REGISTRY', `${what}: the registry sent a page that is not JSON`, {
          cause,
        });
      }
      const items = body[field];
      // Some registries send null for an empty list (PROTOCOL.md §7).
      if (Array.isArray(items)) for (const item of items) if (typeof item === 'string') out.push(item);
      url = nextPage(res, url);
    }
    return out;
  }
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
