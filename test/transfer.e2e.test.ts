import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryClients, staticCredentials } from '../src/index.js';
import { type FaultProxy, startFaultProxy } from './harness/fault-proxy.js';
import {
  type BuiltImage,
  type BuiltIndex,
  buildOciIndexLayout,
  buildOciLayout,
} from './harness/oci-layout.js';
import { type CliHome, createCliHome } from './harness/regauth-cli.js';
import { type RegistryHandle, startRegistry } from './harness/registry.js';
import { createSkopeo, type Skopeo } from './harness/skopeo.js';
import { startTokenStack, type TokenStack } from './harness/token-server.js';

const USERS = { admin: 'admin-pw-5531', alice: 'alice-pw-9912', bob: 'bob-pw-3307' };
const ALICE = { REGAUTH_USERNAME: 'alice', REGAUTH_PASSWORD: USERS.alice };
const sha256 = (data: Uint8Array | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

interface Summary {
  digest: string;
  blobs: { digest: string; size: number; how: string }[];
  sent: number;
  skipped: number;
  mounted: number;
}

describe('moving images with the real registry and skopeo', () => {
  let stack: TokenStack;
  let open: RegistryHandle;
  let skopeo: Skopeo;
  let cli: CliHome;
  let work: string;
  let host: string;
  let big: BuiltImage;
  let multi: BuiltIndex;
  const bigLayer = randomBytes(20 * 1024 * 1024 + 12345);

  const json = (stdout: Buffer) => JSON.parse(stdout.toString()) as Summary;
  const skopeoDigest = async (ref: string, creds?: string) => {
    const raw = await skopeo.run([
      'inspect',
      '--raw',
      '--tls-verify=false',
      ...(creds ? ['--creds', creds] : []),
      `docker://${ref}`,
    ]);
    if (raw.code !== 0) throw new Error(raw.stderr);
    return sha256(raw.stdout);
  };

  beforeAll(async () => {
    stack = await startTokenStack({ users: USERS });
    host = stack.registry.host;
    open = await startRegistry();
    skopeo = await createSkopeo();
    cli = await createCliHome();
    work = await mkdtemp(join(tmpdir(), 'regauth-transfer-e2e-'));
    big = await buildOciLayout(join(work, 'big'), { tag: 'v1', rawLayers: [bigLayer] });
    multi = await buildOciIndexLayout(join(work, 'multi'), {
      tag: 'v1',
      platforms: ['linux/amd64', 'linux/arm64/v8'],
    });
    const push = await skopeo.run([
      'copy',
      '--all',
      '--dest-tls-verify=false',
      '--dest-creds',
      `alice:${USERS.alice}`,
      `oci:${join(work, 'multi')}:v1`,
      `docker://${host}/alice/multi:v1`,
    ]);
    if (push.code !== 0) throw new Error(push.stderr);
  });

  afterAll(async () => {
    await stack?.stop();
    await open?.stop();
    await skopeo?.dispose();
    await cli?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('pushes a layout in chunks that skopeo reads back with the same digest, and skips what is there', async () => {
    const first = await cli.run(['push', join(work, 'big'), `${host}/alice/big:v1`, '--json'], {
      env: ALICE,
    });
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const summary = json(first.stdout);
    expect(summary.digest).toBe(big.manifestDigest);
    // config, the small default layer and the 20 MiB random one (sent in 8 MiB chunks)
    expect(summary.sent).toBe(3);
    expect(await skopeoDigest(`${host}/alice/big:v1`, `alice:${USERS.alice}`)).toBe(big.manifestDigest);

    const again = json(
      (await cli.run(['push', join(work, 'big'), `${host}/alice/big:v2`, '--json'], { env: ALICE })).stdout,
    );
    expect(again.skipped).toBe(3);
    expect(again.sent).toBe(0);
  });

  it('pulls what skopeo pushed into a layout that skopeo copies back with the same digest', async () => {
    const dir = join(work, 'pulled');
    const res = await cli.run(['pull', `${host}/alice/big:v1`, dir, '--json'], { env: ALICE });
    expect(res.code).toBe(0);
    expect(json(res.stdout).digest).toBe(big.manifestDigest);
    const layer = await readFile(join(dir, 'blobs', 'sha256', sha256(bigLayer).slice(7)));
    expect(layer.equals(bigLayer)).toBe(true);
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
    expect(index.manifests[0].annotations['org.opencontainers.image.ref.name']).toBe('v1');

    const back = await skopeo.run([
      'copy',
      '--preserve-digests',
      '--dest-tls-verify=false',
      '--dest-creds',
      `alice:${USERS.alice}`,
      `oci:${dir}:v1`,
      `docker://${host}/alice/roundtrip:v1`,
    ]);
    expect(back.code).toBe(0);
    expect(await skopeoDigest(`${host}/alice/roundtrip:v1`, `alice:${USERS.alice}`)).toBe(big.manifestDigest);

    const again = json(
      (await cli.run(['pull', `${host}/alice/big:v1`, dir, '--json'], { env: ALICE })).stdout,
    );
    expect(again.skipped).toBe(3);
  });

  it('copies a multi-platform index within one registry by mounting every blob, keeping every digest', async () => {
    const res = await cli.run(
      ['copy', `${host}/alice/multi:v1`, `${host}/alice/multi-copy:v1`, '--json', '--trace'],
      { env: ALICE },
    );
    expect(res.code).toBe(0);
    const summary = json(res.stdout);
    expect(summary.digest).toBe(multi.indexDigest);
    expect(summary.mounted).toBe(4);
    expect(summary.sent).toBe(0);
    // No layer bytes went out: no PATCH, and no blob PUT with a body.
    expect(res.stderr).not.toMatch(/^PATCH /m);
    expect(await skopeoDigest(`${host}/alice/multi-copy:v1`, `alice:${USERS.alice}`)).toBe(multi.indexDigest);
    for (const image of Object.values(multi.images)) {
      expect(
        await skopeoDigest(`${host}/alice/multi-copy@${image.manifestDigest}`, `alice:${USERS.alice}`),
      ).toBe(image.manifestDigest);
    }
  });

  it('copies between two registries, and one platform with --platform', async () => {
    const res = await cli.run(['copy', `${host}/alice/multi:v1`, `${open.host}/mirror/multi:v1`, '--json'], {
      env: ALICE,
    });
    expect(res.stderr).toBe('');
    expect(json(res.stdout).sent).toBe(4);
    expect(await skopeoDigest(`${open.host}/mirror/multi:v1`)).toBe(multi.indexDigest);

    const arm = await cli.run(
      ['copy', `${host}/alice/multi:v1`, `${open.host}/mirror/arm:v1`, '--platform', 'linux/arm64', '--json'],
      {
        env: ALICE,
      },
    );
    expect(json(arm.stdout).digest).toBe(multi.images['linux/arm64/v8']?.manifestDigest);
    expect(await skopeoDigest(`${open.host}/mirror/arm:v1`)).toBe(
      multi.images['linux/arm64/v8']?.manifestDigest,
    );
  });

  it('pulls the whole index with --all-platforms', async () => {
    const dir = join(work, 'all');
    const res = await cli.run(
      [
        'pull',
        `${host}/alice/multi:v1`,
        dir,
        '--all-platforms',
        '--quiet',
        '--trace',
        '--no-token-cache',
        '--jobs',
        '4',
      ],
      { env: ALICE },
    );
    expect(res.code).toBe(0);
    // Seven blobs and manifests, four in flight at once: one token request for all of them.
    expect(res.stderr.match(/^GET \/token\?/gm)).toHaveLength(1);
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
    expect(index.manifests[0].digest).toBe(multi.indexDigest);
    const blobs = await readdir(join(dir, 'blobs', 'sha256'));
    for (const image of Object.values(multi.images)) expect(blobs).toContain(image.manifestDigest.slice(7));
    expect(blobs).toHaveLength(1 + 2 + 4);
  });

  it('writes a docker-archive that skopeo reads', async () => {
    const tar = join(work, 'image.tar');
    const res = await cli.run(
      [
        'pull',
        `${host}/alice/multi:v1`,
        '--platform',
        'linux/arm64',
        '--format',
        'docker-archive',
        '--output',
        tar,
      ],
      {
        env: ALICE,
      },
    );
    expect(res.code).toBe(0);
    const config = await skopeo.run(['inspect', '--config', '--raw', `docker-archive:${tar}`]);
    expect(config.code).toBe(0);
    expect(JSON.parse(config.stdout)).toEqual(JSON.parse(multi.images['linux/arm64/v8']?.config ?? ''));
  });

  it('names the tag pulled in a docker-archive, and none for a pull by digest alone', async () => {
    const repoTags = async (ref: string, name: string) => {
      const tar = join(work, name);
      const res = await cli.run(['pull', ref, '--format', 'docker-archive', '--output', tar], { env: ALICE });
      expect(res.code).toBe(0);
      const listed = await skopeo.run(['inspect', '--raw', `docker-archive:${tar}`]);
      expect(listed.code).toBe(0);
      const manifest = await new Promise<string>((resolve, reject) =>
        execFile('tar', ['-xOf', tar, 'manifest.json'], (err, out) => (err ? reject(err) : resolve(out))),
      );
      return (JSON.parse(manifest) as { RepoTags: string[] }[])[0]?.RepoTags;
    };
    const digest = multi.images['linux/arm64/v8']?.manifestDigest ?? '';
    expect(await repoTags(`${host}/alice/multi:v1`, 'tagged.tar')).toEqual([`${host}/alice/multi:v1`]);
    // docker load would otherwise move the user's own :latest to this image.
    expect(await repoTags(`${host}/alice/multi@${digest}`, 'by-digest.tar')).toEqual([]);
  });

  it('streams one blob to stdout, verified', async () => {
    const res = await cli.run(['blob', `${host}/alice/big@${sha256(bigLayer)}`], { env: ALICE });
    expect(res.code).toBe(0);
    expect(res.stdout.equals(bigLayer)).toBe(true);
  });

  it('lists all of 250 tags from the real registry', async () => {
    const clients = createRegistryClients({
      credentials: staticCredentials({ username: 'alice', password: USERS.alice }),
    });
    const registry = clients.forRegistry(host);
    const manifest = Buffer.from(big.manifest);
    // The manifest's blobs must be in the repository: mount them with a copy first.
    expect(
      (await cli.run(['copy', `${host}/alice/big:v1`, `${host}/alice/paged:v1`, '--quiet'], { env: ALICE }))
        .code,
    ).toBe(0);
    const tags = Array.from({ length: 250 }, (_, i) => `t${String(i).padStart(3, '0')}`);
    for (let i = 0; i < tags.length; i += 25) {
      await Promise.all(
        tags
          .slice(i, i + 25)
          .map((t) =>
            registry.putManifest('alice/paged', t, manifest, 'application/vnd.oci.image.manifest.v1+json'),
          ),
      );
    }
    const listed = await registry.listTags('alice/paged', { pageSize: 100 });
    // distribution 2.8 ignores `n` for tags and answers in storage order: every tag, once.
    // (Link paging across pages is covered against a paging server in registry-client.test.ts.)
    expect(listed).toHaveLength(251);
    expect([...listed].sort()).toEqual([...tags, 'v1']);
  });

  it('deletes by tag (resolved to its digest) and reports a registry that forbids deleting', async () => {
    const tagged = await cli.run(['copy', `${host}/alice/big:v1`, `${host}/alice/todelete:v1`, '--quiet'], {
      env: ALICE,
    });
    expect(tagged.code).toBe(0);
    const del = await cli.run(['delete', `${host}/alice/todelete:v1`], { env: ALICE });
    expect(del.stdout.toString()).toBe(
      `Untagged: ${host}/alice/todelete:v1\nDeleted: ${host}/alice/todelete@${big.manifestDigest}\n`,
    );
    const gone = await cli.run(['manifest', `${host}/alice/todelete@${big.manifestDigest}`], { env: ALICE });
    expect(gone.stderr).toMatch(/MANIFEST_UNKNOWN/);

    const locked = await startRegistry({ deleteEnabled: false });
    try {
      await cli.run(['copy', `${host}/alice/big:v1`, `${locked.host}/x/y:v1`, '--quiet'], { env: ALICE });
      const refused = await cli.run(['delete', `${locked.host}/x/y:v1`]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/does not allow deleting manifests \(405\); .*storage\.delete\.enabled/);
    } finally {
      await locked.stop();
    }
  });

  it('lists referrers through the tag-schema fallback, filtered by artifact type', async () => {
    const clients = createRegistryClients({
      credentials: staticCredentials({ username: 'alice', password: USERS.alice }),
    });
    const registry = clients.forRegistry(host);
    const subject = {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: big.manifestDigest,
      size: Buffer.byteLength(big.manifest),
    };
    // A signature-like artifact: the empty config, no layers, `subject` pointing at the image.
    const empty = Buffer.from('{}');
    const { uploadBlob } = await import('../src/image/upload-blob.js');
    await uploadBlob(registry, 'alice/big', { digest: sha256(empty), size: 2 }, async function* () {
      yield empty;
    });
    const artifact = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType: 'application/vnd.example.sig',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(empty), size: 2 },
        layers: [{ mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(empty), size: 2 }],
        subject,
      }),
    );
    await registry.putManifest(
      'alice/big',
      sha256(artifact),
      artifact,
      'application/vnd.oci.image.manifest.v1+json',
    );
    const referrer = {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: sha256(artifact),
      size: artifact.length,
      artifactType: 'application/vnd.example.sig',
    };
    // distribution 2.8 has no referrers API: clients keep the index under the sha256-<hex> tag.
    const fallback = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [referrer],
      }),
    );
    await registry.putManifest(
      'alice/big',
      `sha256-${big.manifestDigest.slice(7)}`,
      fallback,
      'application/vnd.oci.image.index.v1+json',
    );
    const res = await cli.run(['referrers', `${host}/alice/big:v1`], { env: ALICE });
    expect(JSON.parse(res.stdout.toString()).manifests).toEqual([referrer]);
    const filtered = await cli.run(
      ['referrers', `${host}/alice/big:v1`, '--artifact-type', 'application/other'],
      { env: ALICE },
    );
    expect(JSON.parse(filtered.stdout.toString()).manifests).toEqual([]);
  });

  it('stops a copy whose source manifest names a blob the source lacks, and pushes no manifest', async () => {
    const dir = join(work, 'holey');
    const image = await buildOciLayout(dir, { tag: 'v1', layers: [{ 'h.txt': 'hole\n' }] });
    expect((await cli.run(['push', dir, `${host}/alice/holey:v1`, '--quiet'], { env: ALICE })).code).toBe(0);
    const layer = (JSON.parse(image.manifest) as { layers: { digest: string }[] }).layers[0]?.digest ?? '';
    const token = (
      await cli.run(['token', host, '--scope', 'repository:alice/holey:delete', '--no-token-cache'], {
        env: ALICE,
      })
    ).stdout
      .toString()
      .trim();
    const removed = await fetch(`${stack.registry.url}/v2/alice/holey/blobs/${layer}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(removed.status).toBe(202);
    const res = await cli.run(['copy', `${host}/alice/holey:v1`, `${open.host}/mirror/holey:v1`], {
      env: ALICE,
    });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(new RegExp(`blob .*alice/holey@${layer}: 404 BLOB_UNKNOWN`));
    expect((await cli.run(['manifest', `${open.host}/mirror/holey:v1`])).stderr).toMatch(/404/);
  });

  it('refuses a push without the right, naming the repository and the action', async () => {
    const res = await cli.run(['push', join(work, 'big'), `${host}/alice/bob-was-here:v1`], {
      env: { REGAUTH_USERNAME: 'bob', REGAUTH_PASSWORD: USERS.bob },
    });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/alice\/bob-was-here/);
    expect(res.stderr).toMatch(/^regauth: error: bob may not push to .*\/alice\/bob-was-here \(/m);
  });

  it('names a missing layout blob and pushes nothing', async () => {
    const dir = join(work, 'broken');
    const image = await buildOciLayout(dir, { tag: 'v1', layers: [{ 'a.txt': 'a\n' }] });
    const manifest = JSON.parse(image.manifest) as { layers: { digest: string }[] };
    const layerFile = join(dir, 'blobs', 'sha256', manifest.layers[0]?.digest.slice(7) ?? '');
    await rm(layerFile);
    const res = await cli.run(['push', dir, `${host}/alice/broken:v1`], { env: ALICE });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`is missing from the layout: ${layerFile}; nothing was pushed`);
    expect((await cli.run(['manifest', `${host}/alice/broken:v1`], { env: ALICE })).stderr).toMatch(
      /404|NAME_UNKNOWN|MANIFEST_UNKNOWN/,
    );

    await writeFile(
      layerFile,
      'b\n'.padEnd((await import('node:fs')).statSync(join(dir, 'index.json')).size > 0 ? 0 : 0),
    );
  });

  it('refuses a corrupt layout blob and abandons the upload', async () => {
    const dir = join(work, 'corrupt');
    const image = await buildOciLayout(dir, { tag: 'v1', layers: [{ 'c.txt': 'c\n' }] });
    const manifest = JSON.parse(image.manifest) as { layers: { digest: string; size: number }[] };
    const layer = manifest.layers[0];
    const file = join(dir, 'blobs', 'sha256', layer?.digest.slice(7) ?? '');
    const bytes = await readFile(file);
    bytes[10] = (bytes[10] ?? 0) ^ 0xff;
    await writeFile(file, bytes);
    const res = await cli.run(['push', dir, `${host}/alice/corrupt:v1`], { env: ALICE });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(file);
    expect(res.stderr).toMatch(/the upload was abandoned/);
    expect((await cli.run(['manifest', `${host}/alice/corrupt:v1`], { env: ALICE })).code).toBe(1);
  });
});

describe('moving images through faults (a loopback proxy the test controls)', () => {
  let stack: TokenStack;
  let proxy: FaultProxy;
  let cli: CliHome;
  let work: string;
  const layer = randomBytes(6 * 1024 * 1024);
  let image: BuiltImage;

  beforeAll(async () => {
    stack = await startTokenStack({ users: USERS });
    proxy = await startFaultProxy(stack.registry.host);
    cli = await createCliHome();
    work = await mkdtemp(join(tmpdir(), 'regauth-fault-e2e-'));
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
    if (work) await rm(work, { recursive: true, force: true });
  });

  const layerPath = new RegExp(`/blobs/${sha256(layer)}`);
  const blobFiles = async (dir: string) => readdir(join(dir, 'blobs', 'sha256')).catch(() => [] as string[]);

  it('resumes a blob download after a connection reset, with a Range request', async () => {
    proxy.inject('GET', layerPath, { kind: 'reset-after', bytes: 1_000_000 });
    const dir = join(work, 'resumed');
    const res = await cli.run(['pull', `${proxy.host}/alice/app:v1`, dir, '--json'], { env: ALICE });
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(proxy.log.some((l) => layerPath.test(l) && /\[bytes=\d+-\]/.test(l))).toBe(true);
    const pulled = await readFile(join(dir, 'blobs', 'sha256', sha256(layer).slice(7)));
    expect(pulled.equals(layer)).toBe(true);
  });

  it('retries 5xx bursts and waits out a 429 Retry-After', async () => {
    proxy.inject('GET', /\/manifests\//, { kind: 'status', status: 503 }, 2);
    proxy.inject('GET', layerPath, { kind: 'status', status: 429, retryAfter: 1 });
    const started = Date.now();
    const dir = join(work, 'retried');
    const res = await cli.run(['pull', `${proxy.host}/alice/app:v1`, dir, '--json'], { env: ALICE });
    expect(res.code).toBe(0);
    expect(json(res.stdout).digest).toBe(image.manifestDigest);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
  });

  it('gives a clear error and leaves no file among the blobs when resets never stop', async () => {
    proxy.inject('GET', layerPath, { kind: 'reset-after', bytes: 100_000 }, 20);
    const dir = join(work, 'failed');
    const res = await cli.run(['pull', `${proxy.host}/alice/app:v1`, dir], { env: ALICE });
    expect(res.code).toBe(1);
    // What arrived is kept outside blobs/ for the next pull (pull-resume.e2e.test.ts).
    expect(res.stderr).toMatch(
      /^regauth: error: blob sha256:[0-9a-f]{64} from .*resumes did not finish it; the \d+ bytes received are kept in .*\.regauth-partial\/sha256\/[0-9a-f]{64}, and the next pull into this layout continues from there$/m,
    );
    const files = await blobFiles(dir);
    expect(files.filter((f) => f.includes(sha256(layer).slice(7)))).toEqual([]);
    expect(files.some((f) => f.endsWith('.partial'))).toBe(false);
    proxy.clear();
  });

  it('refuses corrupted bytes with a digest mismatch and keeps nothing', async () => {
    proxy.inject('GET', layerPath, { kind: 'corrupt', at: 4242 }, 10);
    const dir = join(work, 'corrupted');
    const res = await cli.run(['pull', `${proxy.host}/alice/app:v1`, dir], { env: ALICE });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/hash to sha256:[0-9a-f]{64}; nothing was kept/);
    expect((await blobFiles(dir)).filter((f) => f.includes(sha256(layer).slice(7)))).toEqual([]);
    proxy.clear();
  });

  function json(stdout: Buffer): Summary {
    return JSON.parse(stdout.toString()) as Summary;
  }
});
