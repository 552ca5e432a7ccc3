import { sanitizeServerText } from './sanitize-server-text.js';

/**
 * Every error regauth throws on purpose carries one of these codes, so callers can branch on
 * `err.code` instead of parsing messages. Registry error codes from the distribution spec map
 * onto the `ERR_<SPEC CODE>` members.
 */
export type RegauthErrorCode =
  // Bad input, found before any request is sent.
  | 'ERR_INVALID_SCOPE'
  | 'ERR_INVALID_REFERENCE'
  | 'ERR_INVALID_DIGEST'
  | 'ERR_INVALID_CHALLENGE'
  | 'ERR_INVALID_CONFIG'
  | 'ERR_INVALID_KEY'
  | 'ERR_INVALID_HTPASSWD'
  | 'ERR_INVALID_DOCKER_CONFIG'
  | 'ERR_INVALID_LAYOUT'
  | 'ERR_FILE_EXISTS'
  // A file or folder could not be read or written (the path and the errno are in the message).
  | 'ERR_FILE_SYSTEM'
  | 'ERR_USAGE'
  // Options that cannot work together, or one that would be ignored (createRegistryClients).
  | 'ERR_INVALID_OPTIONS'
  // An optional peer dependency the server or keygen needs (bcrypt, yaml, @peculiar/x509) is not installed.
  | 'ERR_MISSING_DEPENDENCY'
  // An action that would remove more than was named (other tags of an image); its hint says what.
  | 'ERR_REFUSED'
  // The caller aborted the call through its AbortSignal.
  | 'ERR_ABORTED'
  // A token server's backend (an external program, a directory) failed or broke its contract.
  | 'ERR_AUTH_BACKEND'
  // Credentials and tokens.
  | 'ERR_CREDENTIAL_HELPER'
  // A token server's authentication backend (an external program, a directory) failed.
  | 'ERR_AUTHENTICATOR'
  | 'ERR_UNAUTHORIZED'
  | 'ERR_DENIED'
  | 'ERR_TOKEN_RESPONSE'
  | 'ERR_INSECURE_REALM'
  | 'ERR_FOREIGN_CHALLENGE'
  // Transport.
  | 'ERR_NETWORK'
  | 'ERR_TOO_LARGE'
  | 'ERR_TOO_MANY_REQUESTS'
  | 'ERR_REDIRECT'
  // Registry answers (distribution spec error codes).
  | 'ERR_MANIFEST_UNKNOWN'
  | 'ERR_MANIFEST_INVALID'
  | 'ERR_BLOB_UNKNOWN'
  | 'ERR_NAME_UNKNOWN'
  | 'ERR_NAME_INVALID'
  | 'ERR_TAG_INVALID'
  | 'ERR_UNSUPPORTED'
  | 'ERR_DIGEST_MISMATCH'
  | 'ERR_NO_MATCHING_PLATFORM'
  | 'ERR_REGISTRY';

/** One entry of a registry's `{"errors":[…]}` envelope (distribution spec). */
export interface RegistryErrorEntry {
  readonly code: string;
  readonly message?: string;
  readonly detail?: unknown;
}

/**
 * What a refused request (ERR_DENIED, ERR_UNAUTHORIZED from a registry) was: who asked to do
 * what, where. Kept as data so that a caller can explain it, or act on it, without reading the
 * message; never holds a secret.
 */
export interface RefusedAccess {
  readonly registry: string;
  /** Left out for requests about the whole registry (the catalog). */
  readonly repository?: string;
  /** What the request needed: `pull`, `push`, `delete`, or `list` for the catalog. */
  readonly actions: readonly string[];
  /**
   * How the request was sent: `anonymous` (no credentials), `account` (a user's credentials),
   * or `unknown` when no auth layer said (a send function of the caller's own).
   */
  readonly as: 'anonymous' | 'account' | 'unknown';
  /** The user name sent; left out when anonymous, or for an identity token without one. */
  readonly account?: string;
  /** Where the credentials came from (`docker config <path>`, or a label the caller gave its own). */
  readonly credentialSource?: string;
}

/**
 * The request a server answered with an error: its method and URL, redacted (no user info, no
 * query value off the protocol's allow-list, no token), so it is safe to log and to show.
 */
export interface RegauthErrorRequest {
  readonly method: string;
  readonly url: string;
}

/**
 * What a caller could change to get past an error, as data: the library says what went wrong;
 * an application (the CLI: src/cli/explain-error.ts) words the advice in its own terms, flags
 * or settings.
 */
