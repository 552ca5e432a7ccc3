import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildArtifactLayout } from './harness/artifact-layout.js';
import { type BuiltImage, buildOciLayout } from './harness/oci-layout.js';
import { type CliHome, createCliHome } from './harness/regauth-cli.js';
import { startRegistry } from './harness/registry.js';
import { startTokenStack, type TokenStack } from './harness/token-server.js';

const USERS = { alice: 'alice-pw-6147' };
const ALICE = { REGAUTH_USERNAME: 'alice', REGAUTH_PASSWORD: USERS.alice };

/** Tagging, untagging and deleting against the real registry (distribution 2.8) and token server. */
describe('tags and deletes with the real registry', () => {
  let stack: TokenStack;
  let cli: CliHome;
  let work: string;
  let host: string;
  let one: BuiltImage;
  let two: BuiltImage;

  const run = (args: readonly string[]) => cli.run(args, { env: ALICE });
  const push = async (layout: string, ref: string) => {
    const res = await run(['push', '--quiet', layout, ref]);
    if (res.code !== 0) throw new Error(`push ${ref} failed: ${res.stderr}`);
  };
  const tagsOf = async (repo: string) => {
    const res = await run(['tags', `${host}/${repo}`]);
    if (res.code !== 0) return [];
    return res.stdout.toString().split('\n').filter(Boolean).sort();
  };
  const lines = (out: Buffer | string) => out.toString().split('\n').filter(Boolean);

  beforeAll(async () => {
    stack = await startTokenStack({ users: USERS });
    host = stack.registry.host;
    cli = await createCliHome();
    work = await mkdtemp(join(tmpdir(), 'regauth-tags-e2e-'));
    one = await buildOciLayout(join(work, 'one'), { tag: 'v1', layers: [{ 'one.txt': 'image one\n' }] });
    two = await buildOciLayout(join(work, 'two'), { tag: 'v1', layers: [{ 'two.txt': 'image two\n' }] });
  });

  afterAll(async () => {
    await stack?.stop();
    await cli?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('refuses to delete a tag whose image other tags share, naming them, and deletes all with --force', async () => {
    for (const tag of ['v1', 'v2', 'latest']) await push(join(work, 'one'), `${host}/alice/del:${tag}`);
    await push(join(work, 'two'), `${host}/alice/del:other`);

    const refused = await run(['delete', `${host}/alice/del:v1`]);
    expect(refused.code).toBe(1);
    expect(refused.stdout.toString()).toBe('');
    expect(refused.stderr).toContain(`${host}/alice/del:v1 is ${one.manifestDigest}`);
    expect(refused.stderr).toMatch(/also tagged (latest, v2|v2, latest);/);
    expect(refused.stderr).toContain(`regauth untag ${host}/alice/del:v1`);
    expect(refused.stderr).toContain('--force');
    expect(refused.stderr).not.toContain('    at ');
    // Nothing went: every tag still resolves.
    expect(await tagsOf('alice/del')).toEqual(['latest', 'other', 'v1', 'v2']);

    const forced = await run(['delete', '--force', `${host}/alice/del:v1`]);
    expect(forced.stderr).toBe('');
    expect(forced.code).toBe(0);
    expect(lines(forced.stdout).sort()).toEqual([
      `Deleted: ${host}/alice/del@${one.manifestDigest}`,
      `Untagged: ${host}/alice/del:latest`,
      `Untagged: ${host}/alice/del:v1`,
      `Untagged: ${host}/alice/del:v2`,
    ]);
    expect(lines(forced.stdout).at(-1)).toBe(`Deleted: ${host}/alice/del@${one.manifestDigest}`);
    expect(await tagsOf('alice/del')).toEqual(['other']);

    // A tag alone on its image needs no --force.
    const alone = await run(['delete', `${host}/alice/del:other`]);
    expect(alone.code).toBe(0);
    expect(lines(alone.stdout)).toEqual([
      `Untagged: ${host}/alice/del:other`,
      `Deleted: ${host}/alice/del@${two.manifestDigest}`,
    ]);
  });

  it('deletes by digest and lists every tag that went with the image', async () => {
    for (const tag of ['a', 'b']) await push(join(work, 'one'), `${host}/alice/bydigest:${tag}`);
    await push(join(work, 'two'), `${host}/alice/bydigest:keep`);
    const res = await run(['delete', `${host}/alice/bydigest@${one.manifestDigest}`]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(lines(res.stdout)).toEqual([
      `Untagged: ${host}/alice/bydigest:a`,
      `Untagged: ${host}/alice/bydigest:b`,
      `Deleted: ${host}/alice/bydigest@${one.manifestDigest}`,
    ]);
    expect(await tagsOf('alice/bydigest')).toEqual(['keep']);
  });

  it('tags an image again with the exact manifest bytes, and refuses bad tags as usage errors', async () => {
    await push(join(work, 'one'), `${host}/alice/retag:v1`);
    const res = await run(['tag', `${host}/alice/retag:v1`, 'v1.0', `${host}/alice/retag:stable`, 'latest']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(lines(res.stdout)).toEqual([
      `${host}/alice/retag:v1.0@${one.manifestDigest}`,
      `${host}/alice/retag:stable@${one.manifestDigest}`,
      `${host}/alice/retag:latest@${one.manifestDigest}`,
    ]);
    expect(await tagsOf('alice/retag')).toEqual(['latest', 'stable', 'v1', 'v1.0']);
    // Byte for byte: the new tag serves the manifest the layout holds.
    const served = await run(['manifest', `${host}/alice/retag:stable`]);
    expect(served.stdout.toString()).toBe(one.manifest);
    // From a digest too.
    const byDigest = await run(['tag', `${host}/alice/retag@${one.manifestDigest}`, 'pinned']);
    expect(lines(byDigest.stdout)).toEqual([`${host}/alice/retag:pinned@${one.manifestDigest}`]);

    for (const bad of ['v1!', 'v1/x', 'a b', 'x'.repeat(129), '.hidden']) {
      const refused = await run(['tag', `${host}/alice/retag:v1`, 'ok', bad]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('is not a tag');
      expect(refused.stdout.toString()).toBe('');
    }
    const elsewhere = await run(['tag', `${host}/alice/retag:v1`, `${host}/alice/other:v1`]);
    expect(elsewhere.code).toBe(2);
    expect(elsewhere.stderr).toContain('regauth copy');
    // A refused command tagged nothing, not even the valid tags before the bad one.
    expect(await tagsOf('alice/retag')).toEqual(['latest', 'pinned', 'stable', 'v1', 'v1.0']);
  });

  it('untags one tag and keeps the image and its other tags (placeholder manifest on distribution 2.8)', async () => {
    for (const tag of ['v1', 'v2']) await push(join(work, 'one'), `${host}/alice/untag:${tag}`);
    await push(join(work, 'two'), `${host}/alice/untag:other`);

    const res = await run(['untag', `${host}/alice/untag:v1`]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout.toString()).toBe(
      `Untagged: ${host}/alice/untag:v1 (it named ${one.manifestDigest}, which stays)\n`,
    );
    expect(await tagsOf('alice/untag')).toEqual(['other', 'v2']);
    const digestOf = async (ref: string) => (await run(['digest', ref])).stdout.toString().trim();
    expect(await digestOf(`${host}/alice/untag:v2`)).toBe(one.manifestDigest);

    // The last tag of an image: the image stays, reachable by digest.
    expect((await run(['delete', '--tag', `${host}/alice/untag:v2`])).code).toBe(0);
    expect(await tagsOf('alice/untag')).toEqual(['other']);
    const kept = await run(['manifest', `${host}/alice/untag@${one.manifestDigest}`]);
    expect(kept.stdout.toString()).toBe(one.manifest);
    expect(await digestOf(`${host}/alice/untag:other`)).toBe(two.manifestDigest);

    const missing = await run(['untag', `${host}/alice/untag:nope`]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`${host}/alice/untag:nope`);
    const noTag = await run(['untag', `${host}/alice/untag@${one.manifestDigest}`]);
    expect(noTag.code).toBe(2);
    expect(noTag.stderr).toContain('regauth untag takes a tag');
  });

  it('puts the tag back when the registry forbids deleting the placeholder', async () => {
    const locked = await startRegistry({ deleteEnabled: false });
    try {
      await push(join(work, 'one'), `${locked.host}/x/y:v1`);
      const res = await cli.run(['untag', `${locked.host}/x/y:v1`]);
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/does not allow deleting manifests \(405\); .*storage\.delete\.enabled/);
      const still = await cli.run(['digest', `${locked.host}/x/y:v1`]);
      expect(still.stdout.toString()).toBe(`${one.manifestDigest}\n`);
    } finally {
      await locked.stop();
    }
  });

  it('adds what it pushes with a subject to the referrers tag, so referrers lists each artifact once', async () => {
    await push(join(work, 'one'), `${host}/alice/signed:v1`);
    const subject = {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: one.manifestDigest,
      size: Buffer.byteLength(one.manifest),
    };
    const sig = await buildArtifactLayout(join(work, 'sig'), {
      artifactType: 'application/vnd.example.sig',
      payload: 'signature one',
      subject,
      annotations: { 'org.example.signer': 'alice' },
    });
    const sbom = await buildArtifactLayout(join(work, 'sbom'), {
      artifactType: 'application/vnd.example.sbom',
      payload: '{"packages":[]}',
      subject,
    });
    // distribution 2.8 has no referrers API (and sends no OCI-Subject): the tag schema it is.
    await push(join(work, 'sig'), `${host}/alice/signed@${sig.digest}`);
    const referrers = async (...extra: string[]) => {
      const res = await run(['referrers', `${host}/alice/signed:v1`, ...extra]);
      expect(res.code).toBe(0);
      return JSON.parse(res.stdout.toString()).manifests;
    };
    const sigEntry = {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: sig.digest,
      size: sig.size,
      artifactType: 'application/vnd.example.sig',
      annotations: { 'org.example.signer': 'alice' },
    };
    expect(await referrers()).toEqual([sigEntry]);

    await push(join(work, 'sbom'), `${host}/alice/signed:sbom`);
    const sbomEntry = {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: sbom.digest,
      size: sbom.size,
      artifactType: 'application/vnd.example.sbom',
    };
    expect(await referrers()).toEqual([sigEntry, sbomEntry]);
    // Pushed again: listed once.
    await push(join(work, 'sig'), `${host}/alice/signed@${sig.digest}`);
    expect(await referrers()).toEqual([sigEntry, sbomEntry]);
    expect(await referrers('--artifact-type', 'application/vnd.example.sbom')).toEqual([sbomEntry]);
    expect(await tagsOf('alice/signed')).toEqual(['sbom', `sha256-${one.manifestDigest.slice(7)}`, 'v1']);
  });

  it('digest with several references prints every one that resolves, in order, and names the others', async () => {
    await push(join(work, 'one'), `${host}/alice/batch:one`);
    await push(join(work, 'two'), `${host}/alice/batch:two`);
    const refs = [
      `${host}/alice/batch:two`,
      `${host}/alice/batch:missing`,
      `${host}/alice/batch:one`,
      `${host}/alice/nothing:here`,
      `${host}/alice/Not A Name`,
      `${host}/alice/batch@${two.manifestDigest}`,
    ];
    const res = await run(['digest', ...refs]);
    expect(res.code).toBe(1);
    expect(lines(res.stdout)).toEqual([two.manifestDigest, one.manifestDigest, two.manifestDigest]);
    const errors = res.stderr.split('\n').filter((l) => l.includes('\t'));
    expect(errors.map((l) => l.split('\t')[0])).toEqual([refs[1], refs[3], refs[4]]);
    expect(errors[0]).toMatch(
      /\tmanifest .*alice\/batch:missing: 404 not found \(no such tag or digest in the repository\)$/,
    );
    expect(errors[2]).toMatch(/\tinvalid reference "/);
    expect(res.stderr).toContain('3 of 6 references did not resolve');
    expect(res.stderr).not.toContain('    at ');

    const all = await run(['digest', refs[0] as string, refs[2] as string]);
    expect(all.code).toBe(0);
    expect(all.stderr).toBe('');
    expect(lines(all.stdout)).toEqual([two.manifestDigest, one.manifestDigest]);
  });
});
