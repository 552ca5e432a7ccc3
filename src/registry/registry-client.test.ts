import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { type AuthRequest, type AuthSend, createAuthClient } from '../auth/create-auth-client.js';
import type { CredentialSource } from '../auth/credentials/credential.js';
import { controlCharacters } from '../testing/control-characters.js';
import { type LoopbackHandler, loopbackServers } from '../testing/loopback-server.js';
import { rejection } from '../testing/rejection.js';
import { createTransport } from '../transport/create-transport.js';
import { DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST } from './media-types.js';
import { MAX_MANIFEST_BYTES, RegistryClient } from './registry-client.js';

const servers = loopbackServers();
afterEach(() => servers.closeAll());

const anonymous: CredentialSource = { find: async () => undefined };

/** A RegistryClient for a loopback registry, through the real auth client and transport. */
async function registryWith(handler: LoopbackHandler) {
  const server = await servers.start(handler);
  const auth = createAuthClient({
    send: createTransport({ env: {}, maxRetries: 0, sleep: async () => {} }),
    credentials: anonymous,
  });
  const seen: AuthRequest[] = [];
  const send: AuthSend = (req) => {
    seen.push(req);
    return auth.send(req);
  };
  return { server, seen, client: new RegistryClient({ registry: server.host, send }) };
}

const sha256 = (bytes: Buffer | string) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

// Odd spacing and key order on purpose: the client must keep the bytes, not re-serialize them.
const MANIFEST = Buffer.from(
  '{\n   "schemaVersion": 2,\n "mediaType": "application/vnd.oci.image.manifest.v1+json",  "layers": [] }\n',
);

