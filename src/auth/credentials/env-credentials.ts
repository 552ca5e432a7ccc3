import { RegauthError } from '../../errors/regauth-error.js';
import { type CredentialEnv, type CredentialSource, credentialFromSecret } from './credential.js';
import { checkUserPassword } from './static-credentials.js';

export const ENV_USERNAME = 'REGAUTH_USERNAME';
export const ENV_PASSWORD = 'REGAUTH_PASSWORD';
export const ENV_CREDENTIALS_SOURCE = `${ENV_USERNAME}/${ENV_PASSWORD}`;

/**
 * Credentials from `REGAUTH_USERNAME` and `REGAUTH_PASSWORD` (for CI), offered to every
 * registry asked. Our own prefix on purpose: `USER` and `PWD` are set by every shell and mean
 * something else. An empty variable counts as unset. Checked when created: only one of the
 * two set is a usage error (ERR_USAGE), since silently going anonymous would hide the mistake.
 */
export function envCredentials(env: CredentialEnv): CredentialSource {
  const username = env[ENV_USERNAME] ?? '';
  const password = env[ENV_PASSWORD] ?? '';
  if (username === '' && password === '') return { find: async () => undefined };
  if (username === '' || password === '') {
    const [set, unset] = username === '' ? [ENV_PASSWORD, ENV_USERNAME] : [ENV_USERNAME, ENV_PASSWORD];
    throw new RegauthError('ERR_USAGE', `${set} is set but ${unset} is not; set both, or neither`);
  }
  checkUserPassword(username, password, ENV_CREDENTIALS_SOURCE);
  const found = { credential: credentialFromSecret(username, password), source: ENV_CREDENTIALS_SOURCE };
  return { find: async () => found };
}
