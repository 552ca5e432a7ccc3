import { createHash, randomBytes } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRegauthError } from '../src/errors/regauth-error.js';
import { copyImage } from '../src/image/copy-image.js';
import { deleteImage } from '../src/image/delete-image.js';
import { pullDockerArchive } from '../src/image/docker-archive.js';
import { getImageConfig, getPlatformManifest } from '../src/image/get-image-config.js';
import { manifestForPlatform } from '../src/image/manifest-for-platform.js';
import { pullImage } from '../src/image/pull-image.js';
import { pushImage } from '../src/image/push-image.js';
import { readBlob } from '../src/image/read-blob.js';
import { resolveDigest } from '../src/image/resolve-digest.js';
import { tagImage } from '../src/image/tag-image.js';
import { tagsPointingAt } from '../src/image/tags-pointing-at.js';
import type { TransferEvent } from '../src/image/transfer-events.js';
import { untag } from '../src/image/untag.js';
import { createRegistryClients, RegistryClient } from '../src/index.js';
import { type FaultProxy, startFaultProxy } from './harness/fault-proxy.js';
import { startForwardProxy } from './harness/forward-proxy.js';
import { startHoldProxy } from './harness/hold-proxy.js';
import { buildOciLayout } from './harness/oci-layout.js';
import { type RegistryHandle, startRegistry } from './harness/registry.js';

const sha256 = (data: Uint8Array) => `sha256:${createHash('sha256').update(data).digest('hex')}`;
const PARTIAL_DIR = '.regauth-partial';
const MiB = 1024 * 1024;

/** Every file under `dir`, as paths relative to it. */
async function walk(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name)));
}

/** The error a promise rejects with; fails the test when it resolves. */
async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection, but the promise resolved');
}

/** An onEvent listener that aborts `controller` at the first bytes of `digest` moving. */
function abortAtBytesOf(digest: string, controller: AbortController) {
  return (event: TransferEvent) => {
    if (event.kind === 'blob-bytes' && event.digest === digest) controller.abort(new Error('test abort'));
  };
}

