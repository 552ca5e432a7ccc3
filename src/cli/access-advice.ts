import type { RegauthError } from '../errors/regauth-error.js';

/**
 * What a person can do about a refused request, from the facts the error carries (its
 * `access`): the library says who was refused what; the CLI knows its own commands and flags.
 */
export function accessAdvice(err: RegauthError): string | undefined {
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
