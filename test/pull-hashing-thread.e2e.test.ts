import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WORKER_DIGEST_MIN_BYTES } from '../src/digest/create-digester.js';
import { isRegauthError } from '../src/errors/regauth-error.js';
import { pullImage } from '../src/image/pull-image.js';
import { pushImage } from '../src/image/push-image.js';
import type { TransferEvent } from '../src/image/transfer-events.js';
import { createRegistryClients } from '../src/index.js';
import { type FaultProxy, startFaultProxy } from './harness/fault-proxy.js';
import { buildOciLayout } from './harness/oci-layout.js';
import { type RegistryHandle, startRegistry } from './harness/registry.js';

const sha256 = (data: Uint8Array) => `sha256:${createHash('sha256').update(data).digest('hex')}`;
const PARTIAL_DIR = '.regauth-partial';

async function files(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name)));
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection, but the promise resolved');
}

describe('a layer large enough to be hashed on the hashing thread is still verified (real registry)', () => {
  let registry: RegistryHandle;
  let proxy: FaultProxy;
  let work: string;
  // Just over the size that moves hashing to the worker thread, random so no layout has it.
  const layer = randomBytes(WORKER_DIGEST_MIN_BYTES + 54_321);
  const layerDigest = sha256(layer);
  const layerPath = new RegExp(`/blobs/${layerDigest}`);
  const client = () =>
    createRegistryClients({ env: {}, credentials: { find: async () => undefined } }).forRegistry(proxy.host);

  beforeAll(async () => {
    registry = await startRegistry();
    proxy = await startFaultProxy(registry.host);
    work = await mkdtemp(join(tmpdir(), 'regauth-hashing-e2e-'));
    await buildOciLayout(join(work, 'src'), { tag: 'v1', rawLayers: [layer] });
    await pushImage(
      join(work, 'src'),
      createRegistryClients({ env: {}, credentials: { find: async () => undefined } }).forRegistry(
        registry.host,
      ),
      'hashing/app',
      'v1',
    );
  }, 60_000);

  afterAll(async () => {
    await proxy?.close();
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('pulls the layer byte for byte under its digest', async () => {
    const dir = join(work, 'good');
    const summary = await pullImage(client(), 'hashing/app', 'v1', dir);
    const bytes = await readFile(join(dir, 'blobs', 'sha256', layerDigest.slice(7)));
    expect(sha256(bytes)).toBe(layerDigest);
    expect(summary.blobs.find((b) => b.digest === layerDigest)?.how).toBe('sent');
    expect(existsSync(join(dir, PARTIAL_DIR))).toBe(false);
  }, 60_000);

  it('refuses a layer with one byte changed past the first batches, and keeps no file of it', async () => {
    // Past 16 MiB: the byte reaches the worker in a later batch, not the first.
    proxy.inject('GET', layerPath, { kind: 'corrupt', at: 16 * 1024 * 1024 + 77 }, 1);
    const dir = join(work, 'corrupt');
    try {
      const err = await failure(pullImage(client(), 'hashing/app', 'v1', dir));
      expect(isRegauthError(err, 'ERR_DIGEST_MISMATCH')).toBe(true);
      expect((err as Error).message).toMatch(
        new RegExp(`blob ${layerDigest} .*the bytes received hash to sha256:[0-9a-f]{64}; nothing was kept`),
      );
      expect((err as Error).message).not.toContain(`hash to ${layerDigest}`);
      expect((await files(dir)).filter((f) => f.includes(layerDigest.slice(7)))).toEqual([]);
    } finally {
      proxy.clear();
    }
  }, 60_000);

  it('an abort mid-layer removes its partial file; with keepPartial the next pull resumes and verifies the whole', async () => {
    const abortAfter = (controller: AbortController, bytes: number) => {
      let seen = 0;
      return (event: TransferEvent) => {
        if (event.kind !== 'blob-bytes' || event.digest !== layerDigest) return;
        seen += event.bytes;
        if (seen >= bytes) controller.abort(new Error('test abort'));
      };
    };
    const gone = new AbortController();
    const dropped = join(work, 'dropped');
    const err = await failure(
      pullImage(client(), 'hashing/app', 'v1', dropped, {
        signal: gone.signal,
        onEvent: abortAfter(gone, 3 * 1024 * 1024),
      }),
    );
    expect(isRegauthError(err, 'ERR_ABORTED')).toBe(true);
    expect((await files(dropped)).filter((f) => f.includes(layerDigest.slice(7)))).toEqual([]);

    const kept = new AbortController();
    const dir = join(work, 'kept');
    const err2 = await failure(
      pullImage(client(), 'hashing/app', 'v1', dir, {
        signal: kept.signal,
        keepPartial: true,
        onEvent: abortAfter(kept, 3 * 1024 * 1024),
      }),
    );
    expect(isRegauthError(err2, 'ERR_ABORTED')).toBe(true);
    const partial = await readFile(join(dir, PARTIAL_DIR, 'sha256', layerDigest.slice(7)));
    expect(partial.length).toBeGreaterThan(0);
    expect(partial.equals(layer.subarray(0, partial.length))).toBe(true);

    // The held bytes and the rest go through the hashing thread as one blob.
    const from = proxy.log.length;
    await pullImage(client(), 'hashing/app', 'v1', dir);
    expect(proxy.log.slice(from).filter((l) => layerPath.test(l))).toEqual([
      `GET /v2/hashing/app/blobs/${layerDigest} [bytes=${partial.length}-]`,
    ]);
    expect(sha256(await readFile(join(dir, 'blobs', 'sha256', layerDigest.slice(7))))).toBe(layerDigest);
    expect(existsSync(join(dir, PARTIAL_DIR))).toBe(false);
  }, 60_000);
});
