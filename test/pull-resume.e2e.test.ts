import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_BLOB_RESUMES } from '../src/image/read-blob.js';
import { type FaultProxy, startFaultProxy } from './harness/fault-proxy.js';
import { type BuiltImage, buildOciLayout } from './harness/oci-layout.js';
import { type CliHome, createCliHome } from './harness/regauth-cli.js';
import { createSkopeo, type Skopeo } from './harness/skopeo.js';
import { openTerminal } from './harness/terminal.js';
import { REGAUTH_BIN, startTokenStack, type TokenStack } from './harness/token-server.js';

const USERS = { alice: 'alice-pw-9912' };
const ALICE = { REGAUTH_USERNAME: 'alice', REGAUTH_PASSWORD: USERS.alice };
const sha256 = (data: Uint8Array | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;
const PARTIAL_DIR = '.regauth-partial';

describe('interrupted pulls resume with Range and leave a valid layout (real registry, skopeo)', () => {
  let stack: TokenStack;
  let proxy: FaultProxy;
  let cli: CliHome;
  let skopeo: Skopeo;
  let work: string;
  let image: BuiltImage;
  const layer = randomBytes(8 * 1024 * 1024 + 4321);
  const layerHex = sha256(layer).slice(7);
  const layerPath = new RegExp(`/blobs/${sha256(layer)}`);

  beforeAll(async () => {
    stack = await startTokenStack({ users: USERS });
    proxy = await startFaultProxy(stack.registry.host);
    cli = await createCliHome();
    skopeo = await createSkopeo();
    work = await mkdtemp(join(tmpdir(), 'regauth-resume-e2e-'));
    image = await buildOciLayout(join(work, 'src'), { tag: 'v1', rawLayers: [layer] });
    const res = await cli.run(['push', join(work, 'src'), `${proxy.host}/alice/app:v1`, '--quiet'], {
      env: ALICE,
    });
    if (res.code !== 0) throw new Error(res.stderr);
  });

  afterAll(async () => {
    await proxy?.close();
    await stack?.stop();
    await cli?.dispose();
    await skopeo?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const pull = (dir: string, extra: string[] = []) =>
    cli.run(['pull', `${proxy.host}/alice/app:v1`, dir, ...extra], { env: ALICE });
  const partials = async (dir: string) =>
    (await readdir(join(dir, PARTIAL_DIR, 'sha256')).catch(() => [] as string[])).sort();
  /** The layer requests the proxy saw since `from`, as `GET path [range]` lines. */
  const layerRequests = (from: number) => proxy.log.slice(from).filter((l) => layerPath.test(l));

  /** The layout holds the whole image, verified by skopeo, and no partial file. */
  async function expectComplete(dir: string): Promise<void> {
    expect((await readFile(join(dir, 'blobs', 'sha256', layerHex))).equals(layer)).toBe(true);
    expect(existsSync(join(dir, PARTIAL_DIR))).toBe(false);
    // Only blobs under their digests: config, layers and manifest.
    const manifest = JSON.parse(image.manifest) as {
      config: { digest: string };
      layers: { digest: string }[];
    };
    expect((await readdir(join(dir, 'blobs', 'sha256'))).sort()).toEqual(
      [manifest.config, ...manifest.layers, { digest: image.manifestDigest }]
        .map((d) => d.digest.slice(7))
        .sort(),
    );
    const copied = await skopeo.run(['copy', `oci:${dir}:v1`, `dir:${join(dir, '..', `${Date.now()}.dir`)}`]);
    expect(copied.stderr).not.toMatch(/error/i);
    expect(copied.code).toBe(0);
    const raw = await skopeo.run(['inspect', '--raw', `oci:${dir}:v1`]);
    expect(sha256(raw.stdout)).toBe(image.manifestDigest);
  }

  it('keeps what a pull cut off by dropped connections received, and the next pull asks only for the rest', async () => {
    // Every try (the first GET and each of readBlob's resumes) breaks after 300 kB.
    proxy.inject('GET', layerPath, { kind: 'reset-after', bytes: 300_000 }, MAX_BLOB_RESUMES + 1);
    const dir = join(work, 'cut');
    const failed = await pull(dir);
    proxy.clear();
    expect(failed.code).toBe(1);
    const resting = join(dir, PARTIAL_DIR, 'sha256', layerHex);
    expect(failed.stderr).toMatch(
      new RegExp(
        `resumes did not finish it; the \\d+ bytes received are kept in ${resting}, and the next pull into this layout continues from there\\n`,
      ),
    );
    expect(await partials(dir)).toEqual([layerHex]);
    const kept = await readFile(resting);
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan(layer.length);
    expect(kept.equals(layer.subarray(0, kept.length))).toBe(true);
    expect(failed.stderr).toContain(`the ${kept.length} bytes received are kept`);

    // The failed pull left a whole layout that lists no image, and push says so.
    expect(JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')).manifests).toEqual([]);
    const push = await cli.run(['push', dir, `${proxy.host}/alice/never:v1`], { env: ALICE });
    expect(push.code).toBe(1);
    expect(push.stderr).toContain(`${dir} holds no image: ${join(dir, 'index.json')} lists none`);

    const from = proxy.log.length;
    const resumed = await pull(dir, ['--json']);
    expect(resumed.stderr).toBe('');
    expect(resumed.code).toBe(0);
    expect(layerRequests(from)).toEqual([`GET /v2/alice/app/blobs/${sha256(layer)} [bytes=${kept.length}-]`]);
    await expectComplete(dir);

    // A partial download of another blob beside the image: skopeo and push do not see it.
    const other = join(dir, PARTIAL_DIR, 'sha256', 'ab'.repeat(32));
    await mkdir(join(dir, PARTIAL_DIR, 'sha256'), { recursive: true });
    await writeFile(other, 'half a blob');
    const copied = await skopeo.run(['copy', `oci:${dir}:v1`, `oci:${join(work, 'cut-copy')}:v1`]);
    expect(copied.code).toBe(0);
    const pushed = await cli.run(['push', dir, `${proxy.host}/alice/again:v1`, '--json'], { env: ALICE });
    expect(pushed.code).toBe(0);
    expect(JSON.parse(pushed.stdout.toString()).digest).toBe(image.manifestDigest);
    expect(await readFile(other, 'utf8')).toBe('half a blob');
  });

  it('resumes a pull killed by SIGTERM in a terminal from the bytes that reached the disk', async () => {
    // The registry stalls after 3 MiB: the pull is surely mid-blob when it is killed.
    proxy.inject('GET', layerPath, { kind: 'stall-after', bytes: 3 * 1024 * 1024 });
    const dir = join(work, 'killed');
    const term = await openTerminal([REGAUTH_BIN, 'pull', `${proxy.host}/alice/app:v1`, dir], {
      env: { ...cli.env, ...ALICE },
    });
    let held = 0;
    try {
      const end = Date.now() + 20_000;
      while (held < 1024 * 1024) {
        if (Date.now() > end) throw new Error(`no partial download appeared:\n${await term.screen()}`);
        await new Promise((r) => setTimeout(r, 50));
        const names = await partials(dir);
        held = names.length === 1 ? (await stat(join(dir, PARTIAL_DIR, 'sha256', names[0] ?? ''))).size : 0;
      }
      process.kill(term.pid, 'SIGTERM');
      // It ends (exit throws on a hang), with the shell's status for SIGTERM.
      expect(await term.exit(15_000)).toEqual({ code: 143, signal: undefined });
    } finally {
      await term.dispose();
      proxy.clear();
    }
    const names = await partials(dir);
    expect(names).toHaveLength(1);
    expect(names[0]).toMatch(new RegExp(`^${layerHex}\\.claim-`));
    const kept = await readFile(join(dir, PARTIAL_DIR, 'sha256', names[0] ?? ''));
    expect(kept.length).toBeGreaterThanOrEqual(1024 * 1024);
    expect(kept.equals(layer.subarray(0, kept.length))).toBe(true);

    const from = proxy.log.length;
    const resumed = await pull(dir, ['--json']);
    expect(resumed.stderr).toBe('');
    expect(resumed.code).toBe(0);
    expect(layerRequests(from)).toEqual([`GET /v2/alice/app/blobs/${sha256(layer)} [bytes=${kept.length}-]`]);
    await expectComplete(dir);
  });

  it('discards a corrupt partial file and still ends with the right blob', async () => {
    proxy.inject('GET', layerPath, { kind: 'reset-after', bytes: 300_000 }, MAX_BLOB_RESUMES + 1);
    const dir = join(work, 'corrupt');
    expect((await pull(dir)).code).toBe(1);
    proxy.clear();
    const resting = join(dir, PARTIAL_DIR, 'sha256', layerHex);
    const bytes = await readFile(resting);
    bytes[1000] = (bytes[1000] ?? 0) ^ 0xff;
    await writeFile(resting, bytes);

    const from = proxy.log.length;
    const res = await pull(dir, ['--json']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    // The resumed download fails its digest check, so the blob is fetched again from byte 0.
    expect(layerRequests(from)).toEqual([
      `GET /v2/alice/app/blobs/${sha256(layer)} [bytes=${bytes.length}-]`,
      `GET /v2/alice/app/blobs/${sha256(layer)}`,
    ]);
    await expectComplete(dir);
  });

  it('lets two pulls into one layout run at once: at most one takes the partial over, both end right', async () => {
    proxy.inject('GET', layerPath, { kind: 'reset-after', bytes: 300_000 }, MAX_BLOB_RESUMES + 1);
    const dir = join(work, 'twice');
    expect((await pull(dir)).code).toBe(1);
    proxy.clear();
    const held = (await stat(join(dir, PARTIAL_DIR, 'sha256', layerHex))).size;
    const from = proxy.log.length;
    const [a, b] = await Promise.all([pull(dir, ['--json']), pull(dir, ['--json'])]);
    expect([a.code, b.code, a.stderr, b.stderr]).toEqual([0, 0, '', '']);
    const ranged = layerRequests(from).filter((l) => l.endsWith(`[bytes=${held}-]`));
    expect(ranged.length).toBeLessThanOrEqual(1);
    await expectComplete(dir);
  });

  it('removes the new folder of a pull that failed before any byte arrived', async () => {
    proxy.inject('GET', /\/blobs\//, { kind: 'status', status: 403 }, 10);
    const parent = join(work, 'fresh');
    const res = await pull(join(parent, 'layout'));
    proxy.clear();
    expect(res.code).toBe(1);
    expect(existsSync(parent)).toBe(false);
  });
});
