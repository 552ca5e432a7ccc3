import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BuiltImage, buildOciIndexLayout, buildOciLayout } from './harness/oci-layout.js';
import { type CliHome, createCliHome } from './harness/regauth-cli.js';
import { type RegistryHandle, startRegistry } from './harness/registry.js';

describe('--platform that the image does not have (real registry)', () => {
  let registry: RegistryHandle;
  let cli: CliHome;
  let work: string;
  let arm: BuiltImage;
  let armRef: string;
  let multiRef: string;

  beforeAll(async () => {
    registry = await startRegistry();
    cli = await createCliHome();
    work = await mkdtemp(join(tmpdir(), 'regauth-platform-e2e-'));
    arm = await buildOciLayout(join(work, 'arm'), { tag: 'v1', platform: 'linux/arm64' });
    await buildOciIndexLayout(join(work, 'multi'), {
      tag: 'v1',
      platforms: ['linux/amd64', 'linux/arm64/v8'],
    });
    armRef = `${registry.host}/team/arm:v1`;
    multiRef = `${registry.host}/team/multi:v1`;
    for (const [dir, ref] of [
      [join(work, 'arm'), armRef],
      [`${join(work, 'multi')}:v1`, multiRef],
    ] as const) {
      const res = await cli.run(['push', dir, ref, '--quiet']);
      if (res.code !== 0) throw new Error(res.stderr);
    }
  });

  afterAll(async () => {
    await registry?.stop();
    await cli?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const refused = (ref: string) =>
    `regauth: error: ${ref} is linux/arm64 only, not linux/amd64; drop --platform to take it anyway\n`;

  it('pull refuses a single-platform image of another platform, before making the folder', async () => {
    const dir = join(work, 'pulled-amd64');
    const res = await cli.run(['pull', armRef, dir, '--platform', 'linux/amd64']);
    expect(res.stderr).toBe(refused(armRef));
    expect(res.code).toBe(1);
    expect(existsSync(dir)).toBe(false);
  });

  it('pull takes the image when --platform names its platform, or is left out', async () => {
    for (const [name, extra] of [
      ['pulled-arm64', ['--platform', 'linux/arm64']],
      ['pulled-any', []],
    ] as const) {
      const dir = join(work, name);
      const res = await cli.run(['pull', armRef, dir, '--json', ...extra]);
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
      expect(JSON.parse(res.stdout.toString()).digest).toBe(arm.manifestDigest);
      expect(JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')).manifests[0].digest).toBe(
        arm.manifestDigest,
      );
    }
  });

  it('copy, config, manifest, digest and a docker-archive pull refuse it too, and copy pushes nothing', async () => {
    const copy = await cli.run([
      'copy',
      armRef,
      `${registry.host}/team/copied:v1`,
      '--platform',
      'linux/amd64',
    ]);
    expect(copy.stderr).toBe(refused(armRef));
    expect(copy.code).toBe(1);
    expect((await cli.run(['manifest', `${registry.host}/team/copied:v1`])).code).toBe(1);

    const config = await cli.run(['config', armRef, '--platform', 'linux/amd64']);
    expect(config.stderr).toBe(refused(armRef));
    expect(config.stdout.length).toBe(0);
    expect(config.code).toBe(1);

    const tar = join(work, 'arm.tar');
    const archive = await cli.run([
      'pull',
      armRef,
      '--format',
      'docker-archive',
      '--output',
      tar,
      '--platform',
      'linux/amd64',
    ]);
    expect(archive.stderr).toBe(refused(armRef));
    expect(archive.code).toBe(1);
    expect(existsSync(tar)).toBe(false);

    for (const command of ['manifest', 'digest']) {
      const res = await cli.run([command, armRef, '--platform', 'linux/amd64']);
      expect(res.stderr).toBe(refused(armRef));
      expect(res.code).toBe(1);
    }
    const digest = await cli.run(['digest', armRef, '--platform', 'linux/arm64']);
    expect(digest.stdout.toString()).toBe(`${arm.manifestDigest}\n`);

    const matching = await cli.run(['config', armRef, '--platform', 'linux/arm64/v8']);
    expect(matching.code).toBe(0);
    expect(JSON.parse(matching.stdout.toString()).architecture).toBe('arm64');
  });

  it('names the index and lists its platforms when it has not the one asked for', async () => {
    const res = await cli.run(['pull', multiRef, join(work, 'multi-s390x'), '--platform', 'linux/s390x']);
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(
      `regauth: error: no manifest for linux/s390x in ${multiRef} (it has: linux/amd64, linux/arm64/v8); choose one with --platform\n`,
    );
  });
});
