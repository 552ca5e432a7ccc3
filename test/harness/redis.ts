import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, type Spawned, spawnLogged, waitFor } from './processes.js';
import { makeLoopbackTls } from './tls.js';

/** Debian puts redis-server in /usr/bin; fall back to PATH elsewhere. */
const REDIS_SERVER = existsSync('/usr/bin/redis-server') ? '/usr/bin/redis-server' : 'redis-server';
/** How long redis-server gets to come up; a loaded 2-core machine is slow. */
const REDIS_START_MS = 20_000;

export interface RedisHandle {
  /** `redis://127.0.0.1:<port>/0` (`rediss://` with TLS), without the password. */
  readonly url: string;
  /** The file of the CA that signed the server's certificate, when started with TLS. */
  readonly caFile?: string;
  readonly port: number;
  /** The `requirepass` password when started with one. */
  readonly password?: string;
  /** A folder that `stop` removes, for files a test writes (password files, configs). */
  readonly dir: string;
  output(): string;
  /** Whether redis-server runs now. */
  running(): boolean;
  /** Kills redis-server at once (SIGKILL): a crash, not a shutdown. Its data is gone. */
  kill(): Promise<void>;
  /** Stops redis-server without closing its sockets (SIGSTOP): a Redis that no longer answers. */
  pause(): void;
  /** Lets a paused redis-server go on (SIGCONT). */
  resume(): void;
  /** Starts redis-server again on the same port, empty. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts Debian's redis-server on a free loopback port with a generated config: no persistence
 * (no RDB snapshots, no AOF), `bind 127.0.0.1`, `protected-mode yes`, and with
 * `requirePassword` a random `requirepass`. `kill` and `restart` let a test take it away and
 * bring it back on the same port.
 */
export async function startRedis(
  options: { requirePassword?: boolean; tls?: boolean } = {},
): Promise<RedisHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'regauth-redis-'));
  const port = await freePort();
  const password = options.requirePassword ? randomBytes(12).toString('hex') : undefined;
  const tlsLines: string[] = [];
  let caFile: string | undefined;
  if (options.tls) {
    const material = await makeLoopbackTls();
    caFile = join(dir, 'ca.pem');
    await writeFile(caFile, material.caPem);
    await writeFile(join(dir, 'server.pem'), material.certPem);
    await writeFile(join(dir, 'server.key'), material.keyPem, { mode: 0o600 });
    tlsLines.push(
      `tls-port ${port}`,
      `tls-cert-file ${join(dir, 'server.pem')}`,
      `tls-key-file ${join(dir, 'server.key')}`,
      `tls-ca-cert-file ${caFile}`,
      'tls-auth-clients no',
    );
  }
  const conf = [
    `port ${options.tls ? 0 : port}`,
    ...tlsLines,
    'bind 127.0.0.1',
    'protected-mode yes',
    'save ""',
    'appendonly no',
    `dir ${dir}`,
    'daemonize no',
    'loglevel warning',
    'logfile ""',
    ...(password === undefined ? [] : [`requirepass ${password}`]),
    '',
  ].join('\n');
  const confFile = join(dir, 'redis.conf');
  await writeFile(confFile, conf);
  await chmod(confFile, 0o600);

  let spawned: Spawned | undefined;
  const start = async (): Promise<void> => {
    const current = spawnLogged(REDIS_SERVER, [confFile]);
    spawned = current;
    await waitFor('redis-server', current, () => portOpen(port), REDIS_START_MS);
  };
  try {
    await start();
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const running = () =>
    spawned !== undefined && spawned.child.exitCode === null && spawned.child.signalCode === null;
  const kill = async (): Promise<void> => {
    const current = spawned;
    if (current === undefined || !running()) return;
    const exited = new Promise<void>((resolve) => current.child.once('exit', () => resolve()));
    current.child.kill('SIGKILL');
    await exited;
  };
  let earlier = '';
  return {
    url: `${options.tls ? 'rediss' : 'redis'}://127.0.0.1:${port}/0`,
    port,
    ...(caFile === undefined ? {} : { caFile }),
    ...(password === undefined ? {} : { password }),
    dir,
    output: () => earlier + (spawned?.output() ?? ''),
    running,
    kill,
    pause: () => {
      spawned?.child.kill('SIGSTOP');
    },
    resume: () => {
      spawned?.child.kill('SIGCONT');
    },
    restart: async () => {
      await kill();
      earlier += spawned?.output() ?? '';
      await start();
    },
    stop: async () => {
      // A paused process would not see SIGTERM until it went on.
      spawned?.child.kill('SIGCONT');
      await spawned?.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