describe('abort: every transfer takes a signal and leaves nothing half-done (real registry)', () => {
  let registry: RegistryHandle;
  let proxy: FaultProxy;
  let work: string;
  // Random, so no registry or layout has it by chance; a few MiB, so it goes in several chunks.
  const layer = randomBytes(3 * MiB + 1234);
  const layerDigest = sha256(layer);
  const layerPath = new RegExp(`/blobs/${layerDigest}`);
  const clients = () => createRegistryClients({ env: {}, credentials: { find: async () => undefined } });

  beforeAll(async () => {
    registry = await startRegistry();
    proxy = await startFaultProxy(registry.host);
    work = await mkdtemp(join(tmpdir(), 'regauth-abort-e2e-'));
    await buildOciLayout(join(work, 'src'), { tag: 'v1', rawLayers: [layer] });
    await pushImage(join(work, 'src'), clients().forRegistry(registry.host), 'abort/app', 'v1');
  });

  afterAll(async () => {
    await proxy?.close();
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** Whether the tag exists, asked without any signal through a fresh client. */
  const tagExists = async (repository: string, tag: string) => {
    try {
      await clients().forRegistry(registry.host).headManifest(repository, tag);
      return true;
    } catch (err) {
      if (isRegauthError(err, 'ERR_MANIFEST_UNKNOWN') || isRegauthError(err, 'ERR_NAME_UNKNOWN'))
        return false;
      throw err;
    }
  };

  it('sends nothing for a call whose signal is aborted already', async () => {
    const controller = new AbortController();
    controller.abort();
    const client = clients().forRegistry(proxy.host);
    const from = proxy.log.length;
    const err = await failure(client.getManifest('abort/app', 'v1', { signal: controller.signal }));
    expect(isRegauthError(err, 'ERR_ABORTED')).toBe(true);
    const dir = join(work, 'never');
    const pulled = await failure(pullImage(client, 'abort/app', 'v1', dir, { signal: controller.signal }));
    expect(isRegauthError(pulled, 'ERR_ABORTED')).toBe(true);
    expect(proxy.log.slice(from)).toEqual([]);
    expect(existsSync(dir)).toBe(false);
  });

  it('every registry call and image function rejects an aborted signal with ERR_ABORTED before sending', async () => {
    const controller = new AbortController();
    controller.abort();
    const signal = controller.signal;
    const client = clients().forRegistry(proxy.host);
    // A first call without a signal: the scheme ping and the challenge are known, so what follows
    // would each be one request at least.
    const digest = await resolveDigest(client, 'abort/app', 'v1');
    const from = proxy.log.length;
    const calls: [string, () => Promise<unknown>][] = [
      ['headManifest', () => client.headManifest('abort/app', 'v1', { signal })],
      ['getBlobBytes', () => client.getBlobBytes('abort/app', layerDigest, undefined, { signal })],
      ['getBlob', () => client.getBlob('abort/app', layerDigest, 0, { signal })],
      ['headBlob', () => client.headBlob('abort/app', layerDigest, { signal })],
      ['startUpload', () => client.startUpload('abort/app', undefined, { signal })],
      ['putManifest', () => client.putManifest('abort/app', 'x', Buffer.from('{}'), 'a/b', { signal })],
      ['deleteManifest', () => client.deleteManifest('abort/app', digest, { signal })],
      ['deleteTag', () => client.deleteTag('abort/app', 'v1', { signal })],
      ['referrers', () => client.referrers('abort/app', digest, undefined, { signal })],
      ['listTags', () => client.listTags('abort/app', { signal })],
      ['catalog', () => client.catalog({ signal })],
      ['resolveDigest', () => resolveDigest(client, 'abort/app', 'v1', { signal })],
      ['tagImage', () => tagImage(client, 'abort/app', 'v1', ['v2'], { signal })],
      ['untag', () => untag(client, 'abort/app', 'v1', { signal })],
      ['tagsPointingAt', () => tagsPointingAt(client, 'abort/app', digest, { signal })],
      ['getImageConfig', () => getImageConfig(client, 'abort/app', 'v1', undefined, { signal })],
      ['getPlatformManifest', () => getPlatformManifest(client, 'abort/app', 'v1', undefined, { signal })],
      ['manifestForPlatform', () => manifestForPlatform(client, 'abort/app', 'v1', { signal })],
      [
        'readBlob',
        async () => {
          for await (const _ of readBlob(client, 'abort/app', { digest: layerDigest }, { signal })) break;
        },
      ],
    ];
    for (const [name, call] of calls) {
      const err = await failure(call());
      expect([name, isRegauthError(err, 'ERR_ABORTED')]).toEqual([name, true]);
    }
    expect(proxy.log.slice(from)).toEqual([]);
    expect(await tagExists('abort/app', 'v1')).toBe(true);
  });

  it('untag aborted once its placeholder is in puts the tag back on its image', async () => {
    const plain = clients().forRegistry(registry.host);
    const original = await resolveDigest(plain, 'abort/app', 'v1');
    await tagImage(plain, 'abort/app', 'v1', ['v9']);
    const controller = new AbortController();
    const send = clients().auth.send;
    // The abort comes the moment the registry has taken the placeholder under the tag.
    const client = new RegistryClient({
      registry: registry.host,
      send: async (req) => {
        const res = await send(req);
        if (req.method === 'PUT' && req.url.pathname.endsWith('/manifests/v9')) controller.abort();
        return res;
      },
    });
    const err = await failure(untag(client, 'abort/app', 'v9', { signal: controller.signal }));
    expect(isRegauthError(err, 'ERR_ABORTED')).toBe(true);
    expect(await resolveDigest(plain, 'abort/app', 'v9')).toBe(original);
  });

  it('untag aborted after the registry stored its placeholder, before the answer came, puts the tag back', async () => {
    const plain = clients().forRegistry(registry.host);
    const original = await resolveDigest(plain, 'abort/app', 'v1');
    await tagImage(plain, 'abort/app', 'v1', ['v8']);
    const controller = new AbortController();
    // The registry has taken the placeholder under v8; the client is aborted while its answer is held.
    const hold = await startHoldProxy(registry.host, {
      match: (method, path) => method === 'PUT' && path === '/v2/abort/app/manifests/v8',
      stage: 'reply',
      onHeld: () => controller.abort(new Error('test abort')),
    });
    try {
      const err = await failure(
        untag(clients().forRegistry(hold.host), 'abort/app', 'v8', { signal: controller.signal }),
      );
      expect(isRegauthError(err, 'ERR_ABORTED')).toBe(true);
      expect(hold.mostHeld()).toBe(1);
    } finally {
      await hold.close();
    }
    expect(await resolveDigest(plain, 'abort/app', 'v8')).toBe(original);
  });

  it("a delete's tag lookups hold one listener on the caller's signal, however many HEADs are in flight", async () => {
    const plain = clients().forRegistry(registry.host);
    await tagImage(
      plain,
      'abort/app',
      'v1',
      Array.from({ length: 12 }, (_, i) => `many${i}`),
    );
    const controller = new AbortController();
    const listeners: number[] = [];
    // Twelve lookup HEADs of the two deletes (up to eight each) are held at the proxy, in flight,
    // while the listeners are counted; the deletes' own HEADs of many0 and many1 pass.
    const hold = await startHoldProxy(registry.host, {
      match: (method, path) =>
        method === 'HEAD' && /^\/v2\/abort\/app\/manifests\/(v1|many([2-9]|1[01]))$/.test(path),
      stage: 'request',
      count: 12,
      onHeld: () => listeners.push(getEventListeners(controller.signal, 'abort').length),
    });
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const digest = await resolveDigest(plain, 'abort/app', 'v1');
      // A client each: nothing shared between the two deletes' requests.
      const deletes = ['many0', 'many1'].map((tag) =>
        failure(
          deleteImage(clients().forRegistry(hold.host), 'abort/app', { tag }, { signal: controller.signal }),
        ),
      );
      for (const err of await Promise.all(deletes)) expect(isRegauthError(err, 'ERR_REFUSED')).toBe(true);
      expect(hold.mostHeld()).toBe(12);
      expect(listeners).toHaveLength(1);
      expect(listeners[0]).toBeLessThanOrEqual(2);
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings).not.toContain('MaxListenersExceededWarning');
      expect(await resolveDigest(plain, 'abort/app', 'many0')).toBe(digest);
    } finally {
      process.off('warning', onWarning);
      await hold.close();
    }
  });

  it('a pull aborted mid-blob rejects with ERR_ABORTED and leaves no partial file, only verified blobs', async () => {
    proxy.inject('GET', layerPath, { kind: 'stall-after', bytes: 200_000 }, 1);
    const controller = new AbortController();
    const dir = join(work, 'aborted');
    const err = await failure(
      pullImage(clients().forRegistry(proxy.host), 'abort/app', 'v1', dir, {
        signal: controller.signal,
        onEvent: abortAtBytesOf(layerDigest, controller),
      }),
    );
    proxy.clear();
    expect(isRegauthError(err, 'ERR_ABORTED')).toBe(true);
    expect((err as Error).message).toMatch(/^the pull of .*abort\/app:v1 was aborted$/);
    expect((err as Error).cause).toEqual(new Error('test abort'));
    const files = existsSync(dir) ? await walk(dir) : [];
    expect(files.filter((f) => f.includes(PARTIAL_DIR))).toEqual([]);
    expect(existsSync(join(dir, PARTIAL_DIR))).toBe(false);
    for (const file of files.filter((f) => f.startsWith('blobs/'))) {
      expect(sha256(await readFile(join(dir, file)))).toBe(`sha256:${file.split('/').pop()}`);
    }
    expect(files).not.toContain(`blobs/sha256/${layerDigest.slice(7)}`);
  });

  it('through an HTTP proxy (HTTP_PROXY), a body aborted midway fails with ERR_ABORTED, not the raw reason', async () => {
    proxy.inject('GET', layerPath, { kind: 'stall-after', bytes: 200_000 }, 1);
    const forward = await startForwardProxy();
    try {
      const client = createRegistryClients({
        env: { HTTP_PROXY: forward.url, NO_PROXY: '' },
        credentials: { find: async () => undefined },
      }).forRegistry(proxy.host);
      const controller = new AbortController();
      const res = await client.getBlob('abort/app', layerDigest, 0, { signal: controller.signal });
      const err = await failure(
        (async () => {
          for await (const _ of res.body) controller.abort(new Error('test abort'));
        })(),
      );
      expect(isRegauthError(err, 'ERR_ABORTED')).toBe(true);
      expect((err as Error).message).toBe(
        `GET http://${proxy.host}/v2/abort/app/blobs/${layerDigest} was aborted`,
      );
      expect((err as Error).cause).toEqual(new Error('test abort'));
      // It did go through the proxy.
      expect(forward.log).toContain(`GET http://${proxy.host}/v2/abort/app/blobs/${layerDigest}`);
    } finally {
      proxy.clear();
      await forward.close();
    }
  });

  it('a pull whose layer fails its digest while another stalls rejects with that error and stops the stalled download', async () => {
    const a = randomBytes(300_000);
    const b = randomBytes(300_000);
    await buildOciLayout(join(work, 'two'), { tag: 'v1', rawLayers: [a, b] });
    await pushImage(join(work, 'two'), clients().forRegistry(registry.host), 'abort/two', 'v1');
    const stalled = `GET /v2/abort/two/blobs/${sha256(b)}`;
    proxy.inject('GET', new RegExp(`/blobs/${sha256(a)}`), { kind: 'corrupt', at: 10 }, 10);
    proxy.inject('GET', new RegExp(`/blobs/${sha256(b)}`), { kind: 'stall-after', bytes: 1000 }, 10);
    // A deadline far beyond what the pull needs: the digest error must neither wait for it nor
    // hide behind its ERR_ABORTED.
    const signal = AbortSignal.timeout(20_000);
    try {
      const err = await failure(
        pullImage(clients().forRegistry(proxy.host), 'abort/two', 'v1', join(work, 'two-out'), { signal }),
      );
      expect(isRegauthError(err, 'ERR_DIGEST_MISMATCH')).toBe(true);
      // The stalled download was torn down by the failure, not left to the deadline.
      for (let i = 0; i < 100 && !proxy.torn.includes(stalled); i++)
        await new Promise((r) => setTimeout(r, 50));
      expect(proxy.torn).toContain(stalled);
      expect(signal.aborted).toBe(false);
    } finally {
      proxy.clear();
    }
  });

  it('with keepPartial the unfinished blob stays, and the next pull resumes it with Range', async () => {
    proxy.inject('GET', layerPath, { kind: 'stall-after', bytes: 200_000 }, 1);
    const controller = new AbortController();
    const dir = join(work, 'kept');
    const client = clients().forRegistry(proxy.host);
    const err = await failure(
      pullImage(client, 'abort/app', 'v1', dir, {
        signal: controller.signal,
        keepPartial: true,
        onEvent: abortAtBytesOf(layerDigest, controller),
      }),
    );
    proxy.clear();
    expect(isRegauthError(err, 'ERR_ABORTED')).toBe(true);
    const kept = await readFile(join(dir, PARTIAL_DIR, 'sha256', layerDigest.slice(7)));
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan(layer.length);
    expect(kept.equals(layer.subarray(0, kept.length))).toBe(true);

    const from = proxy.log.length;
    await pullImage(client, 'abort/app', 'v1', dir);
    expect(proxy.log.slice(from).filter((l) => layerPath.test(l))).toEqual([
      `GET /v2/abort/app/blobs/${layerDigest} [bytes=${kept.length}-]`,
    ]);
    expect((await readFile(join(dir, 'blobs', 'sha256', layerDigest.slice(7)))).equals(layer)).toBe(true);
    expect(existsSync(join(dir, PARTIAL_DIR))).toBe(false);
  });

  it('a pull into a new folder aborted before any blob completed leaves no folder', async () => {
    const controller = new AbortController();
    const parent = join(work, 'fresh');
    const err = await failure(
      pullImage(clients().forRegistry(proxy.host), 'abort/app', 'v1', join(parent, 'layout'), {
        signal: controller.signal,
        onEvent: (event) => {
          if (event.kind === 'blob-start') controller.abort();
        },
      }),
    );
    expect(isRegauthError(err, 'ERR_ABORTED')).toBe(true);
    expect(existsSync(parent)).toBe(false);
  });

  it('a push aborted mid-upload rejects with ERR_ABORTED, cancels its upload and pushes no manifest', async () => {
    const controller = new AbortController();
    const from = proxy.log.length;
    const err = await failure(
      pushImage(join(work, 'src'), clients().forRegistry(proxy.host), 'abort/pushed', 'v1', {
        chunkBytes: MiB,
        signal: controller.signal,
        onEvent: abortAtBytesOf(layerDigest, controller),
      }),
    );
    expect(isRegauthError(err, 'ERR_ABORTED')).toBe(true);
    const seen = proxy.log.slice(from);
    expect(seen.filter((l) => l.startsWith('DELETE /v2/abort/pushed/blobs/uploads/')).length).toBeGreaterThan(
      0,
    );
    expect(seen.filter((l) => / \/v2\/abort\/pushed\/manifests\//.test(l))).toEqual([]);
    expect(await tagExists('abort/pushed', 'v1')).toBe(false);
  });

  it('a copy aborted mid-blob rejects with ERR_ABORTED, cancels its upload and pushes no manifest', async () => {
    const controller = new AbortController();
    const from = proxy.log.length;
    // Source straight from the registry, destination through the proxy: two registry names, so
    // the layer's bytes are sent, not mounted.
    const err = await failure(
      copyImage(
        { client: clients().forRegistry(registry.host), repository: 'abort/app', reference: 'v1' },
        { client: clients().forRegistry(proxy.host), repository: 'abort/copied', reference: 'v1' },
        { chunkBytes: MiB, signal: controller.signal, onEvent: abortAtBytesOf(layerDigest, controller) },
      ),
    );
    expect(isRegauthError(err, 'ERR_ABORTED')).toBe(true);
    const seen = proxy.log.slice(from);
    expect(seen.filter((l) => l.startsWith('DELETE /v2/abort/copied/blobs/uploads/')).length).toBeGreaterThan(
      0,
    );
    expect(seen.filter((l) => / \/v2\/abort\/copied\/manifests\//.test(l))).toEqual([]);
    expect(await tagExists('abort/copied', 'v1')).toBe(false);
  });

  it('a docker-archive pull aborted mid-blob leaves no file at the output path, and no temporary one', async () => {
    proxy.inject('GET', layerPath, { kind: 'stall-after', bytes: 200_000 }, 1);
    const controller = new AbortController();
    const folder = await mkdtemp(join(work, 'archive-'));
    const output = join(folder, 'image.tar');
    const err = await failure(
      pullDockerArchive(clients().forRegistry(proxy.host), 'abort/app', 'v1', output, {
        tag: 'abort/app:v1',
        signal: controller.signal,
        onEvent: abortAtBytesOf(layerDigest, controller),
      }),
    );
    proxy.clear();
    expect(isRegauthError(err, 'ERR_ABORTED')).toBe(true);
    expect(await readdir(folder)).toEqual([]);
  });
});
