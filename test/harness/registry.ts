import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort, spawnLogged, waitFor } from './processes.js';

export type RegistryAuth =
  | { readonly token: { realm: string; service: string; issuer: string; rootcertbundle: string } }
  | { readonly htpasswd: { realm: string; path: string } };

export interface RegistryHandle {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** `127.0.0.1:<port>`, as it appears in image references. */
  readonly host: string;
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts the real CNCF registry (Debian's docker-registry, distribution 2.8) on a free loopback
 * port with a generated config and its own storage folder; `stop` removes both.
 */
export async function startRegistry(
  options: { auth?: RegistryAuth; deleteEnabled?: boolean } = {},
): Promise<RegistryHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'regauth-registry-'));
  const port = await freePort();
  const config = {
    version: 0.1,
    log: { level: 'warn', accesslog: { disabled: true } },
    storage: {
      filesystem: { rootdirectory: join(dir, 'data') },
      delete: { enabled: options.deleteEnabled ?? true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: { addr: `127.0.0.1:${port}`, secret: 'regauth-test-harness' },
    ...(options.auth ? { auth: options.auth } : {}),
  };
  const file = join(dir, 'config.yml');
  await writeFile(file, stringify(config));
  const spawned = spawnLogged('docker-registry', ['serve', file]);
  const url = `http://127.0.0.1:${port}`;
  await waitFor('docker-registry', spawned, async () => {
    const res = await fetch(`${url}/v2/`);
    await res.arrayBuffer();
    return res.status === 200 || res.status === 401;
  });
  return {
    url,
    host: `127.0.0.1:${port}`,
    output: spawned.output,
    stop: async () => {
      await spawned.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
