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
  return {
    home,
    authfile,
    run: (args, stdin) =>
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
      }),
    dispose: () => rm(home, { recursive: true, force: true }),
  };
}
