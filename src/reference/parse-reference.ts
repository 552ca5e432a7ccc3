import { RegauthError } from '../errors/regauth-error.js';
import { MAX_REPOSITORY_NAME_LENGTH, PATH_COMPONENT_RE } from './repository-name.js';

/**
 * Image references as docker writes them (`alpine`, `user/app:1.0`, `localhost:5000/a/b@sha256:…`),
 * parsed and normalized the way distribution's `reference` package does it (ParseNormalizedNamed:
 * normalize.go, regexp.go, reference.go), so a name means the same repository here as in docker.
 */

/** The registry name docker uses for Docker Hub in normalized references. */
export const DOCKER_HUB_REGISTRY = 'docker.io';
/** The host that actually serves Docker Hub's registry API (moby registry/config.go `DefaultRegistryHost`). */
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io';
/** The key docker writes Docker Hub credentials under in config.json (docker/cli registry `IndexServer`). */
export const DOCKER_HUB_CONFIG_KEY = 'https://index.docker.io/v1/';
/** The tag docker assumes when a reference names neither a tag nor a digest. */
export const DEFAULT_TAG = 'latest';

/** Docker Hub's name from the v1 days; docker still accepts it and rewrites it to docker.io. */
const LEGACY_DOCKER_HUB_REGISTRY = 'index.docker.io';
const OFFICIAL_REPOSITORY_PREFIX = 'library/';

/**
 * Far above any valid reference (a 255-character name, a 128-character tag and a sha512 digest),
 * so that no regular expression ever runs over unbounded input.
 */
const MAX_REFERENCE_INPUT_LENGTH = 4096;

const EXAMPLE = 'docker.io/library/alpine:3.20';

