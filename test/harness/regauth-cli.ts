import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REGAUTH_BIN } from './token-server.js';

export interface CliResult {
  readonly code: number;
  readonly stdout: Buffer;
  readonly stderr: string;
  /** Status lines of the HTTP answers --trace printed: one per request sent. */
  readonly requests: number;
}

export interface CliHome {
  readonly dir: string;
  /** $DOCKER_CONFIG: the folder of the config.json regauth login writes. */
  readonly dockerConfig: string;
  readonly env: Record<string, string>;
  run(
    args: readonly string[],
    options?: { env?: Record<string, string>; stdin?: string },
  ): Promise<CliResult>;
  dispose(): Promise<void>;
}

/**
 * `./bin/regauth` with a home of its own (HOME, DOCKER_CONFIG, XDG_CACHE_HOME,
 * XDG_RUNTIME_DIR), so no user configuration or cached token leaks into a test.
 */
export async function createCliHome(): Promise<CliHome> {
  const dir = await mkdtemp(join(tmpdir(), 'regauth-cli-'));
  const dockerConfig = join(dir, 'docker');
  await mkdir(dockerConfig, { recursive: true });
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dir,
    DOCKER_CONFIG: dockerConfig,
    XDG_CACHE_HOME: join(dir, 'cache'),
    XDG_RUNTIME_DIR: join(dir, 'run'),
  };
  return {
    dir,
    dockerConfig,
    env,
    run: (args, options = {}) =>
      new Promise((resolve, reject) => {
        const child = spawn(REGAUTH_BIN, args, {
          env: { ...env, ...options.env },
          stdio: ['pipe', 'pipe', 'pipe'],
        });
        const out: Buffer[] = [];
        let err = '';
        child.stdout.on('data', (d: Buffer) => out.push(d));
        child.stderr.on('data', (d: Buffer) => {
          err += d.toString();
        });
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
        child.on('error', reject);
        child.on('close', (code) => {
          clearTimeout(timer);
          resolve({
            code: code ?? -1,
            stdout: Buffer.concat(out),
            stderr: err,
            requests: (err.match(/^HTTP\/1\.1 \d{3}/gm) ?? []).length,
          });
        });
        child.stdin.end(options.stdin ?? '');
      }),
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}
