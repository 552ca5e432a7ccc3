import { type DockerConfigFile, readDockerConfig } from './read-docker-config.js';
import { writeFileAtomic } from './write-file-atomic.js';

/**
 * Reads a config file (checked, so a broken file is reported rather than overwritten), lets
 * `edit` change its parsed document in place, and writes it back atomically when `edit`
 * returns true. Every field the edit does not touch is kept, unknown ones included; a new
 * file is created with mode 0600 in a 0700 directory, as docker and podman do, because it
 * holds secrets. Written with tabs like docker's `json.MarshalIndent(…, "", "\t")`.
 */
export async function updateDockerConfig(
  path: string,
  edit: (
    document: Record<string, unknown>,
    config: DockerConfigFile | undefined,
  ) => Promise<boolean> | boolean,
): Promise<void> {
  const config = await readDockerConfig(path);
  const document = structuredClone(config?.document ?? {});
  if (!(await edit(document, config))) return;
  await writeFileAtomic(path, `${JSON.stringify(document, null, '\t')}\n`, { mode: 0o600, dirMode: 0o700 });
}

/** The `auths` object of a document, created when missing. */
export function authsOf(document: Record<string, unknown>): Record<string, unknown> {
  const auths = document.auths;
  if (typeof auths === 'object' && auths !== null && !Array.isArray(auths)) {
    return auths as Record<string, unknown>;
  }
  const created: Record<string, unknown> = {};
  document.auths = created;
  return created;
}
