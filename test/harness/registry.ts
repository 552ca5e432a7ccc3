import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort, spawnLogged, waitFor } from './processes.js';

export type RegistryAuth =
  | { readonly token: { realm: string; service: string; issuer: string; rootcertbundle: string } }
  | { readonly htpasswd: { realm: string; path: string } };

export interface RegistryHandle {
  /** `http://127.0.0.1:<port>` (`https://` with the tls option) */
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
  options: {
    auth?: RegistryAuth;
    deleteEnabled?: boolean;
    /** Serve HTTPS with this certificate and key (PEM); `caPem` is what signed it. */
    tls?: { certPem: string; keyPem: string; caPem: string };
    /** Write an access log line per request to the output (see {@link countAccessLogRequests}). */
    accessLog?: boolean;
  } = {},
): Promise<RegistryHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'regauth-registry-'));
  const port = await freePort();
  const config = {
    version: 0.1,
    log: { level: 'warn', accesslog: { disabled: options.accessLog !== true } },
    storage: {
      filesystem: { rootdirectory: join(dir, 'data') },
      delete: { enabled: options.deleteEnabled ?? true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: {
      addr: `127.0.0.1:${port}`,
      secret: 'regauth-test-harness',
      ...(options.tls ? { tls: { certificate: join(dir, 'tls.crt'), key: join(dir, 'tls.key') } } : {}),
    },
    ...(options.auth ? { auth: options.auth } : {}),
  };
  const file = join(dir, 'config.yml');
  await writeFile(file, stringify(config));
  if (options.tls) {
    await writeFile(join(dir, 'tls.crt'), options.tls.certPem);
    await writeFile(join(dir, 'tls.key'), options.tls.keyPem);
  }
  const spawned = spawnLogged('docker-registry', ['serve', file]);
  const url = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  const ca = options.tls?.caPem;
  await waitFor('docker-registry', spawned, async () => {
    const status = ca === undefined ? await fetchStatus(`${url}/v2/`) : await httpsStatus(`${url}/v2/`, ca);
    return status === 200 || status === 401;
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

/**
 * Requests in a registry's output with `accessLog` on: distribution writes one line per request
 * in the Combined Log Format (`… "GET /v2/ HTTP/1.1" 401 …`), whichever protocol carried it.
 */
export function countAccessLogRequests(output: string): number {
  return output.match(/"[A-Z]+ \S+ HTTP\/[\d.]+" \d{3} /g)?.length ?? 0;
}

async function fetchStatus(url: string): Promise<number> {
  const res = await fetch(url);
  await res.arrayBuffer();
  return res.status;
}

/** fetch cannot be given a CA; node:https can. */
function httpsStatus(url: string, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsGet(url, { ca, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
  });
}