describe('RegistryClient.getManifest', () => {
  it('returns the bytes exactly as served, with the digest computed from them', async () => {
    const { client, server, seen } = await registryWith((_req, res) => {
      res.writeHead(200, {
        'content-type': OCI_MANIFEST,
        // A wrong hint: the digest must come from the bytes.
        'docker-content-digest': sha256('something else'),
      });
      res.end(MANIFEST);
    });
    const manifest = await client.getManifest('a/b', 'latest');
    expect(manifest.bytes.equals(MANIFEST)).toBe(true);
    expect(manifest.digest).toBe(sha256(MANIFEST));
    expect(manifest.mediaType).toBe(OCI_MANIFEST);
    const [request] = server.requests;
    expect(request?.url.pathname).toBe('/v2/a/b/manifests/latest');
    expect(request?.headers.accept).toContain(OCI_INDEX);
    expect(request?.headers.accept).toContain(DOCKER_MANIFEST);
    expect(seen[0]?.scopes).toEqual([{ type: 'repository', name: 'a/b', actions: ['pull'] }]);
  });

  it('takes the media type from the document when the registry says only application/json', async () => {
    const { client } = await registryWith((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.end(MANIFEST);
    });
    expect((await client.getManifest('a/b', 'v1')).mediaType).toBe(OCI_MANIFEST);
  });

  it('accepts bytes that match the digest asked for', async () => {
    const digest = sha256(MANIFEST);
    const { client, server } = await registryWith((_req, res) => {
      res.writeHead(200, { 'content-type': OCI_MANIFEST });
      res.end(MANIFEST);
    });
    const manifest = await client.getManifest('a/b', digest);
    expect(manifest.digest).toBe(digest);
    expect(manifest.bytes.equals(MANIFEST)).toBe(true);
    expect(decodeURIComponent(server.requests[0]?.url.pathname ?? '')).toBe(`/v2/a/b/manifests/${digest}`);
  });

  it('refuses with ERR_DIGEST_MISMATCH bytes that do not match the digest asked for', async () => {
    const asked = sha256(MANIFEST);
    const { client } = await registryWith((_req, res) => {
      res.writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': asked });
      res.end(Buffer.concat([MANIFEST, Buffer.from(' ')]));
    });
    const err = await rejection(client.getManifest('a/b', asked));
    expect(err.code).toBe('ERR_DIGEST_MISMATCH');
    expect(err.message).toContain(asked);
    expect(err.message).toContain(sha256(Buffer.concat([MANIFEST, Buffer.from(' ')])));
  });

  it.each([
    ['with a Content-Length', true],
    ['chunked, without a Content-Length', false],
  ])('refuses a manifest over 4 MiB (%s) with ERR_TOO_LARGE', async (_what, withLength) => {
    const big = Buffer.alloc(MAX_MANIFEST_BYTES + 1, 0x20);
    const { client } = await registryWith((_req, res) => {
      res.writeHead(200, {
        'content-type': OCI_MANIFEST,
        ...(withLength ? { 'content-length': String(big.length) } : {}),
      });
      res.end(big);
    });
    const err = await rejection(client.getManifest('a/b', 'huge'));
    expect(err.code).toBe('ERR_TOO_LARGE');
    expect(err.message).toContain(String(MAX_MANIFEST_BYTES));
  });

  it('turns a 404 MANIFEST_UNKNOWN into ERR_MANIFEST_UNKNOWN, keeping the registry’s errors and status', async () => {
    const errors = [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown', detail: { Tag: 'nope' } }];
    const { client } = await registryWith((_req, res) => sendJson(res, 404, { errors }));
    const err = await rejection(client.getManifest('a/b', 'nope'));
    expect(err.code).toBe('ERR_MANIFEST_UNKNOWN');
    expect(err.status).toBe(404);
    expect(err.registryErrors).toEqual(errors);
    expect(err.message).toContain(`a/b:nope`);
    expect(err.message).toContain('MANIFEST_UNKNOWN: manifest unknown');
  });

  it('shows the control characters of a hostile error message as escapes, on one line', async () => {
    const hostile = '\u001b]0;pwned\u0007\u001b[2K\rregauth: Login Succeeded\nfake line\u009b2K';
    const { client } = await registryWith((_req, res) =>
      sendJson(
        res,
        404,
        { errors: [{ code: 'MANIFEST_UNKNOWN\u001b[31m', message: hostile }] },
        {
          'retry-after': '1',
        },
      ),
    );
    const err = await rejection(client.getManifest('a/b', 'nope'));
    expect(err.message).toContain(
      'MANIFEST_UNKNOWN\\x1b[31m: \\x1b]0;pwned\\x07\\x1b[2K\\rregauth: Login Succeeded\\nfake line\\x9b2K',
    );
    expect(controlCharacters(err.message, { lineBreaks: true })).toEqual([]);
    // The envelope itself is kept as sent, for callers that inspect it.
    expect(err.registryErrors[0]?.message).toBe(hostile);
  });

  it('turns a 403 DENIED into ERR_DENIED', async () => {
    const { client } = await registryWith((_req, res) =>
      sendJson(res, 403, {
        errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }],
      }),
    );
    const err = await rejection(client.getManifest('a/b', 'latest'));
    expect(err.code).toBe('ERR_DENIED');
    expect(err.status).toBe(403);
    expect(err.registryErrors[0]?.code).toBe('DENIED');
  });
});

describe('RegistryClient.headManifest', () => {
  it('reads the digest from Docker-Content-Digest, with media type and size', async () => {
    const digest = sha256(MANIFEST);
    const { client, server } = await registryWith((_req, res) => {
      res.writeHead(200, {
        'content-type': OCI_MANIFEST,
        'content-length': String(MANIFEST.length),
        'docker-content-digest': digest,
      });
      res.end();
    });
    const head = await client.headManifest('a/b', 'latest');
    expect(head.digest).toBe(digest);
    expect(head.mediaType).toBe(OCI_MANIFEST);
    expect(head.size).toBe(MANIFEST.length);
    expect(server.requests[0]?.method).toBe('HEAD');
  });

  it('turns a 404 without a body into ERR_MANIFEST_UNKNOWN', async () => {
    const { client } = await registryWith((_req, res) => {
      res.statusCode = 404;
      res.end();
    });
    const err = await rejection(client.headManifest('a/b', 'gone'));
    expect(err.code).toBe('ERR_MANIFEST_UNKNOWN');
    expect(err.status).toBe(404);
  });
});

