import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildArtifactLayout } from './harness/artifact-layout.js';
import { type FaultProxy, startFaultProxy } from './harness/fault-proxy.js';
import {
  type BuiltImage,
  type BuiltIndex,
  buildOciIndexLayout,
  buildOciLayout,
} from './harness/oci-layout.js';
import { type CliHome, createCliHome } from './harness/regauth-cli.js';
import { type RegistryHandle, startRegistry } from './harness/registry.js';
import { startTokenStack, type TokenStack } from './harness/token-server.js';

// A TypeScript project outside src/ (test/consumer) that installs the packed tarball as a user
// would, compiles under strict settings, and does each task of the library against the real
// registry and token server. Runs on the built dist/ (npm test builds first).

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..');
const USERS = { admin: 'admin-consumer-pw-13', alice: 'alice-consumer-pw-41', bob: 'bob-consumer-pw-77' };
const sha256 = (data: Uint8Array | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

/** The README's ```ts example blocks: each a whole program, compiled and run here as it is. */
function readmeExamples(readme: string): string[] {
  return [...readme.matchAll(/^```ts example\n([\s\S]*?)^```$/gm)].map((m) => m[1] as string);
}

async function version(name: string): Promise<string> {
  const pkg = JSON.parse(await readFile(join(ROOT, 'node_modules', name, 'package.json'), 'utf8'));
  return (pkg as { version: string }).version;
}

describe('a strict TypeScript project using the packed tarball', () => {
  let work: string;
  let project: string;
  let stack: TokenStack;
  let other: RegistryHandle;
  let proxy: FaultProxy;
  let cli: CliHome;
  let host: string;
  let image: BuiltImage;
  let multi: BuiltIndex;
  let examples: string[];

  /** Runs one compiled program of the project as alice; its stdout is one JSON line. */
  const program = async (name: string, args: readonly string[], env: Record<string, string> = {}) => {
    const { stdout } = await run(process.execPath, [join(project, 'dist', `${name}.js`), ...args], {
      cwd: project,
      env: { ...cli.env, REGISTRY_USER: 'alice', REGISTRY_PASSWORD: USERS.alice, ...env },
      timeout: 30_000,
    });
    return JSON.parse(stdout) as Record<string, unknown>;
  };

  /** The seed's flow by hand (no regauth): a token for Basic credentials, then the manifest with it. */
  const served = async (repository: string, reference: string) => {
    const realm = new URL(stack.tokenServer.realm);
    realm.searchParams.set('service', stack.tokenServer.service);
    realm.searchParams.set('scope', `repository:${repository}:pull`);
    const basic = Buffer.from(`alice:${USERS.alice}`).toString('base64');
    const { token } = (await (
      await fetch(realm, { headers: { authorization: `Basic ${basic}` } })
    ).json()) as {
      token: string;
    };
    const res = await fetch(`${stack.registry.url}/v2/${repository}/manifests/${reference}`, {
      headers: { authorization: `Bearer ${token}`, accept: `${OCI_MANIFEST}, ${OCI_INDEX}` },
    });
    const bytes = new Uint8Array(await res.arrayBuffer());
    return { status: res.status, digest: sha256(bytes), bytes };
  };

  const cliPush = async (dir: string, ref: string) => {
    const res = await cli.run(['push', '--no-token-cache', dir, ref], {
      env: { REGAUTH_USERNAME: 'alice', REGAUTH_PASSWORD: USERS.alice },
    });
    if (res.code !== 0) throw new Error(res.stderr);
  };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'regauth-consumer-'));
    project = join(work, 'consumer');
    await cp(join(ROOT, 'test', 'consumer'), project, {
      recursive: true,
      filter: (src) => !/[/\\](node_modules|dist)$/.test(src),
    });
    await run('npm', ['pack', '--ignore-scripts', '--pack-destination', work], { cwd: ROOT });
    // typescript and @types/node at the checkout's versions: in npm's cache, so no network needed.
    await run(
      'npm',
      [
        'install',
        '--ignore-scripts',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        join(work, 'regauth-0.1.0.tgz'),
        `typescript@${await version('typescript')}`,
        `@types/node@${await version('@types/node')}`,
      ],
      { cwd: project },
    );
    stack = await startTokenStack({ users: USERS });
    host = stack.registry.host;
    other = await startRegistry();
    proxy = await startFaultProxy(host);
    // The README's examples, pointed at these registries (their only change).
    examples = readmeExamples(await readFile(join(ROOT, 'README.md'), 'utf8'));
    await mkdir(join(project, 'src', 'readme'));
    for (const [i, code] of examples.entries()) {
      const here = code.replaceAll('localhost:5000', host).replaceAll('localhost:5002', other.host);
      await writeFile(join(project, 'src', 'readme', `example-${i + 1}.ts`), here);
    }
    cli = await createCliHome();
    image = await buildOciLayout(join(work, 'image'), {
      tag: 'v1',
      layers: [{ 'a.txt': 'consumer layer one\n' }, { 'b.txt': 'consumer layer two\n' }],
    });
    multi = await buildOciIndexLayout(join(work, 'multi'), {
      tag: 'v1',
      platforms: ['linux/amd64', 'linux/arm64/v8'],
    });
    await cliPush(join(work, 'image'), `${host}/alice/app:v1`);
    await cliPush(join(work, 'multi'), `${host}/alice/multi:v1`);
  }, 180_000);

  afterAll(async () => {
    await proxy?.close();
    await other?.stop();
    await stack?.stop();
    await cli?.dispose();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it('compiles with tsc under strict, nodenext, exactOptionalPropertyTypes, noUncheckedIndexedAccess, skipLibCheck false', async () => {
    expect(examples.length).toBeGreaterThanOrEqual(5);
    const tsc = await run(join(project, 'node_modules', '.bin', 'tsc'), ['-p', '.'], { cwd: project }).then(
      (r) => ({ code: 0, out: r.stdout }),
      (err: { code: number; stdout: string }) => ({ code: err.code, out: err.stdout }),
    );
    expect(tsc.out).toBe('');
    expect(tsc.code).toBe(0);
    const built = await readdir(join(project, 'dist'));
    expect(built).toEqual(expect.arrayContaining(['manifest.js', 'pull.js', 'readme']));
  });

  it('reads a manifest with credentials: 401, a token for Basic credentials, then the bearer', async () => {
    const out = await program('manifest', [`${host}/alice/app:v1`]);
    expect(out.digest).toBe(image.manifestDigest);
    expect(out.digest).toBe((await served('alice/app', 'v1')).digest);
    expect(out.mediaType).toBe(OCI_MANIFEST);
    expect(out.kind).toBe('image');
    const manifest = JSON.parse(image.manifest) as {
      config: { digest: string };
      layers: { digest: string }[];
    };
    expect(out.config).toBe(manifest.config.digest);
    expect(out.layers).toEqual(manifest.layers.map((l) => l.digest));
    const exchanges = out.exchanges as { method: string; path: string; status: number }[];
    const at = (path: string, status: number) =>
      exchanges.findIndex((e) => e.path === path && e.status === status);
    const manifestPath = '/v2/alice/app/manifests/v1';
    expect(at(manifestPath, 401)).toBeGreaterThanOrEqual(0);
    expect(at('/token', 200)).toBeGreaterThan(at(manifestPath, 401));
    expect(at(manifestPath, 200)).toBeGreaterThan(at('/token', 200));
    const issued = (await stack.tokenServer.waitForLog((e) => e.account === 'alice')).filter(
      (e) => e.account === 'alice',
    );
    expect(issued.length).toBeGreaterThan(0);
  });

  it('resolves digests, per platform from an index too', async () => {
    expect((await program('digest', [`${host}/alice/app:v1`])).digest).toBe(image.manifestDigest);
    expect((await program('digest', [`${host}/alice/multi:v1`])).digest).toBe(multi.indexDigest);
    expect((await program('digest', [`${host}/alice/multi:v1`, 'linux/arm64'])).digest).toBe(
      multi.images['linux/arm64/v8']?.manifestDigest,
    );
  });

  it('reads the image config, typed', async () => {
    const out = await program('config', [`${host}/alice/app:v1`]);
    const manifest = JSON.parse(image.manifest) as { config: { digest: string } };
    expect(out.digest).toBe(manifest.config.digest);
    expect(out).toMatchObject({ os: 'linux', architecture: 'amd64' });
    expect(out.diffIds).toHaveLength(2);
  });

  it('pulls into an OCI layout and a docker archive, with progress events', async () => {
    const dir = join(work, 'pulled');
    const tar = join(work, 'pulled.tar');
    const out = await program('pull', [`${host}/alice/app:v1`, dir, tar]);
    const layout = out.layout as { digest: string; blobs: { digest: string; how: string }[] };
    expect(layout.digest).toBe(image.manifestDigest);
    expect(layout.blobs.map((b) => b.how)).toEqual(['sent', 'sent', 'sent']);
    expect(out.archive).toBe(image.manifestDigest);
    expect(out.events).toMatchObject({ 'blob-start': 3, 'blob-done': 3, manifest: 1 });
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as {
      manifests: { digest: string; annotations?: Record<string, string> }[];
    };
    expect(index.manifests).toEqual([
      expect.objectContaining({
        digest: image.manifestDigest,
        annotations: { 'org.opencontainers.image.ref.name': 'v1' },
      }),
    ]);
    for (const blob of layout.blobs) {
      expect(sha256(await readFile(join(dir, 'blobs', 'sha256', blob.digest.slice(7))))).toBe(blob.digest);
    }
    const listed = await run('tar', ['-tf', tar]);
    expect(listed.stdout.split('\n')).toContain('manifest.json');
    const repoTags = async (file: string) =>
      (JSON.parse((await run('tar', ['-xOf', file, 'manifest.json'])).stdout) as { RepoTags: string[] }[])[0]
        ?.RepoTags;
    expect(await repoTags(tar)).toEqual([`${host}/alice/app:v1`]);
    // By digest alone: docker load keeps it untagged rather than move the user's own :latest.
    const byDigest = join(work, 'pulled-by-digest.tar');
    await program('pull', [
      `${host}/alice/app@${image.manifestDigest}`,
      join(work, 'pulled-by-digest'),
      byDigest,
    ]);
    expect(await repoTags(byDigest)).toEqual([]);
  });

  it('pushes from the layout it pulled, and lists the tags', async () => {
    const out = await program('push', [join(work, 'pulled'), `${host}/alice/pushed:v2`, 'v1']);
    expect(out.digest).toBe(image.manifestDigest);
    expect((await served('alice/pushed', 'v2')).digest).toBe(image.manifestDigest);
    expect((await program('tags', [`${host}/alice/pushed`])).tags).toEqual(['v2']);
  });

  it('copies within a registry by mounting every blob, and across registries by streaming them', async () => {
    const within = await program('copy', [`${host}/alice/app:v1`, `${host}/alice/copied:v1`]);
    expect(within.digest).toBe(image.manifestDigest);
    expect((within.blobs as { how: string }[]).map((b) => b.how)).toEqual(['mounted', 'mounted', 'mounted']);
    expect((await served('alice/copied', 'v1')).digest).toBe(image.manifestDigest);

    const across = await program('copy', [`${host}/alice/app:v1`, `${other.host}/mirror/app:v1`, 'across']);
    expect(across.digest).toBe(image.manifestDigest);
    expect((across.blobs as { how: string }[]).map((b) => b.how)).toEqual(['sent', 'sent', 'sent']);
    const res = await fetch(`${other.url}/v2/mirror/app/manifests/v1`, { headers: { accept: OCI_MANIFEST } });
    expect(sha256(new Uint8Array(await res.arrayBuffer()))).toBe(image.manifestDigest);
  });

  it('retags, refuses a delete that would take other tags (reading them from the error), deletes, untags', async () => {
    const tagged = await program('tag', [`${host}/alice/app:v1`, 'v2', 'stable']);
    expect(tagged.digest).toBe(image.manifestDigest);
    expect(((await program('tags', [`${host}/alice/app`])).tags as string[]).sort()).toEqual([
      'stable',
      'v1',
      'v2',
    ]);
    expect((await served('alice/app', 'stable')).digest).toBe(image.manifestDigest);

    const refused = await program('delete', [`${host}/alice/app:v2`]);
    expect(refused).toEqual({ refused: true, digest: image.manifestDigest, otherTags: ['stable', 'v1'] });
    expect((await served('alice/app', 'v2')).status).toBe(200);

    const untagged = await program('untag', [`${host}/alice/app:stable`]);
    expect(untagged.digest).toBe(image.manifestDigest);
    expect(((await program('tags', [`${host}/alice/app`])).tags as string[]).sort()).toEqual(['v1', 'v2']);

    const deleted = await program('delete', [`${host}/alice/app:v2`, 'force']);
    expect(deleted).toEqual({ digest: image.manifestDigest, tags: ['v1', 'v2'] });
    expect((await served('alice/app', image.manifestDigest)).status).toBe(404);
  });

  it('lists referrers, all and by artifact type, and the catalog as the admin', async () => {
    await program('copy', [`${host}/alice/copied:v1`, `${host}/alice/signed:v1`]);
    const subject = {
      mediaType: OCI_MANIFEST,
      digest: image.manifestDigest,
      size: Buffer.byteLength(image.manifest),
    };
    const sig = await buildArtifactLayout(join(work, 'sig'), {
      artifactType: 'application/vnd.example.sig',
      payload: 'signature',
      subject,
    });
    const sbom = await buildArtifactLayout(join(work, 'sbom'), {
      artifactType: 'application/vnd.example.sbom',
      payload: '{"packages":[]}',
      subject,
    });
    await cliPush(join(work, 'sig'), `${host}/alice/signed@${sig.digest}`);
    await cliPush(join(work, 'sbom'), `${host}/alice/signed@${sbom.digest}`);
    expect((await program('referrers', [`${host}/alice/signed:v1`])).referrers).toEqual([
      { digest: sig.digest, artifactType: 'application/vnd.example.sig' },
      { digest: sbom.digest, artifactType: 'application/vnd.example.sbom' },
    ]);
    expect(
      (await program('referrers', [`${host}/alice/signed:v1`, 'application/vnd.example.sbom'])).referrers,
    ).toEqual([{ digest: sbom.digest, artifactType: 'application/vnd.example.sbom' }]);
    const catalog = await program('catalog', [host], {
      REGISTRY_USER: 'admin',
      REGISTRY_PASSWORD: USERS.admin,
    });
    expect(catalog.repositories).toEqual(
      expect.arrayContaining(['alice/app', 'alice/multi', 'alice/signed']),
    );
  });

  it('branches on a typed error: ERR_MANIFEST_UNKNOWN with the status and the request', async () => {
    const out = await program('error', [`${host}/alice/multi:no-such-tag`]);
    expect(out).toMatchObject({ code: 'ERR_MANIFEST_UNKNOWN', status: 404, method: 'GET' });
  });

  it('reads a blob as a verified stream, and a corrupted one errors instead of ending', async () => {
    const manifest = JSON.parse(multi.images['linux/amd64']?.manifest ?? '{}') as {
      layers: { digest: string; size: number }[];
    };
    const layer = manifest.layers[0] as { digest: string; size: number };
    const good = await program('blob', [`${host}/alice/multi`, layer.digest]);
    expect(good).toEqual({ size: layer.size, received: layer.size, sha256: layer.digest });

    proxy.inject('GET', new RegExp(`/blobs/${layer.digest}`), { kind: 'corrupt', at: 5 }, 10);
    try {
      const bad = await program('blob', [`${proxy.host}/alice/multi`, layer.digest]);
      expect(bad).toMatchObject({ error: 'ERR_DIGEST_MISMATCH', size: layer.size });
      expect(bad.sha256).toBeUndefined();
    } finally {
      proxy.clear();
    }
  });

  it('aborts a pull mid-blob: ERR_ABORTED, and no unfinished file left behind', async () => {
    /** Every file under `dir`, relative, sorted. */
    const files = async (dir: string) =>
      (await readdir(dir, { recursive: true, withFileTypes: true }))
        .filter((e) => e.isFile())
        .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
        .sort();
    await cliPush(join(work, 'image'), `${host}/alice/abort:v1`);
    // Every blob answer stops after 5 bytes: the program aborts at the first bytes to arrive.
    proxy.inject('GET', /\/blobs\//, { kind: 'stall-after', bytes: 5 }, 50);
    try {
      const fresh = join(work, 'abort-fresh');
      const out = await program('abort', [`${proxy.host}/alice/abort:v1`, fresh]);
      expect(out).toMatchObject({ error: 'ERR_ABORTED' });
      expect(out.message).toMatch(/was aborted$/);
      await expect(readdir(fresh)).rejects.toMatchObject({ code: 'ENOENT' });

      // A layout that holds another image already keeps exactly what it held.
      const layout = join(work, 'abort-existing');
      proxy.clear();
      await program('pull', [`${host}/alice/multi:v1`, layout, join(work, 'abort-existing.tar')]);
      const before = await files(layout);
      const index = await readFile(join(layout, 'index.json'), 'utf8');
      proxy.inject('GET', /\/blobs\//, { kind: 'stall-after', bytes: 5 }, 50);
      const seen = proxy.log.length;
      expect(await program('abort', [`${proxy.host}/alice/abort:v1`, layout])).toMatchObject({
        error: 'ERR_ABORTED',
      });
      expect(proxy.log.slice(seen).some((line) => line.startsWith('GET /v2/alice/abort/blobs/'))).toBe(true);
      expect(await files(layout)).toEqual(before);
      expect(await readFile(join(layout, 'index.json'), 'utf8')).toBe(index);
      for (const blob of before.filter((f) => f.startsWith('blobs/sha256/'))) {
        expect(sha256(await readFile(join(layout, blob)))).toBe(
          `sha256:${blob.slice('blobs/sha256/'.length)}`,
        );
      }
    } finally {
      proxy.clear();
    }
  });

  it("runs the README's examples, in order, as they are", async () => {
    await cliPush(join(work, 'image'), `${host}/alice/app:v1`);
    const cwd = join(work, 'readme-run');
    await mkdir(cwd);
    const outputs: string[] = [];
    for (const i of examples.keys()) {
      const { stdout } = await run(
        process.execPath,
        [join(project, 'dist', 'readme', `example-${i + 1}.js`)],
        {
          cwd,
          env: { ...cli.env, PW: USERS.alice, BOB_PW: USERS.bob },
          timeout: 30_000,
        },
      );
      outputs.push(stdout);
    }
    const all = outputs.join('');
    expect(all).toContain(`${image.manifestDigest} ${OCI_MANIFEST} 2 ${image.manifestDigest}`);
    expect(all).toContain(`ERR_MANIFEST_UNKNOWN 404 GET http://${host}/v2/alice/app/manifests/no-such-tag`);
    expect(all).toContain("[ 'mounted', 'mounted', 'mounted' ]");
    expect(all).toContain("also tagged [ 'v1.0' ]");
    expect(all).toContain(`deleted ${image.manifestDigest} with [ 'v1', 'v1.0' ]`);
    expect(all).toContain(`the pull of ${host}/alice/backup:v1 was aborted false`);
    expect(all).toContain('token requests: 1\n');
    const manifest = JSON.parse(image.manifest) as { layers: { digest: string }[] };
    for (const [i, layer] of manifest.layers.entries()) {
      expect(sha256(await readFile(join(cwd, `layer-${i}.tar.gz`)))).toBe(layer.digest);
    }
    expect((await served('alice/app-again', 'v1')).digest).toBe(image.manifestDigest);
    expect((await served('alice/backup', 'v1')).digest).toBe(image.manifestDigest);
    const mirrored = await fetch(`${other.url}/v2/bob/app/manifests/v1`, {
      headers: { accept: OCI_MANIFEST },
    });
    expect(sha256(new Uint8Array(await mirrored.arrayBuffer()))).toBe(image.manifestDigest);
    expect((await served('alice/app', image.manifestDigest)).status).toBe(404);
  });
});
