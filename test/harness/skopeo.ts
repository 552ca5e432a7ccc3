import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SkopeoResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface Skopeo {
  readonly home: string;
  /** The auth file skopeo login writes and the other commands read. */
  readonly authfile: string;
  run(args: readonly string[], stdin?: string): Promise<SkopeoResult>;
  /**
   * `skopeo copy` of an OCI layout's tag to `dest` (`host/repository:tag`) over plain HTTP, with
   * `user:password` credentials when given; the result, whether or not the registry took it.
   */
  push(layout: string, tag: string, dest: string, creds?: string): Promise<SkopeoResult>;
  dispose(): Promise<void>;
}

/**
 * The real skopeo with its own HOME, XDG_RUNTIME_DIR, auth file and signature policy, so no
 * user or system configuration leaks into a test.
 */
export async function createSkopeo(): Promise<Skopeo> {
  const home = await mkdtemp(join(tmpdir(), 'regauth-skopeo-'));
  const policy = join(home, 'policy.json');
  await writeFile(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  const authfile = join(home, 'auth.json');
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, XDG_RUNTIME_DIR: home };
  const run: Skopeo['run'] = (args, stdin) =>
    new Promise((resolve) => {
      const [command = '', ...rest] = args;
      const child = execFile(
        'skopeo',
        ['--policy', policy, command, ...rest],
        { env, timeout: 60_000, maxBuffer: 64 * 1024 * 1024 },
        (error, stdout, stderr) => {
          const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
          resolve({ code, stdout, stderr });
        },
      );
      child.stdin?.end(stdin ?? '');
    });
  return {
    home,
    authfile,
    run,
    push: (layout, tag, dest, creds) =>
      run([
        'copy',
        '--dest-tls-verify=false',
        ...(creds === undefined ? [] : ['--dest-creds', creds]),
        `oci:${layout}:${tag}`,
        `docker://${dest}`,
      ]),
    dispose: () => rm(home, { recursive: true, force: true }),
  };
}