describe('RegistryClient.listTags', () => {
  it('follows Link rel="next" across pages and returns every tag in order', async () => {
    const all = Array.from({ length: 250 }, (_, i) => `t${i}`);
    const { client, server } = await registryWith((req, res) => {
      const n = Number(req.url.searchParams.get('n'));
      const last = req.url.searchParams.get('last');
      const start = last === null ? 0 : all.indexOf(last) + 1;
      const page = all.slice(start, start + n);
      const end = page[page.length - 1];
      const link = start + n < all.length ? { link: `</v2/a/tags/list?last=${end}&n=${n}>; rel="next"` } : {};
      sendJson(res, 200, { name: 'a', tags: page }, link);
    });
    expect(await client.listTags('a', { pageSize: 100 })).toEqual(all);
    expect(server.requests.map((r) => r.target)).toEqual([
      '/v2/a/tags/list?n=100',
      '/v2/a/tags/list?last=t99&n=100',
      '/v2/a/tags/list?last=t199&n=100',
    ]);
  });

  it('does not follow a Link to another origin', async () => {
    const other = await servers.start((_req, res) => sendJson(res, 200, { tags: ['stolen'] }));
    const { client, server } = await registryWith((_req, res) =>
      sendJson(res, 200, { tags: ['t1'] }, { link: `<${other.origin}/v2/a/tags/list?last=t1>; rel="next"` }),
    );
    expect(await client.listTags('a')).toEqual(['t1']);
    expect(server.requests).toHaveLength(1);
    expect(other.requests).toHaveLength(0);
  });

  it('gives [] for "tags": null', async () => {
    const { client } = await registryWith((_req, res) => sendJson(res, 200, { name: 'a', tags: null }));
    expect(await client.listTags('a')).toEqual([]);
  });

  it('turns a 404 NAME_UNKNOWN into ERR_NAME_UNKNOWN', async () => {
    const { client } = await registryWith((_req, res) =>
      sendJson(res, 404, {
        errors: [{ code: 'NAME_UNKNOWN', message: 'repository name not known to registry' }],
      }),
    );
    const err = await rejection(client.listTags('nope'));
    expect(err.code).toBe('ERR_NAME_UNKNOWN');
    expect(err.status).toBe(404);
  });
});

describe('RegistryClient.listTags against a hostile registry', () => {
  /** The registry links on forever, but only this many times: the attack stays bounded in any client. */
  const LINKS_AT_MOST = 200;

  it('stops with ERR_REGISTRY when a next link leads back to a page already read', async () => {
    const { client, server } = await registryWith((req, res) => {
      const back = req.url.searchParams.get('last') === 'b' ? '' : 'last=b&';
      const link =
        server.requests.length < LINKS_AT_MOST ? { link: `</v2/a/tags/list?${back}n=100>; rel="next"` } : {};
      sendJson(res, 200, { tags: [`t${server.requests.length}`] }, link);
    });
    const err = await rejection(client.listTags('a', { pageSize: 100 }));
    expect(err.code).toBe('ERR_REGISTRY');
    expect(err.message).toBe(
      `tags of ${server.host}/a: page 2 links to page 1 as the next one; the registry's paging loops, stopping`,
    );
    expect(server.requests.map((r) => r.target)).toEqual([
      '/v2/a/tags/list?n=100',
      '/v2/a/tags/list?last=b&n=100',
    ]);
  });

  it('stops with ERR_TOO_LARGE after maxPages pages of an endless list', async () => {
    const { client, server } = await registryWith((_req, res) => {
      const n = server.requests.length;
      const link = n < LINKS_AT_MOST ? { link: `</v2/a/tags/list?last=t${n}&n=1>; rel="next"` } : {};
      sendJson(res, 200, { tags: [`t${n}`] }, link);
    });
    const err = await rejection(client.listTags('a', { pageSize: 1, maxPages: 50 }));
    expect(err.code).toBe('ERR_TOO_LARGE');
    expect(err.message).toBe(`tags of ${server.host}/a: more than 50 pages; stopping there`);
    expect(server.requests).toHaveLength(50);
  });

  it('stops with ERR_TOO_LARGE once the names pass maxEntries, before handing the page on', async () => {
    const { client, server } = await registryWith((_req, res) => {
      const n = server.requests.length;
      const tags = Array.from({ length: 1000 }, (_, i) => `p${n}-${i}`);
      const link = n < LINKS_AT_MOST ? { link: `</v2/a/tags/list?last=p${n}&n=1000>; rel="next"` } : {};
      sendJson(res, 200, { tags }, link);
    });
    const pages: string[][] = [];
    const err = await rejection(
      (async () => {
        for await (const page of client.tagPages('a', { maxEntries: 2500 })) pages.push(page);
      })(),
    );
    expect(err.code).toBe('ERR_TOO_LARGE');
    expect(err.message).toBe(`tags of ${server.host}/a: more than 2500 names; stopping there`);
    expect(pages.map((p) => p.length)).toEqual([1000, 1000]);
    expect(server.requests).toHaveLength(3);
  });

  it('stops with ERR_TOO_LARGE once the pages pass maxBytes', async () => {
    const { client, server } = await registryWith((_req, res) => {
      const n = server.requests.length;
      const link = n < LINKS_AT_MOST ? { link: `</v2/a/tags/list?last=x${n}>; rel="next"` } : {};
      sendJson(res, 200, { tags: ['x'.repeat(1000)] }, link);
    });
    const err = await rejection(client.catalog({ maxBytes: 5000 }));
    expect(err.code).toBe('ERR_TOO_LARGE');
    expect(err.message).toContain('more than 5000 bytes of pages');
    expect(server.requests).toHaveLength(5);
  });

  it('asks for the next page only when the caller takes it', async () => {
    const { client, server } = await registryWith((_req, res) => {
      const n = server.requests.length;
      sendJson(res, 200, { tags: [`t${n}`] }, { link: `</v2/a/tags/list?last=t${n}>; rel="next"` });
    });
    const pages = client.tagPages('a');
    expect((await pages.next()).value).toEqual(['t1']);
    expect((await pages.next()).value).toEqual(['t2']);
    expect(server.requests).toHaveLength(2);
    await pages.return(undefined);
    expect(server.requests).toHaveLength(2);
  });
});

