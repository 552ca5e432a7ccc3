import { join } from 'node:path';
import type { CredentialEnv } from './credential.js';

export interface DockerConfigPathOptions {
  readonly env: CredentialEnv;
  readonly homedir: string;
}

/** `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json` (docker's config.Dir()). */
export function dockerConfigPath(options: DockerConfigPathOptions): string {
  const dir = options.env.DOCKER_CONFIG;
  return dir !== undefined && dir !== ''
    ? join(dir, 'config.json')
    : join(options.homedir, '.docker', 'config.json');
}
