import { execFile, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PodmanResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface Podman {
  readonly dir: string;
  /** HOME, XDG_RUNTIME_DIR and the CONTAINERS_* files podman runs with. */
  readonly env: Readonly<Record<string, string>>;
  /** Where `podman login` writes without --authfile: $XDG_RUNTIME_DIR/containers/auth.json. */
  readonly defaultAuthFile: string;
  /** The signature policy to give pull and push (`--signature-policy`). */
  readonly policy: string;
  run(
    args: readonly string[],
    options?: { stdin?: string; env?: Record<string, string> },
  ): Promise<PodmanResult>;
  dispose(): Promise<void>;
}

/** Generous: a pull or push through a token server on a loaded 2-core machine. */
const PODMAN_TIMEOUT_MS = 90_000;

/**
 * Why podman cannot run here, or undefined when it can. Not installed: scripts/ensure-system-deps.mjs
 * installs it only as root. Installed but not root: rootless podman needs subordinate ids and user
 * namespaces the machine may not have, so it is asked (`podman info` with the test's own config).
 */
export function podmanSkipReason(): string | undefined {
  if (spawnSync('sh', ['-c', 'command -v podman'], { stdio: 'ignore' }).status !== 0) {
    return 'podman is not installed (scripts/ensure-system-deps.mjs installs it when run as root)';
  }
  if (process.getuid?.() === 0) return undefined;
  const probe = spawnSync('podman', ['--storage-driver', 'vfs', 'info'], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (probe.status === 0) return undefined;
  const why = (probe.stderr || probe.error?.message || 'no output').trim().split('\n')[0];
  return `podman does not run for this user (not root): ${why}`;
}

/**
 * The real podman, as root, with nothing of the machine's: vfs storage (no overlay mount, no
 * container is ever run) under a temporary root and runroot, its own containers.conf (no events
 * journal; its tmp, libpod and network folders inside the temporary folder; the CNI backend, since
 * netavark keeps state in /run/containers/networks whatever the config says), registries.conf,
 * signature policy, HOME and XDG_RUNTIME_DIR — so its default auth file is inside the temporary
 * folder too. (containers/image still keeps its blob-info cache in /var/lib/containers/cache, as
 * skopeo as root does.)
 */
export async function createPodman(): Promise<Podman> {
  const dir = await mkdtemp(join(tmpdir(), 'regauth-podman-'));
  const home = join(dir, 'home');
  const runtime = join(dir, 'run');
  await mkdir(home, { mode: 0o700 });
  await mkdir(runtime, { mode: 0o700 });
  const containersConf = join(dir, 'containers.conf');
  await writeFile(
    containersConf,
    [
      '[engine]',
      'events_logger = "none"',
      `tmp_dir = "${join(dir, 'libpod-tmp')}"`,
      `static_dir = "${join(dir, 'storage', 'libpod')}"`,
      `volume_path = "${join(dir, 'storage', 'volumes')}"`,
      `image_copy_tmp_dir = "${join(dir, 'copy-tmp')}"`,
      '[network]',
      'network_backend = "cni"',
      `network_config_dir = "${join(dir, 'networks')}"`,
      '',
    ].join('\n'),
  );
  await mkdir(join(dir, 'copy-tmp'));
  const registriesConf = join(dir, 'registries.conf');
  await writeFile(registriesConf, 'unqualified-search-registries = []\n');
  const storageConf = join(dir, 'storage.conf');
  await writeFile(
    storageConf,
    `[storage]\ndriver = "vfs"\nrunroot = "${join(dir, 'runroot')}"\ngraphroot = "${join(dir, 'storage')}"\n`,
  );
  const policy = join(dir, 'policy.json');
  await writeFile(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    XDG_RUNTIME_DIR: runtime,
    CONTAINERS_CONF: containersConf,
    CONTAINERS_REGISTRIES_CONF: registriesConf,
    CONTAINERS_STORAGE_CONF: storageConf,
  };
  return {
    dir,
    env,
    defaultAuthFile: join(runtime, 'containers', 'auth.json'),
    policy,
    run: (args, options = {}) =>
      new Promise((resolve) => {
        const child = execFile(
          'podman',
          ['--log-level=error', ...args],
          { env: { ...env, ...options.env }, timeout: PODMAN_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 },
          (error, stdout, stderr) => {
            const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
            resolve({ code, stdout, stderr });
          },
        );
        child.stdin?.end(options.stdin ?? '');
      }),
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}
