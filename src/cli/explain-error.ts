import { isRegauthError, type RegauthError } from '../errors/regauth-error.js';

/**
 * What a person can do about an error, in the CLI's own commands and flags, from the facts the
 * error carries (its `access` and `hint`): the library says what went wrong; the CLI knows how
 * its user changes that.
 */
export function explainError(err: RegauthError): string | undefined {
  return accessAdvice(err) ?? hintAdvice(err);
}

/** An error's message followed by the CLI's advice for it, as the CLI prints it. */
export function explainedMessage(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const advice = isRegauthError(err) ? explainError(err) : undefined;
  return advice === undefined ? message : `${message}; ${advice}`;
}

/** For a refused request: who was refused what, and how to ask as someone who may. */
function accessAdvice(err: RegauthError): string | undefined {
  const access = err.access;
  if (access === undefined) return undefined;
  const login = `regauth login ${access.registry}`;
  switch (access.as) {
    case 'anonymous':
      return `log in with \`${login}\`, or pass -u USER with --password-stdin`;
    case 'account':
      return err.code === 'ERR_UNAUTHORIZED'
        ? `check the password, or log in again with \`${login}\``
        : `use an account that may (\`${login}\`, or -u USER with --password-stdin), or ask the registry's admin for access`;
    default:
      return undefined;
  }
}

function hintAdvice(err: RegauthError): string | undefined {
  const hint = err.hint;
  switch (hint?.kind) {
    case undefined:
      return undefined;
    case 'login':
      return hint.reason === 'refused'
        ? 'check them or log in again with regauth login'
        : 'log in with regauth login or pass --username';
    case 'tls':
      return 'for a private CA pass --ca-file; for a plain-HTTP registry pass --insecure';
    case 'ca-file':
      return 'check the file given to --ca-file';
    case 'platform':
      return 'choose one with --platform';
    case 'platform-mismatch':
      return 'drop --platform to take it anyway';
    case 'jobs':
      return 'or lower --jobs';
    case 'credential-pair':
      return hint.missing === 'username'
        ? '--password-stdin needs --username'
        : 'pass the password on stdin with --password-stdin';
    case 'restore-tag':
      return `restore it with regauth tag ${hint.source} ${hint.tag}`;
    case 'shared-digest':
      return (
        `to remove only this tag: regauth untag ${hint.name}:${hint.tag}; ` +
        `to delete the image with all ${hint.otherTags.length + 1} tags: add --force`
      );
    case 'docker-archive':
      return 'regauth pull --format docker-archive writes one';
    case 'keygen':
      return 'regauth keygen makes a key and a certificate that match';
  }
}
