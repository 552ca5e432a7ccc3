import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createAuthClient } from '../auth/create-auth-client.js';
import { OCI_MANIFEST } from '../registry/media-types.js';
import { RegistryClient } from '../registry/registry-client.js';
import { type LoopbackHandler, loopbackServers } from '../testing/loopback-server.js';
import { rejection } from '../testing/rejection.js';
import { createTransport } from '../transport/create-transport.js';
import { untag } from './untag.js';

const servers = loopbackServers();
afterEach(() => servers.closeAll());

const sha256 = (bytes: string) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const IMAGE = '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}';

async function registryWith(handler: LoopbackHandler) {
  const server = await servers.start(handler);
  const auth = createAuthClient({
    send: createTransport({ env: {}, maxRetries: 0, sleep: async () => {} }),
    credentials: { find: async () => undefined },
  });
  return { server, client: new RegistryClient({ registry: server.host, send: auth.send }) };
}

/**
 * A registry holding IMAGE under v1; `tagDelete` says how it answers DELETE …/manifests/v1, and
 * `dropsImage` makes that delete take the image itself (a registry that gets it wrong).
 */
function registry(tagDelete: number, dropsImage = false) {
  const manifests = new Map<string, string>();
  const handler: LoopbackHandler = (req, res) => {
    const path = req.url.pathname;
    const ref = path.split('/manifests/')[1];
    if (req.method === 'GET' && ref === 'v1') {
      res.writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': sha256(IMAGE) });
      res.end(IMAGE);
    } else if (req.method === 'HEAD' && ref === sha256(IMAGE) && !dropsImage) {
      res.writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': sha256(IMAGE) });
      res.end();
    } else if (req.method === 'DELETE' && ref === 'v1') {
      res.writeHead(tagDelete, { 'content-type': 'application/json' });
      res.end(tagDelete === 202 ? '' : '{"errors":[{"code":"UNSUPPORTED","message":"no"}]}');
    } else if (req.method === 'HEAD' && path.includes('/blobs/')) {
      res.writeHead(200, { 'content-length': '2' });
      res.end();
    } else if (req.method === 'PUT' && ref === 'v1') {
      manifests.set(sha256(req.body), req.body);
      res.writeHead(201, { 'docker-content-digest': sha256(req.body) });
      res.end();
    } else if (req.method === 'DELETE' && ref !== undefined && manifests.has(ref)) {
      res.writeHead(202);
      res.end();
    } else {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}');
    }
  };
  return { manifests, handler };
}

describe('untag', () => {
  it("uses the registry's tag delete where it answers 202, and puts no manifest", async () => {
    const { handler } = registry(202);
    const { client, server } = await registryWith(handler);
    expect(await untag(client, 'a/b', 'v1')).toEqual({ digest: sha256(IMAGE), method: 'registry' });
    expect(server.requests.map((r) => `${r.method} ${r.url.pathname}`)).toEqual([
      'GET /v2/a/b/manifests/v1',
      'DELETE /v2/a/b/manifests/v1',
      `HEAD /v2/a/b/manifests/${sha256(IMAGE)}`,
    ]);
  });

  it('says so when a tag delete took the image itself (and with it every other tag)', async () => {
    const { handler } = registry(202, true);
    const { client } = await registryWith(handler);
    const err = await rejection(untag(client, 'a/b', 'v1'));
    expect(err).toMatchObject({ code: 'ERR_REGISTRY' });
    expect((err as Error).message).toContain(
      `deleted the manifest ${sha256(IMAGE)} when asked to delete only the tag v1`,
    );
  });

  it('points the tag at a unique placeholder and deletes that by digest where the registry refuses (405)', async () => {
    const { handler, manifests } = registry(405);
    const { client, server } = await registryWith(handler);
    expect(await untag(client, 'a/b', 'v1')).toEqual({ digest: sha256(IMAGE), method: 'placeholder' });
    expect(await untag(client, 'a/b', 'v1')).toEqual({ digest: sha256(IMAGE), method: 'placeholder' });
    const placeholders = [...manifests.keys()];
    // A nonce each time: two placeholders, two digests, neither the image's.
    expect(new Set(placeholders).size).toBe(2);
    expect(placeholders).not.toContain(sha256(IMAGE));
    const body = JSON.parse(manifests.get(placeholders[0] as string) as string);
    expect(body.config).toEqual({
      mediaType: 'application/vnd.oci.empty.v1+json',
      digest: sha256('{}'),
      size: 2,
    });
    const deleted = server.requests.filter((r) => r.method === 'DELETE').map((r) => r.url.pathname);
    expect(deleted).toEqual([
      '/v2/a/b/manifests/v1',
      `/v2/a/b/manifests/${placeholders[0]}`,
      '/v2/a/b/manifests/v1',
      `/v2/a/b/manifests/${placeholders[1]}`,
    ]);
  });
  it('puts nothing back when the registry refused the placeholder with an answer: the tag never moved', async () => {
    const { handler } = registry(405);
    const { client, server } = await registryWith((req, res, raw) => {
      if (req.method !== 'PUT') return handler(req, res, raw);
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"MANIFEST_INVALID","message":"no"}]}');
    });
    const err = await rejection(untag(client, 'a/b', 'v1'));
    expect(err).toMatchObject({ code: 'ERR_MANIFEST_INVALID', status: 400 });
    expect(server.requests.filter((r) => r.method === 'PUT')).toHaveLength(1);
  });
});
