import { join } from 'node:path';
import type { CredentialEnv } from './credential.js';

export interface PodmanAuthPathOptions {
  readonly env: CredentialEnv;
  readonly homedir: string;
  /** Leaving it out means `process.getuid()` (0 where there is none). */
  readonly uid?: number;
  /** Leaving it out means `process.platform`. */
  readonly platform?: NodeJS.Platform;
}

/**
 * Where podman, buildah and skopeo keep logins (containers/image getPathToAuthWithOS): on Linux
 * `$XDG_RUNTIME_DIR/containers/auth.json`, or `/run/containers/<uid>/auth.json` without
 * XDG_RUNTIME_DIR (root, services); elsewhere `~/.config/containers/auth.json`.
 */
export function podmanAuthPath(options: PodmanAuthPathOptions): string {
  const platform = options.platform ?? process.platform;
  if (platform !== 'linux') return join(options.homedir, '.config', 'containers', 'auth.json');
  const runtimeDir = options.env.XDG_RUNTIME_DIR;
  if (runtimeDir !== undefined && runtimeDir !== '') return join(runtimeDir, 'containers', 'auth.json');
  const uid = options.uid ?? process.getuid?.() ?? 0;
  return `/run/containers/${uid}/auth.json`;
}
