import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createAuthClient } from '../auth/create-auth-client.js';
import { OCI_INDEX, OCI_MANIFEST } from '../registry/media-types.js';
import { RegistryClient } from '../registry/registry-client.js';
import { loopbackServers } from '../testing/loopback-server.js';
import { rejection } from '../testing/rejection.js';
import { createTransport } from '../transport/create-transport.js';
import {
  collectManifests,
  type FetchedManifest,
  fetched,
  MAX_INDEX_DEPTH,
  MAX_MANIFESTS_PER_IMAGE,
} from './collect-manifests.js';
import type { LayoutDescriptor } from './oci-layout.js';

const servers = loopbackServers();
afterEach(() => servers.closeAll());

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** A registry serves a manifest this many times at most, then answers 404: the attack stays bounded. */
const SERVES_PER_DIGEST = 20;

interface Stored {
  readonly bytes: Buffer;
  readonly mediaType: string;
  readonly descriptor: LayoutDescriptor;
}

function store(value: unknown, mediaType: string): Stored {
  const bytes = Buffer.from(JSON.stringify(value));
  return { bytes, mediaType, descriptor: { mediaType, digest: sha256(bytes), size: bytes.length } };
}

const image = (n: number) =>
  store(
    {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: `sha256:${'c'.repeat(64)}`,
        size: 2,
      },
      layers: [
        {
          mediaType: 'application/vnd.oci.image.layer.v1.tar',
          digest: `sha256:${n.toString(16).padStart(64, '0')}`,
          size: 1,
        },
      ],
    },
    OCI_MANIFEST,
  );
const index = (children: readonly LayoutDescriptor[]) =>
  store({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: children }, OCI_INDEX);

/**
 * A hostile registry on loopback serving `manifests` by digest, counting the GETs of each; the
 * walk loads through the real RegistryClient, auth client and transport, as a pull does.
 */
async function walk(root: Stored, manifests: readonly Stored[], limits = {}) {
  const byDigest = new Map(manifests.map((m) => [m.descriptor.digest, m]));
  const gets = new Map<string, number>();
  const server = await servers.start((req, res) => {
    const digest = decodeURIComponent(req.url.pathname.split('/manifests/')[1] ?? '');
    const count = (gets.get(digest) ?? 0) + 1;
    gets.set(digest, count);
    const m = byDigest.get(digest);
    if (!m || count > SERVES_PER_DIGEST) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}');
      return;
    }
    res.writeHead(200, { 'content-type': m.mediaType });
    res.end(m.bytes);
  });
  const auth = createAuthClient({
    send: createTransport({ env: {}, maxRetries: 0 }),
    credentials: { find: async () => undefined },
  });
  const client = new RegistryClient({ registry: server.host, send: auth.send });
  const load = async (d: LayoutDescriptor): Promise<FetchedManifest> =>
    fetched(await client.getManifest('evil/app', d.digest), `manifest ${d.digest}`, d.platform);
  const rootManifest = fetched(
    { bytes: root.bytes, mediaType: root.mediaType, digest: root.descriptor.digest },
    'root',
  );
  return { result: collectManifests(rootManifest, load, limits), gets, server };
}

describe('collectManifests', () => {
  it('loads a child named by every entry of an index once, and its own children once', async () => {
    const leaf = image(1);
    const child = index(Array.from({ length: 1000 }, () => leaf.descriptor));
    const root = index(Array.from({ length: 1000 }, () => child.descriptor));
    const { result, gets } = await walk(root, [child, leaf]);
    const { manifests, blobs } = await result;
    expect(Object.fromEntries(gets)).toEqual({ [child.descriptor.digest]: 1, [leaf.descriptor.digest]: 1 });
    // Children before the index that names them, each once.
    expect(manifests.map((m) => m.digest)).toEqual([
      leaf.descriptor.digest,
      child.descriptor.digest,
      root.descriptor.digest,
    ]);
    expect(blobs.map((b) => b.digest)).toEqual([
      `sha256:${'c'.repeat(64)}`,
      `sha256:${'1'.padStart(64, '0')}`,
    ]);
  });

  it('loads a manifest that two indexes share once, before either index', async () => {
    const shared = image(1);
    const a = index([shared.descriptor, image(2).descriptor]);
    const b = index([shared.descriptor]);
    const root = index([a.descriptor, b.descriptor]);
    const { result, gets } = await walk(root, [a, b, shared, image(2)]);
    const { manifests } = await result;
    expect([...gets.values()]).toEqual([1, 1, 1, 1]);
    const order = manifests.map((m) => m.digest);
    expect(order).toHaveLength(5);
    expect(order.indexOf(shared.descriptor.digest)).toBeLessThan(order.indexOf(b.descriptor.digest));
  });

  it(`refuses an index naming more than MAX_MANIFESTS_PER_IMAGE (${MAX_MANIFESTS_PER_IMAGE}) distinct manifests before loading one`, async () => {
    const children = Array.from({ length: MAX_MANIFESTS_PER_IMAGE }, (_, i) => image(i).descriptor);
    const root = index(children);
    const { result, server } = await walk(root, []);
    const err = await rejection(result);
    expect(err.code).toBe('ERR_TOO_LARGE');
    expect(err.message).toContain(`more than ${MAX_MANIFESTS_PER_IMAGE} distinct manifests`);
    expect(server.requests).toHaveLength(0);
  });

  it('walks an image of exactly maxManifests manifests, the root included', async () => {
    const children = Array.from({ length: 3 }, (_, i) => image(i));
    const { result } = await walk(index(children.map((c) => c.descriptor)), children, { maxManifests: 4 });
    expect((await result).manifests).toHaveLength(4);
  });

  it(`refuses indexes nested deeper than MAX_INDEX_DEPTH (${MAX_INDEX_DEPTH}) instead of leaving their children out`, async () => {
    const chain: Stored[] = [image(1)];
    for (let i = 0; i <= MAX_INDEX_DEPTH; i++) chain.push(index([(chain.at(-1) as Stored).descriptor]));
    const root = chain.pop() as Stored;
    const { result, server } = await walk(root, chain);
    const err = await rejection(result);
    expect(err.code).toBe('ERR_TOO_LARGE');
    expect(err.message).toContain(`more than ${MAX_INDEX_DEPTH} levels deep`);
    // The indexes down to the deepest allowed one were loaded; the image below it was not.
    expect(server.requests).toHaveLength(MAX_INDEX_DEPTH);
  });

  it('walks indexes nested exactly MAX_INDEX_DEPTH deep', async () => {
    const chain: Stored[] = [image(1)];
    for (let i = 1; i <= MAX_INDEX_DEPTH; i++) chain.push(index([(chain.at(-1) as Stored).descriptor]));
    const root = chain.pop() as Stored;
    const { result } = await walk(root, chain);
    expect((await result).manifests).toHaveLength(MAX_INDEX_DEPTH + 1);
  });

  it('stops once the manifests hold more bytes than allowed', async () => {
    const children = Array.from({ length: 10 }, (_, i) => image(i));
    const root = index(children.map((c) => c.descriptor));
    const limit = root.bytes.length + 3 * (children[0] as Stored).bytes.length;
    const { result, server } = await walk(root, children, { maxBytes: limit });
    const err = await rejection(result);
    expect(err.code).toBe('ERR_TOO_LARGE');
    expect(err.message).toContain(`more than ${limit} bytes`);
    expect(server.requests).toHaveLength(4);
  });
});
