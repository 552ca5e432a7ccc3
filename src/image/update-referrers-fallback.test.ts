import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createAuthClient } from '../auth/create-auth-client.js';
import { OCI_INDEX, OCI_MANIFEST } from '../registry/media-types.js';
import { RegistryClient } from '../registry/registry-client.js';
import { type LoopbackHandler, loopbackServers } from '../testing/loopback-server.js';
import { rejection } from '../testing/rejection.js';
import { createTransport } from '../transport/create-transport.js';
import { updateReferrersFallback } from './update-referrers-fallback.js';

const servers = loopbackServers();
afterEach(() => servers.closeAll());

const sha256 = (bytes: string) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const SUBJECT = sha256('the image');
const TAG = `sha256-${SUBJECT.slice(7)}`;

function artifact(extra: Record<string, unknown> = {}) {
  const text = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.example.config', digest: sha256('{}'), size: 2 },
    layers: [],
    subject: { mediaType: OCI_MANIFEST, digest: SUBJECT, size: 9 },
    ...extra,
  });
  return { bytes: Buffer.from(text), digest: sha256(text), mediaType: OCI_MANIFEST };
}

/** A registry whose referrers tag holds `current` (or nothing), and which records what is put. */
async function registryWith(current: { type: string; body: string } | undefined) {
  const puts: { path: string; type: string; body: string }[] = [];
  const handler: LoopbackHandler = (req, res) => {
    if (req.method === 'GET' && req.url.pathname.endsWith(`/manifests/${TAG}`) && current) {
      res.writeHead(200, { 'content-type': current.type });
      res.end(current.body);
    } else if (req.method === 'PUT') {
      puts.push({ path: req.url.pathname, type: String(req.headers['content-type']), body: req.body });
      res.writeHead(201);
      res.end();
    } else {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}');
    }
  };
  const server = await servers.start(handler);
  const auth = createAuthClient({
    send: createTransport({ env: {}, maxRetries: 0, sleep: async () => {} }),
    credentials: { find: async () => undefined },
  });
  return { puts, client: new RegistryClient({ registry: server.host, send: auth.send }) };
}

describe('updateReferrersFallback', () => {
  it("starts an index, with the config's media type as artifactType when the manifest has none", async () => {
    const { client, puts } = await registryWith(undefined);
    const pushed = artifact({ annotations: { a: 'b' } });
    const result = await updateReferrersFallback(client, 'r', pushed);
    expect(puts).toHaveLength(1);
    expect(puts[0]?.path).toBe(`/v2/r/manifests/${TAG}`);
    expect(puts[0]?.type).toBe(OCI_INDEX);
    expect(JSON.parse(puts[0]?.body ?? '')).toEqual({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        {
          mediaType: OCI_MANIFEST,
          digest: pushed.digest,
          size: pushed.bytes.length,
          artifactType: 'application/vnd.example.config',
          annotations: { a: 'b' },
        },
      ],
    });
    expect(result).toEqual({ tag: TAG, digest: sha256(puts[0]?.body ?? '') });
  });

  it('keeps what the index holds and adds nothing twice', async () => {
    const pushed = artifact();
    const other = { mediaType: OCI_MANIFEST, digest: sha256('other'), size: 5 };
    const body = JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [other],
      annotations: { kept: 'yes' },
    });
    const { client, puts } = await registryWith({ type: OCI_INDEX, body });
    await updateReferrersFallback(client, 'r', pushed);
    const index = JSON.parse(puts[0]?.body ?? '');
    expect(index.annotations).toEqual({ kept: 'yes' });
    expect(index.manifests.map((m: { digest: string }) => m.digest)).toEqual([other.digest, pushed.digest]);

    const listed = await registryWith({ type: OCI_INDEX, body: puts[0]?.body ?? '' });
    expect(await updateReferrersFallback(listed.client, 'r', pushed)).toBeUndefined();
    expect(listed.puts).toHaveLength(0);
  });

  it('leaves a referrers tag that holds something other than an index alone, and says so', async () => {
    const { client, puts } = await registryWith({ type: OCI_MANIFEST, body: '{"schemaVersion":2}' });
    const err = await rejection(updateReferrersFallback(client, 'r', artifact()));
    expect(err).toMatchObject({ code: 'ERR_MANIFEST_INVALID' });
    expect(String((err as Error).message)).toContain('not an image index');
    expect(puts).toHaveLength(0);
  });

  it('leaves a referrers tag that holds an index that is not JSON alone, with a typed error', async () => {
    const { client, puts } = await registryWith({ type: OCI_INDEX, body: '{"manifests": [' });
    const err = await rejection(updateReferrersFallback(client, 'r', artifact()));
    expect(err).toMatchObject({ code: 'ERR_MANIFEST_INVALID' });
    expect(puts).toHaveLength(0);
  });

  it('does nothing for a manifest without a subject', async () => {
    const { client, puts } = await registryWith(undefined);
    const text = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, layers: [] });
    const plain = { bytes: Buffer.from(text), digest: sha256(text), mediaType: OCI_MANIFEST };
    expect(await updateReferrersFallback(client, 'r', plain)).toBeUndefined();
    expect(puts).toHaveLength(0);
  });
});
