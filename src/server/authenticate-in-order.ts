import type { Authentication, Authenticator, PasswordCheckRequest } from './authenticator.js';

/** An authentication together with the kind of authenticator that gave it. */
export type DecidedAuthentication = Authentication & {
  /** The `kind` of the authenticator that decided; left out when none knew the user. */
  readonly by?: string;
  /** The deciding authenticator's `unguessable`: its refusals are no guesses at a password. */
  readonly unguessable?: boolean;
  /** The deciding authenticator's `id`, for refresh tokens. */
  readonly authenticatorId?: string;
};

/**
 * Asks the authenticators in order; the first whose outcome is not `unknown` decides, as
 * docker_auth does (cesanta/docker_auth auth_server/server/server.go authenticateUser). An
 * authenticator that throws stops the walk: letting a later one decide while an earlier one is
 * down would hand its users to whoever holds the same name further down the list.
 */
export async function authenticateInOrder(
  authenticators: readonly Authenticator[],
  request: PasswordCheckRequest,
): Promise<DecidedAuthentication> {
  for (let i = 0; i < authenticators.length; i++) {
    const authenticator = authenticators[i] as Authenticator;
    const result = await authenticator.authenticate(request, { last: i === authenticators.length - 1 });
    if (result.outcome !== 'unknown') {
      return {
        ...result,
        by: authenticator.kind,
        ...(authenticator.unguessable === true ? { unguessable: true } : {}),
        ...(authenticator.id === undefined ? {} : { authenticatorId: authenticator.id }),
      };
    }
  }
  return { outcome: 'unknown' };
}