const HOST_COMPONENT_RE = /^[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?$/;
const IPV6_RE = /^\[[0-9a-fA-F:.]+\]$/;
const PORT_RE = /^[0-9]+$/;
/** distribution reference/regexp.go: a tag is a word character, then up to 127 of `[\w.-]`. */
export const TAG_RE = /^\w[\w.-]{0,127}$/;
/** go-digest: algorithm components joined by `+._-`; the encoded part is base64url-ish. */
const DIGEST_ALGORITHM_RE = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*$/;
const DIGEST_ENCODED_RE = /^[a-zA-Z0-9=_-]{32,}$/;
/** Registered algorithms have a fixed lowercase-hex encoding (OCI image-spec descriptor.md). */
const HEX_DIGEST_LENGTHS: Readonly<Record<string, number>> = { sha256: 64, sha512: 128 };
const LOWER_HEX_RE = /^[a-f0-9]+$/;
/** An image ID on its own; distribution refuses it as a name so it cannot be mistaken for one. */
const IMAGE_ID_RE = /^[a-f0-9]{64}$/;

/** An image reference taken apart by parseReference: `registry/repository[:tag][@digest]`. */
export interface ImageReference {
  /** `docker.io` for Docker Hub, otherwise `host[:port]` as written (`[::1]:5000` for IPv6). */
  readonly registry: string;
  /** The path inside the registry, such as `library/alpine`. */
  readonly repository: string;
  /** The tag, such as `latest`; left out when the reference names only a digest. */
  readonly tag?: string;
  /** `algorithm:encoded`, such as `sha256:<64 lowercase hex>`. */
  readonly digest?: string;
}

/** How parseReference fills in what a reference leaves out. */
export interface ParseReferenceOptions {
  /**
   * Whether to fill in {@link DEFAULT_TAG} when the reference has neither a tag nor a digest, as
   * `docker pull` does. Leaving it out means `true`; pass `false` for commands that act on a
   * whole repository.
   */
  readonly defaultTag?: boolean;
}

function quoteInput(text: string): string {
  return JSON.stringify(text.length > 100 ? `${text.slice(0, 100)}…` : text);
}

function referenceError(text: string, why: string): RegauthError {
  return new RegauthError(
    'ERR_INVALID_REFERENCE',
    `invalid reference ${quoteInput(text)}: ${why} (e.g. ${EXAMPLE})`,
  );
}

/** Whether `host` is `name[:port]` or `[ipv6][:port]` in distribution's domainAndPort grammar. */
function isValidRegistryHost(host: string): boolean {
  let name = host;
  const close = host.lastIndexOf(']');
  const colon = host.lastIndexOf(':');
  if (colon > close) {
    if (!PORT_RE.test(host.slice(colon + 1))) return false;
    name = host.slice(0, colon);
  }
  if (name.startsWith('[')) return IPV6_RE.test(name);
  return name.split('.').every((part) => HOST_COMPONENT_RE.test(part));
}

/**
 * Returns why `digest` is not a valid digest, or undefined when it is. sha256 and sha512 must
 * have their exact lowercase-hex length; other algorithms only need the generic OCI shape.
 */
function digestProblem(digest: string): string | undefined {
  const colon = digest.indexOf(':');
  if (colon <= 0) return `digest ${quoteInput(digest)} is not algorithm:hex such as sha256:<64 hex digits>`;
  const algorithm = digest.slice(0, colon);
  const encoded = digest.slice(colon + 1);
  if (!DIGEST_ALGORITHM_RE.test(algorithm)) {
    return `digest algorithm ${quoteInput(algorithm)} is not lowercase letters and digits`;
  }
  const hexLength = HEX_DIGEST_LENGTHS[algorithm];
  if (hexLength !== undefined) {
    if (encoded.length !== hexLength || !LOWER_HEX_RE.test(encoded)) {
      return `a ${algorithm} digest needs exactly ${hexLength} lowercase hex digits`;
    }
    return undefined;
  }
  if (!DIGEST_ENCODED_RE.test(encoded)) {
    return `digest ${quoteInput(digest)} needs at least 32 characters of [a-zA-Z0-9=_-] after the algorithm`;
  }
  return undefined;
}

/**
 * Whether the first path part of a reference names a registry. Docker's rule: it does when it
 * holds a `.` or a `:` or is `localhost`; `user/app` is a Docker Hub repository. An `[IPv6]`
 * literal always holds a `:`. (distribution also treats an uppercase first part as a host; we
 * report uppercase as a lowercase error instead, which is what the user almost always meant.)
 */
function isRegistryPart(part: string): boolean {
  return part.includes('.') || part.includes(':') || part === 'localhost' || part.startsWith('[');
}

/**
 * Parses an image reference and normalizes it as docker does: `alpine` becomes
 * `docker.io/library/alpine:latest`, `index.docker.io` becomes `docker.io`, other registries
 * are kept as written. Throws RegauthError `ERR_INVALID_REFERENCE` for anything else, and only that.
 */
export function parseReference(text: string, options: ParseReferenceOptions = {}): ImageReference {
  try {
    return parseNormalized(text, options);
  } catch (err) {
    throw (typeof text === 'string' ? transportPrefixError(text) : undefined) ?? err;
  }
}

/**
 * The transports of containers/image (skopeo, podman: docs/containers-transports.5.md) that
 * people paste along with a name. Only input that fails to parse gets this advice: `oci:v1` is a
 * valid Docker Hub reference, and stays one.
 */
const TRANSPORT_PREFIXES: readonly { readonly prefix: string; readonly why: string }[] = [
  { prefix: 'docker://', why: 'is the registry transport of skopeo; a reference names the image alone' },
  { prefix: 'docker-daemon:', why: 'names an image in the local docker engine, which regauth does not read' },
  { prefix: 'oci:', why: "names an OCI image layout; give the layout's folder itself to push or pull" },
  { prefix: 'oci-archive:', why: 'names a tar of an OCI image layout, which regauth does not read' },
  {
    prefix: 'docker-archive:',
    why: 'names a docker save tar, which regauth writes but does not read',
  },
  { prefix: 'containers-storage:', why: "names podman's local storage, which regauth does not read" },
];

function transportPrefixError(text: string): RegauthError | undefined {
  const found = TRANSPORT_PREFIXES.find(({ prefix }) => text.startsWith(prefix));
  if (found === undefined) return undefined;
  const rest = text.slice(found.prefix.length);
  return new RegauthError(
    'ERR_INVALID_REFERENCE',
    `invalid reference ${quoteInput(text)}: "${found.prefix}" ${found.why}` +
      (found.prefix === 'docker://' || found.prefix === 'docker-daemon:'
        ? `; drop the prefix to name it in its registry: ${quoteInput(rest)}`
        : ''),
    found.prefix === 'docker-archive:' ? { hint: { kind: 'docker-archive' } } : {},
  );
}

function parseNormalized(text: string, options: ParseReferenceOptions): ImageReference {
  if (typeof text !== 'string') {
    throw new RegauthError('ERR_INVALID_REFERENCE', `invalid reference: expected a string (e.g. ${EXAMPLE})`);
  }
  if (text === '') throw referenceError(text, 'it is empty');
  if (text.length > MAX_REFERENCE_INPUT_LENGTH) {
    throw referenceError(text, `it is longer than ${MAX_REFERENCE_INPUT_LENGTH} characters`);
  }
  if (IMAGE_ID_RE.test(text)) {
    throw referenceError(
      text,
      'a 64-digit hex string is an image ID, not a name; write name@sha256:<digest>',
    );
  }

  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (digest === '')
      throw referenceError(
        text,
        'nothing follows "@"; write a digest such as sha256:<64 hex digits> or leave out the "@"',
      );
    const problem = digestProblem(digest);
    if (problem !== undefined) throw referenceError(text, problem);
  }

  // The tag follows the last ':' after the last '/'; a ':' before that belongs to host:port.
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/') && !rest.slice(colon).includes(']')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (tag === '') throw referenceError(text, 'nothing follows ":"; write a tag or leave out the ":"');
    if (!TAG_RE.test(tag)) {
      throw referenceError(
        text,
        `tag ${quoteInput(tag)} must be at most 128 letters, digits, "_", "." or "-", not starting with "." or "-"`,
      );
    }
  }

  if (rest === '') throw referenceError(text, 'the repository name is missing');
  let registry = DOCKER_HUB_REGISTRY;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash !== -1 && isRegistryPart(rest.slice(0, slash))) {
    registry = rest.slice(0, slash);
    path = rest.slice(slash + 1);
    if (!isValidRegistryHost(registry)) {
      throw referenceError(text, `registry ${quoteInput(registry)} is not a valid host[:port]`);
    }
    if (registry === LEGACY_DOCKER_HUB_REGISTRY) registry = DOCKER_HUB_REGISTRY;
  }
  if (path === '') throw referenceError(text, 'the repository name after the registry is missing');

  const components = path.split('/');
  for (const component of components) {
    if (component === '') {
      throw referenceError(
        text,
        'the repository path has an empty component (a leading, trailing or double "/")',
      );
    }
  }
  if (path !== path.toLowerCase()) throw referenceError(text, 'repository name must be lowercase');
  for (const component of components) {
    if (!PATH_COMPONENT_RE.test(component)) {
      throw referenceError(
        text,
        `repository path component ${quoteInput(component)} must be lowercase letters and digits, ` +
          'separated by ".", "_", "__" or "-"',
      );
    }
  }
  if (registry === DOCKER_HUB_REGISTRY && components.length === 1)
    path = `${OFFICIAL_REPOSITORY_PREFIX}${path}`;

  const nameLength = registry.length + 1 + path.length;
  if (nameLength > MAX_REPOSITORY_NAME_LENGTH) {
    throw referenceError(
      text,
      `the name ${registry}/${path.length > 40 ? `${path.slice(0, 40)}…` : path} is ${nameLength} characters long, ` +
        `more than the ${MAX_REPOSITORY_NAME_LENGTH} a registry accepts`,
    );
  }

  if (tag === undefined && digest === undefined && options.defaultTag !== false) tag = DEFAULT_TAG;
  const ref: { registry: string; repository: string; tag?: string; digest?: string } = {
    registry,
    repository: path,
  };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** The fully qualified form: `docker.io/library/alpine:latest`, `host:5000/a/b:tag@sha256:…`. */