describe('RegistryClient.catalog', () => {
  it('asks for the registry:catalog:* scope and returns the repositories of every page', async () => {
    const { client, seen, server } = await registryWith((req, res) => {
      if (req.url.searchParams.has('last')) return sendJson(res, 200, { repositories: ['c/d'] });
      sendJson(
        res,
        200,
        { repositories: ['a/b', 'b/c'] },
        { link: '</v2/_catalog?last=b%2Fc&n=2>; rel="next"' },
      );
    });
    expect(await client.catalog({ pageSize: 2 })).toEqual(['a/b', 'b/c', 'c/d']);
    expect(seen).toHaveLength(2);
    for (const req of seen) {
      expect(req.scopes).toEqual([{ type: 'registry', name: 'catalog', actions: ['*'] }]);
      expect(req.registry).toBe(server.host);
    }
    expect(server.requests.map((r) => r.target)).toEqual(['/v2/_catalog?n=2', '/v2/_catalog?last=b%2Fc&n=2']);
  });
});

describe('RegistryClient with a token realm', () => {
  it('gets a manifest from a registry that wants a Bearer token', async () => {
    const { client, server } = await registryWith((req, res) => {
      if (req.url.pathname === '/token') return sendJson(res, 200, { token: 'tok' });
      if (req.headers.authorization !== 'Bearer tok') {
        res.writeHead(401, {
          'www-authenticate': `Bearer realm="/token",service="reg",scope="repository:a/b:pull"`,
        });
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': OCI_MANIFEST });
      res.end(MANIFEST);
    });
    const manifest = await client.getManifest('a/b', 'latest');
    expect(manifest.digest).toBe(sha256(MANIFEST));
    expect(server.requests.map((r) => r.url.pathname)).toEqual([
      '/v2/a/b/manifests/latest',
      '/token',
      '/v2/a/b/manifests/latest',
    ]);
  });
});

describe('RegistryClient.referrers', () => {
  const subject = sha256('subject');
  const sig = {
    mediaType: OCI_MANIFEST,
    digest: sha256('sig'),
    size: 3,
    artifactType: 'application/vnd.example.sig',
  };
  const sbom = {
    mediaType: OCI_MANIFEST,
    digest: sha256('sbom'),
    size: 4,
    artifactType: 'application/spdx+json',
  };

  it('uses the OCI 1.1 referrers API and filters by artifact type even when the server does not', async () => {
    const { client, server } = await registryWith((req, res) => {
      sendJson(
        res,
        200,
        { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [sig, sbom] },
        { 'content-type': OCI_INDEX },
      );
      expect(req.url.pathname).toBe(`/v2/team/app/referrers/${subject}`);
    });
    expect((await client.referrers('team/app', subject)).manifests).toEqual([sig, sbom]);
    expect((await client.referrers('team/app', subject, 'application/spdx+json')).manifests).toEqual([sbom]);
    expect(server.requests[1]?.url.searchParams.get('artifactType')).toBe('application/spdx+json');
  });

  it('falls back to the sha256-<hex> tag when the registry has no referrers API', async () => {
    const { client, server } = await registryWith((req, res) => {
      if (req.url.pathname.includes('/referrers/'))
        return sendJson(res, 404, { errors: [{ code: 'NOT_FOUND' }] });
      if (req.url.pathname === `/v2/team/app/manifests/sha256-${subject.slice(7)}`) {
        res.writeHead(200, { 'content-type': OCI_INDEX });
        res.end(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [sig] }));
        return;
      }
      sendJson(res, 404, { errors: [{ code: 'MANIFEST_UNKNOWN' }] });
    });
    expect((await client.referrers('team/app', subject)).manifests).toEqual([sig]);
    expect(server.requests.map((r) => r.url.pathname)).toEqual([
      `/v2/team/app/referrers/${subject}`,
      `/v2/team/app/manifests/sha256-${subject.slice(7)}`,
    ]);
  });

  it('refuses a referrers answer that is no image index, naming the fallback tag it came from', async () => {
    const { client } = await registryWith((req, res) => {
      if (req.url.pathname.includes('/referrers/'))
        return sendJson(res, 404, { errors: [{ code: 'NOT_FOUND' }] });
      res.writeHead(200, { 'content-type': OCI_INDEX });
      res.end(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_INDEX,
          manifests: [{ ...sig, digest: 'sha256:zz' }],
        }),
      );
    });
    const err = await client.referrers('team/app', subject).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_REGISTRY' });
    expect((err as Error).message).toContain(`(the sha256-${subject.slice(7)} tag)`);
    expect((err as Error).message).toContain('manifests[0] has a digest that is not one');
  });

  it('answers an empty list when neither the API nor the fallback tag exists', async () => {
    const { client } = await registryWith((_req, res) =>
      sendJson(res, 404, { errors: [{ code: 'MANIFEST_UNKNOWN' }] }),
    );
    expect((await client.referrers('team/app', subject)).manifests).toEqual([]);
  });
});

