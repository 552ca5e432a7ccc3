import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { RegauthError } from '../errors/regauth-error.js';
import { OCI_MANIFEST } from '../registry/media-types.js';
import { parsePlatform } from '../registry/select-platform.js';
import { loopbackServers } from '../testing/loopback-server.js';
import type { Send } from '../transport/http-types.js';
import { createRegistry } from './create-registry.js';
import { dockerArchive, ociLayout } from './image-targets.js';

/** A transport that must never be reached: every case here is refused before any request. */
const unreachable: Send = async () => {
  throw new Error('no request was expected');
};

const refusal = async (work: Promise<unknown>) => {
  const err = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RegauthError);
  return err as RegauthError;
};

describe('createRegistry', () => {
  it('refuses caFile or retries with a send of the caller, which they could not reach', () => {
    for (const extra of [{ caFile: 'ca.pem' }, { retries: 2 }]) {
      expect(() => createRegistry({ send: unreachable, ...extra })).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_OPTIONS' }),
      );
    }
  });

  it('checks references, tags and options before sending anything', async () => {
    const registry = createRegistry({
      send: unreachable,
      credentials: { username: 'alice', password: 'pw' },
    });
    expect((await refusal(registry.tags('localhost:5000/alice/app:v1'))).code).toBe('ERR_INVALID_REFERENCE');
    expect((await refusal(registry.tag('localhost:5000/alice/app:v1', ['ok', '-bad']))).message).toContain(
      '"-bad" is not a tag',
    );
    expect((await refusal(registry.untag(`localhost:5000/alice/app@sha256:${'a'.repeat(64)}`))).code).toBe(
      'ERR_INVALID_REFERENCE',
    );
    expect(
      (
        await refusal(
          registry.pull('localhost:5000/alice/app:v1', dockerArchive('x.tar'), { allPlatforms: true }),
        )
      ).code,
    ).toBe('ERR_INVALID_OPTIONS');
    expect((await refusal(registry.manifest('UPPER/case'))).code).toBe('ERR_INVALID_REFERENCE');
    expect(
      (
        await refusal(
          registry.manifest('localhost:5000/a:v1', { platform: parsePlatform('linux/amd64'), accept: [] }),
        )
      ).code,
    ).toBe('ERR_INVALID_OPTIONS');
    // A digest goes into the URL path: `../` must never reach the registry with the repository's token.
    expect((await refusal(registry.blob('localhost:5000/alice/app', '../../../x'))).code).toBe(
      'ERR_INVALID_DIGEST',
    );
    const both = `localhost:5000/alice/app:v1@sha256:${'a'.repeat(64)}`;
    expect((await refusal(registry.push(ociLayout('dir'), both))).code).toBe('ERR_INVALID_REFERENCE');
    expect((await refusal(registry.copy('localhost:5000/alice/app:v1', both))).code).toBe(
      'ERR_INVALID_REFERENCE',
    );
  });

  it('stops before the first request when the signal is already aborted', async () => {
    const registry = createRegistry({ send: unreachable });
    const signal = AbortSignal.abort();
    const calls = [
      () => registry.manifest('localhost:5000/a:v1', { signal }),
      () => registry.digest('localhost:5000/a:v1', { signal }),
      () => registry.tags('localhost:5000/a', { signal }),
      () => registry.config('localhost:5000/a:v1', { signal }),
      () => registry.blob('localhost:5000/a', `sha256:${'a'.repeat(64)}`, { signal }),
      () => registry.pull('localhost:5000/a:v1', ociLayout('never-made'), { signal }),
      () => registry.copy('localhost:5000/a:v1', 'localhost:5000/b:v1', { signal }),
      () => registry.tag('localhost:5000/a:v1', 'v2', { signal }),
      () => registry.untag('localhost:5000/a:v1', { signal }),
      () => registry.delete('localhost:5000/a:v1', { signal }),
    ];
    for (const call of calls) {
      const err = await refusal(call());
      expect(err.code).toBe('ERR_ABORTED');
      expect(err.message).toMatch(/was aborted$/);
    }
  });
});

describe('image targets', () => {
  it('name a layout, with or without the image, and a docker archive', () => {
    expect(ociLayout('dir')).toEqual({ kind: 'oci-layout', dir: 'dir' });
    expect(ociLayout('dir', 'v1')).toEqual({ kind: 'oci-layout', dir: 'dir', refName: 'v1' });
    expect(dockerArchive('a.tar')).toEqual({ kind: 'docker-archive', path: 'a.tar' });
  });
});

describe('createRegistry against a loopback registry', () => {
  const servers = loopbackServers();
  afterEach(() => servers.closeAll());
  const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

  it('reads a single-platform image config once when it also checks the platform', async () => {
    const config = Buffer.from(
      JSON.stringify({ architecture: 'arm64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }),
    );
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: {
          mediaType: 'application/vnd.oci.image.config.v1+json',
          digest: sha256(config),
          size: config.length,
        },
        layers: [],
      }),
    );
    const server = await servers.start((req, res) => {
      if (req.url.pathname === '/v2/team/app/manifests/v1') {
        res.writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': sha256(manifest) });
        res.end(req.method === 'HEAD' ? undefined : manifest);
      } else if (req.url.pathname === `/v2/team/app/blobs/${sha256(config)}`) {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.end(config);
      } else {
        res.writeHead(404).end();
      }
    });
    const registry = createRegistry({ env: {}, retries: 0 });
    const got = await registry.config(`${server.host}/team/app:v1`, {
      platform: parsePlatform('linux/arm64'),
    });
    expect(got.json.architecture).toBe('arm64');
    expect(got.digest).toBe(sha256(config));
    expect(server.requests.map((r) => `${r.method} ${r.url.pathname}`)).toEqual([
      'GET /v2/team/app/manifests/v1',
      `GET /v2/team/app/blobs/${sha256(config)}`,
    ]);
    // The platform check still refuses an image of another platform.
    expect(
      (
        await refusal(
          registry.config(`${server.host}/team/app:v1`, { platform: parsePlatform('linux/amd64') }),
        )
      ).code,
    ).toBe('ERR_NO_MATCHING_PLATFORM');
  });
});
