import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import bcrypt from 'bcrypt';
import { REGAUTH_BIN, startTokenServer, type TokenServerHandle } from '../test/harness/token-server.js';

const run = promisify(execFile);

/** What every replica of one deployment shares: the signing key and the users. */
export interface ReplicaFiles {
  readonly keyFile: string;
  readonly certFile: string;
  readonly htpasswdFile: string;
  readonly service: string;
  readonly issuer: string;
}

/**
 * Writes a deployment's files into `dir`: a key made by `regauth keygen` and an htpasswd file
 * hashed at bcrypt `cost`, as `htpasswd -B -C <cost>` would write it.
 */
export async function writeReplicaFiles(
  dir: string,
  users: Readonly<Record<string, string>>,
  cost: number,
): Promise<ReplicaFiles> {
  const keyFile = join(dir, 'signing-key.pem');
  const certFile = join(dir, 'signing-cert.pem');
  const htpasswdFile = join(dir, 'users.htpasswd');
  await run(REGAUTH_BIN, ['keygen', '--key', keyFile, '--cert', certFile, '--algorithm', 'ES256']);
  const lines: string[] = [];
  for (const [user, password] of Object.entries(users)) {
    lines.push(`${user}:${(await bcrypt.hash(password, cost)).replace(/^\$2b\$/, '$2y$')}\n`);
  }
  await writeFile(htpasswdFile, lines.join(''));
  return { keyFile, certFile, htpasswdFile, service: 'bench-registry', issuer: 'bench-issuer' };
}

export interface ReplicaOptions {
  /** `memory` or a `redis://` URL. */
  readonly store: string;
  /** `users.cache_seconds`: 0 makes every login a bcrypt check. */
  readonly cacheSeconds: number;
  /** `token.reuse_seconds`: 0 makes every answer a new signature. */
  readonly reuseSeconds: number;
  /** Serves `/metrics` on this loopback port (no bearer token: only the bench reads it). */
  readonly metricsPort?: number;
}

/**
 * One `regauth serve` of the deployment, on a free loopback port. Every client of the benchmark
 * comes from 127.0.0.1 (through the balancer), so the per-address bounds on password checks are
 * raised to the connection count: they exist to stop one stranger, not to shape this load.
 */
export function startReplica(files: ReplicaFiles, options: ReplicaOptions): Promise<TokenServerHandle> {
  return startTokenServer({
    replicaOf: files,
    service: files.service,
    issuer: files.issuer,
    acl: [{ match: { account: '/.+/' }, actions: ['pull'] }],
    extra: {
      token: {
        issuer: files.issuer,
        service: files.service,
        expiration: 300,
        reuse_seconds: options.reuseSeconds,
        key: files.keyFile,
        certificate: files.certFile,
      },
      users: { htpasswd: files.htpasswdFile, cache_seconds: options.cacheSeconds },
      limits: { password_queue: 64, password_checks_per_address: 64 },
      store: options.store,
      ...(options.metricsPort === undefined
        ? {}
        : { metrics: { enabled: true, listen: `127.0.0.1:${options.metricsPort}` } }),
    },
  });
}