describe('RegistryClient.putManifestDetailed', () => {
  it("returns the registry's OCI-Subject answer, and nothing when it sends none", async () => {
    let subject: string | undefined = sha256('subject');
    const { client } = await registryWith((_req, res) => {
      res.writeHead(201, subject === undefined ? {} : { 'oci-subject': subject });
      res.end();
    });
    expect(await client.putManifestDetailed('a/b', 'v1', MANIFEST, OCI_MANIFEST)).toEqual({
      digest: sha256(MANIFEST),
      subject: sha256('subject'),
    });
    subject = undefined;
    expect(await client.putManifestDetailed('a/b', 'v1', MANIFEST, OCI_MANIFEST)).toEqual({
      digest: sha256(MANIFEST),
    });
  });
});

describe('RegistryClient blob requests', () => {
  it('refuse a digest that is not one before sending: it would go into the URL path', async () => {
    const { seen, client } = await registryWith((_req, res) => sendJson(res, 200, {}));
    for (const bad of ['../../../x', 'sha256:..%2f..', 'sha256:abc']) {
      await expect(client.getBlob('alice/app', bad)).rejects.toMatchObject({ code: 'ERR_INVALID_DIGEST' });
      await expect(client.headBlob('alice/app', bad)).rejects.toMatchObject({ code: 'ERR_INVALID_DIGEST' });
    }
    expect(seen).toEqual([]);
  });
});