export type RegauthErrorHint =
  /** Credentials are needed (`missing`) or were refused (`refused`): log in, or give others. */
  | { readonly kind: 'login'; readonly reason: 'missing' | 'refused' }
  /** The server's certificate was not trusted: a private CA to trust, or a plain-HTTP registry. */
  | { readonly kind: 'tls' }
  /** The CA file given (`caFile`) could not be read, or holds no valid certificate. */
  | { readonly kind: 'ca-file'; readonly path: string }
  /** No manifest of an index is for the platform asked for; these are the ones it has. */
  | { readonly kind: 'platform'; readonly offered: readonly string[] }
  /** A single-platform image is for another platform than the one asked for. */
  | { readonly kind: 'platform-mismatch'; readonly actual: string; readonly wanted: string }
  /** Too many files open at once: fewer parallel transfers would need fewer. */
  | { readonly kind: 'jobs' }
  /** One of a user name and password was given without the other. */
  | { readonly kind: 'credential-pair'; readonly missing: 'username' | 'password' }
  /** A tag was left on a placeholder; pointing `tag` at `source` (`name@digest`) again restores it. */
  | { readonly kind: 'restore-tag'; readonly source: string; readonly tag: string }
  /**
   * A delete by tag was refused: `digest` (what `name:tag` names) is also tagged `otherTags`, and
   * a registry deletes by digest, taking every tag with it. Removing only the tag, or deleting
   * anyway, are the ways on.
   */
  | {
      readonly kind: 'shared-digest';
      readonly name: string;
      readonly tag: string;
      readonly digest: string;
      readonly otherTags: readonly string[];
    }
  /** A docker-archive (docker save tar) was named as a source; regauth writes them, it does not read them. */
  | { readonly kind: 'docker-archive' }
  /** A signing key or certificate is unusable: a new key and certificate pair would do. */
  | { readonly kind: 'keygen' };

/** The facts a RegauthError carries besides its code and message. */
export interface RegauthErrorOptions {
  /** The error that led to this one (a network error, a server's answer), as `Error.cause`. */
  readonly cause?: unknown;
  /** The HTTP status that produced this error, when one did. */
  readonly status?: number;
  /** The request that got the answer, redacted; set whenever `status` is. */
  readonly request?: RegauthErrorRequest;
  /** The registry's `errors[]`, kept as sent. */
  readonly registryErrors?: readonly RegistryErrorEntry[];
  /** For a refused request: who asked to do what, where. */
  readonly access?: RefusedAccess;
  /** What a caller could change, as data. */
  readonly hint?: RegauthErrorHint;
}

/**
 * Marks regauth's errors across copies of this module: the CLI's bundles each hold one, and an
 * application may load two versions of the package. `instanceof` checks the mark.
 */
const BRAND = Symbol.for('regauth.RegauthError');

/**
 * The base class of regauth's errors: a stable `code` and a message that says what to do. Messages
 * often quote what a server sent; control characters in them are shown as visible escapes, so a
 * message is always safe to print on a terminal.
 */
export class RegauthError<C extends RegauthErrorCode = RegauthErrorCode> extends Error {
  /**
   * True for a RegauthError from any copy of this module (see BRAND), so `instanceof` works across bundles.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }

  readonly [BRAND] = true;
  readonly code: C;
  /** The HTTP status of the answer that caused this error; set whenever a server answered. */
  readonly status: number | undefined;
  /** The request that got that answer, redacted (method and URL, no secrets). */
  readonly request: RegauthErrorRequest | undefined;
  readonly registryErrors: readonly RegistryErrorEntry[];
  readonly access: RefusedAccess | undefined;
  /** What a caller could change, as data; applications word it as advice of their own. */
  readonly hint: RegauthErrorHint | undefined;

  constructor(code: C, message: string, options: RegauthErrorOptions = {}) {
    super(sanitizeServerText(message), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RegauthError';
    this.code = code;
    this.status = options.status;
    this.request = options.request;
    this.registryErrors = options.registryErrors ?? [];
    this.access = options.access;
    this.hint = options.hint;
  }
}

/**
 * Whether `value` is a regauth error, and, given a code, one with that code; narrows `err.code`
 * to it, so a `switch` or the fields that only some codes carry type-check without a cast.
 */
export function isRegauthError<C extends RegauthErrorCode = RegauthErrorCode>(
  value: unknown,
  code?: C,
): value is RegauthError<C> {
  return value instanceof RegauthError && (code === undefined || value.code === code);
}