export function formatReference(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${suffix(ref)}`;
}

/**
 * The short form docker prints: Docker Hub's registry and the `library/` of official images are
 * left out (`alpine:latest`, `user/app:1.0`); other registries stay (`localhost:5000/app:1.0`).
 * Unlike docker, a Docker Hub name whose first part looks like a host (`docker.io/a.b/c`) keeps
 * its registry, so the short form always parses back to the same reference.
 */
export function familiarName(ref: ImageReference): string {
  if (ref.registry !== DOCKER_HUB_REGISTRY) return formatReference(ref);
  let name = ref.repository;
  const slash = name.indexOf('/');
  if (slash !== -1 && isRegistryPart(name.slice(0, slash))) return formatReference(ref);
  if (
    name.startsWith(OFFICIAL_REPOSITORY_PREFIX) &&
    !name.slice(OFFICIAL_REPOSITORY_PREFIX.length).includes('/')
  ) {
    name = name.slice(OFFICIAL_REPOSITORY_PREFIX.length);
  }
  return `${name}${suffix(ref)}`;
}

function suffix(ref: ImageReference): string {
  return `${ref.tag === undefined ? '' : `:${ref.tag}`}${ref.digest === undefined ? '' : `@${ref.digest}`}`;
}

function isDockerHub(registry: string): boolean {
  return registry === DOCKER_HUB_REGISTRY || registry === LEGACY_DOCKER_HUB_REGISTRY;
}

/** The host to send registry API requests to: Docker Hub is served from registry-1.docker.io. */
export function registryApiHost(registry: string): string {
  return isDockerHub(registry) ? DOCKER_HUB_API_HOST : registry;
}

/** The config.json `auths` key docker uses for a registry: Docker Hub's is still the v1 URL. */
export function registryConfigKey(registry: string): string {
  return isDockerHub(registry) ? DOCKER_HUB_CONFIG_KEY : registry;
}

const REGISTRY_EXAMPLE = 'localhost:5000 or docker.io';
/** The paths docker itself writes after a registry address (`https://index.docker.io/v1/`). */
const REGISTRY_PATH_RE = /^(?:\/(?:v[12]\/?)?)?$/;
const URL_SCHEME_RE = /^https?:\/\//i;

/**
 * Reads the registry argument of commands such as `login`: `localhost:5000`, `docker.io`,
 * `https://host:5000/` and docker's own `https://index.docker.io/v1/` are accepted and give
 * `host[:port]` (`docker.io` for Docker Hub). A repository path is refused rather than silently
 * dropped, since `login docker.io/user/app` is a mistake worth pointing out.
 */
export function parseRegistry(text: string): string {
  const bad = (why: string): RegauthError =>
    new RegauthError(
      'ERR_INVALID_REFERENCE',
      // A URL with user:password@ must not reach a message or a log.
      `invalid registry${typeof text === 'string' && !text.includes('@') ? ` ${quoteInput(text)}` : ''}: ${why} (e.g. ${REGISTRY_EXAMPLE})`,
    );
  if (typeof text !== 'string') throw bad('expected a string');
  if (text.length > MAX_REFERENCE_INPUT_LENGTH)
    throw bad(`it is longer than ${MAX_REFERENCE_INPUT_LENGTH} characters`);
  if (text.includes('@')) throw bad('a registry address must not hold credentials or a digest');
  const withoutScheme = text.replace(URL_SCHEME_RE, '');
  const slash = withoutScheme.indexOf('/');
  const host = slash === -1 ? withoutScheme : withoutScheme.slice(0, slash);
  const path = slash === -1 ? '' : withoutScheme.slice(slash);
  if (host === '') throw bad('the host is missing');
  if (!isValidRegistryHost(host)) throw bad('expected host[:port]');
  if (!REGISTRY_PATH_RE.test(path)) {
    throw bad(`a registry is host[:port] without a repository path; did you mean ${host}?`);
  }
  return host === LEGACY_DOCKER_HUB_REGISTRY ? DOCKER_HUB_REGISTRY : host;
}
