/**
 * Every error regauth throws on purpose carries one of these codes, so callers can branch on
 * `err.code` instead of parsing messages. Registry error codes from the distribution spec map
 * onto the `ERR_<SPEC CODE>` members.
 */
export type RegauthErrorCode =
  | 'ERR_INVALID_SCOPE'
  | 'ERR_INVALID_REFERENCE'
  | 'ERR_INVALID_CONFIG'
  | 'ERR_INVALID_KEY'
  | 'ERR_INVALID_HTPASSWD'
  | 'ERR_FILE_EXISTS'
  | 'ERR_USAGE';

export interface RegauthErrorOptions {
  readonly cause?: unknown;
}

/** The base class of regauth's errors: a stable `code` and a message that says what to do. */
export class RegauthError extends Error {
  readonly code: RegauthErrorCode;

  constructor(code: RegauthErrorCode, message: string, options: RegauthErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RegauthError';
    this.code = code;
  }
}

export function isRegauthError(value: unknown, code?: RegauthErrorCode): value is RegauthError {
  return value instanceof RegauthError && (code === undefined || value.code === code);
}
