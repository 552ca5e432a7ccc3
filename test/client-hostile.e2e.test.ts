import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { controlCharacters } from '../src/testing/control-characters.js';
import {
  type LoopbackServer,
  loopbackServers,
  type RecordedRequest,
} from '../src/testing/loopback-server.js';
import { type CliHome, createCliHome } from './harness/regauth-cli.js';
import { type RegistryHandle, startRegistry } from './harness/registry.js';
import { REGAUTH_BIN } from './harness/token-server.js';

/**
 * The CLI against registries, realms and storage hosts that attack it, each a small node:http
 * server on loopback: leaking secrets through --trace, driving the terminal with escape
 * sequences, and making pulls and tag listings fetch without end. Every attack is bounded on
 * the server side too, so a client without the defence fails the test instead of hanging.
 */

const servers = loopbackServers();
afterEach(() => servers.closeAll());

const sha256 = (data: Buffer | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const host = (server: LoopbackServer) => server.host;

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** A registry that wants a Bearer token from its own /token realm, then hands requests to `serve`. */
async function tokenRegistry(
  token: string,
  serve: (req: RecordedRequest, res: ServerResponse) => void,
  realm: (req: RecordedRequest, res: ServerResponse) => void = (_req, res) =>
    sendJson(res, 200, { token, expires_in: 300 }),
): Promise<LoopbackServer> {
  const server: LoopbackServer = await servers.start((req, res) => {
    if (req.url.pathname === '/token') return realm(req, res);
    if (req.headers.authorization !== `Bearer ${token}`) {
      return sendJson(
        res,
        401,
        { errors: [{ code: 'UNAUTHORIZED' }] },
        {
          'www-authenticate': `Bearer realm="${server.origin}/token",service="hostile"`,
        },
      );
    }
    serve(req, res);
  });
  return server;
}

/** Every character sequence a hostile server used below to act on the terminal. */
const TERMINAL_ATTACKS = ['\u001b]0;', '\u0007', '\u001b[2K', '\r', '\u009b'];

describe('--trace against a storage redirect and a realm that leak secrets', () => {
  let cli: CliHome;
  beforeAll(async () => {
    cli = await createCliHome();
  });
  afterAll(async () => {
    await cli?.dispose();
  });

  it('prints no signature, session token or token of a blob GET redirected to a presigned URL', async () => {
    const secrets = {
      signature: 'f1e2d3c4b5a697887766554433221100aabbccdd',
      securityToken: 'FwoGZXIvYXdzEHostileSessionToken',
      credential: 'AKIAHOSTILEEXAMPLE',
      cdnToken: 'cdn-token-5a1e9f0b7c',
      issued: 'registry-token-38c1d7e2',
      password: 'pw-hostile-2b9e',
    };
    const blob = Buffer.from('layer bytes, byte for byte');
    const storage = await servers.start((_req, res) => {
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'x-amz-security-token': secrets.securityToken,
        'content-location': `/copy?token=${secrets.cdnToken}`,
      });
      res.end(blob);
    });
    const presigned =
      `${storage.origin}/docker/registry/v2/blobs/sha256/data?X-Amz-Algorithm=AWS4-HMAC-SHA256` +
      `&X-Amz-Credential=${secrets.credential}%2F20240101%2Fus-east-1%2Fs3%2Faws4_request` +
      `&X-Amz-Security-Token=${secrets.securityToken}&X-Amz-Signature=${secrets.signature}` +
      `&sig=${secrets.signature}&token=${secrets.cdnToken}`;
    const registry = await tokenRegistry(secrets.issued, (req, res) => {
      if (!req.url.pathname.includes('/blobs/')) return sendJson(res, 200, {});
      res.writeHead(307, { location: presigned });
      res.end();
    });
    const res = await cli.run(
      ['blob', `${host(registry)}/team/app@${sha256(blob)}`, '--trace', '--no-token-cache'],
      {
        env: { REGAUTH_USERNAME: 'alice', REGAUTH_PASSWORD: secrets.password },
      },
    );
    expect(res.code).toBe(0);
    expect(res.stdout.equals(blob)).toBe(true);
    // The storage host really was sent the secrets, and the trace shows that hop without them.
    expect(storage.requests[0]?.url.searchParams.get('X-Amz-Signature')).toBe(secrets.signature);
    for (const secret of Object.values(secrets)) expect(res.stderr).not.toContain(secret);
    expect(res.stderr).toMatch(
      /^GET \/docker\/registry\/v2\/blobs\/sha256\/data\?.*X-Amz-Signature=redacted/m,
    );
    expect(res.stderr).toMatch(
      /^Location: http:\/\/127\.0\.0\.1:\d+\/docker\/registry\/v2\/blobs\/sha256\/data\?/m,
    );
    expect(res.stderr).toMatch(/^X-Amz-Security-Token: <redacted>$/m);
  });

  it('prints no token from a realm whose answer is not JSON, whatever its status', async () => {
    const token = 'opaque-realm-token-7f3b2a91';
    const body = `token=${token}&expires_in=300`;
    for (const [status, type] of [
      [200, 'application/json'],
      [401, 'text/plain'],
    ] as const) {
      const registry = await tokenRegistry(
        'never-issued',
        () => {},
        (_req, res) => {
          res.writeHead(status, { 'content-type': type });
          res.end(body);
        },
      );
      const res = await cli.run(['manifest', `${host(registry)}/team/app:v1`, '--trace', '--no-token-cache']);
      expect(res.code).toBe(1);
      expect(res.stderr).not.toContain(token);
      expect(res.stderr).toContain(
        `# a ${body.length}-byte body that is not JSON, not shown (it may hold secrets)`,
      );
    }
  });
});

describe('terminal escape sequences from a hostile registry and realm', () => {
  let cli: CliHome;
  beforeAll(async () => {
    cli = await createCliHome();
  });
  afterAll(async () => {
    await cli?.dispose();
  });

  /** A window title, a line erase, a fake prompt on a carriage return, C1 CSI: all at once. */
  const HOSTILE = '\u001b]0;owned\u0007\u001b[2K\rregauth: Login Succeeded\nPassword: \u009b2J';

  const expectNoTerminalControl = (stderr: string) => {
    for (const attack of TERMINAL_ATTACKS) expect(stderr).not.toContain(attack);
    expect(controlCharacters(stderr)).toEqual([]);
  };

  it("shows a registry's hostile error message, headers and body as escapes, with and without --trace", async () => {
    const registry = await servers.start((_req, res) =>
      sendJson(
        res,
        404,
        { errors: [{ code: 'MANIFEST_UNKNOWN', message: HOSTILE, detail: HOSTILE }] },
        {
          // Node refuses C0 controls in a header, but a C1 byte passes its parser.
          'x-registry-note': 'ok\u009b2Jok',
        },
      ),
    );
    for (const extra of [[], ['--trace']]) {
      const res = await cli.run(['manifest', `${host(registry)}/team/app:v1`, ...extra]);
      expect(res.code).toBe(1);
      expectNoTerminalControl(res.stderr);
      expect(res.stderr).toContain(
        'MANIFEST_UNKNOWN: \\x1b]0;owned\\x07\\x1b[2K\\rregauth: Login Succeeded\\nPassword: \\x9b2J',
      );
    }
  });

  it("shows a realm's hostile error description as escapes", async () => {
    const registry = await tokenRegistry(
      'never-issued',
      () => {},
      (_req, res) => sendJson(res, 401, { error: 'invalid_grant', error_description: HOSTILE }),
    );
    const res = await cli.run(['manifest', `${host(registry)}/team/app:v1`, '--trace', '--no-token-cache'], {
      env: { REGAUTH_USERNAME: 'alice', REGAUTH_PASSWORD: 'pw-3c1a' },
    });
    expect(res.code).toBe(1);
    expectNoTerminalControl(res.stderr);
    expect(res.stderr).toContain('refused the credentials for alice');
    expect(res.stderr).toContain('\\x1b]0;owned');
  });

  it('shows the body a parser choked on as escapes (a referrers answer that is not JSON)', async () => {
    const registry = await servers.start((_req, res) => {
      res.writeHead(200, { 'content-type': OCI_INDEX });
      res.end(HOSTILE);
    });
    const res = await cli.run(['referrers', `${host(registry)}/team/app@${sha256('x')}`]);
    expect(res.code).toBe(1);
    expectNoTerminalControl(res.stderr);
    expect(res.stderr).toContain('the registry sent an answer that is not an image index (it is not JSON)');
  });

  it('lists hostile tag names one a line, their control characters escaped', async () => {
    const registry = await servers.start((_req, res) =>
      sendJson(res, 200, { name: 'team/app', tags: ['v1', HOSTILE, 'v2'] }),
    );
    const res = await cli.run(['tags', `${host(registry)}/team/app`]);
    expect(res.code).toBe(0);
    expect(res.stdout.toString().split('\n')).toEqual([
      'v1',
      '\\x1b]0;owned\\x07\\x1b[2K\\rregauth: Login Succeeded\\nPassword: \\x9b2J',
      'v2',
      '',
    ]);
  });
});

/** Serves each path at most this many times, then 404: an unbounded walk fails fast instead of running on. */
const SERVES_PER_PATH = 20;

interface HostileImage {
  readonly root: Buffer;
  readonly child: Buffer;
  readonly leaf: Buffer;
  readonly config: Buffer;
  readonly layer: Buffer;
}

/** An index of 1,000 entries all naming one child index, whose 1,000 entries all name one image. */
function fanOutImage(): HostileImage {
  const config = Buffer.from(
    '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}',
  );
  const layer = Buffer.from('one small layer');
  const leaf = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: sha256(config),
        size: config.length,
      },
      layers: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length },
      ],
    }),
  );
  const entries = (m: Buffer, mediaType: string) =>
    Array.from({ length: 1000 }, () => ({
      mediaType,
      digest: sha256(m),
      size: m.length,
      platform: { os: 'linux', architecture: 'amd64' },
    }));
  const child = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: entries(leaf, OCI_MANIFEST) }),
  );
  const root = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: entries(child, OCI_INDEX) }),
  );
  return { root, child, leaf, config, layer };
}

async function fanOutRegistry(image: HostileImage) {
  const manifests = new Map([
    ['v1', image.root],
    [sha256(image.root), image.root],
    [sha256(image.child), image.child],
    [sha256(image.leaf), image.leaf],
  ]);
  const blobs = new Map([
    [sha256(image.config), image.config],
    [sha256(image.layer), image.layer],
  ]);
  const served = new Map<string, number>();
  const server = await servers.start((req, res) => {
    const path = req.url.pathname;
    served.set(path, (served.get(path) ?? 0) + 1);
    if (path === '/v2/') return sendJson(res, 200, {});
    const [, kind, ref] = /^\/v2\/evil\/app\/(manifests|blobs)\/(.+)$/.exec(path) ?? [];
    const body = kind === 'manifests' ? manifests.get(ref ?? '') : blobs.get(ref ?? '');
    if (!body || (served.get(path) ?? 0) > SERVES_PER_PATH) {
      return sendJson(res, 404, {
        errors: [{ code: kind === 'blobs' ? 'BLOB_UNKNOWN' : 'MANIFEST_UNKNOWN' }],
      });
    }
    const type =
      kind === 'blobs' ? 'application/octet-stream' : body === image.leaf ? OCI_MANIFEST : OCI_INDEX;
    res.writeHead(200, { 'content-type': type, 'content-length': String(body.length) });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  /** GETs per manifest or blob path: the walk's request count. */
  const gets = (what: 'manifests' | 'blobs', ref: string) =>
    server.requests.filter((r) => r.method === 'GET' && r.url.pathname === `/v2/evil/app/${what}/${ref}`)
      .length;
  return { server, gets };
}

describe('fan-out and endless paging from a hostile registry', () => {
  let cli: CliHome;
  let work: string;
  let destination: RegistryHandle;
  beforeAll(async () => {
    cli = await createCliHome();
    work = await mkdtemp(join(tmpdir(), 'regauth-hostile-'));
    destination = await startRegistry();
  });
  afterAll(async () => {
    await destination?.stop();
    await cli?.dispose();
    await rm(work, { recursive: true, force: true });
  });

  it('pull --all-platforms fetches each manifest and blob of a 1000×1000 fan-out index once', async () => {
    const image = fanOutImage();
    const { server, gets } = await fanOutRegistry(image);
    const dir = join(work, 'fan-out');
    const res = await cli.run(['pull', `${host(server)}/evil/app:v1`, dir, '--all-platforms', '--quiet']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(gets('manifests', 'v1')).toBe(1);
    expect(gets('manifests', sha256(image.child))).toBe(1);
    expect(gets('manifests', sha256(image.leaf))).toBe(1);
    expect(gets('blobs', sha256(image.config))).toBe(1);
    expect(gets('blobs', sha256(image.layer))).toBe(1);
    const written = await readdir(join(dir, 'blobs', 'sha256'));
    expect(written.sort()).toEqual(
      [image.root, image.child, image.leaf, image.config, image.layer].map((b) => sha256(b).slice(7)).sort(),
    );
  });

  it('copy fetches each manifest of a 1000×1000 fan-out index once and pushes the image whole', async () => {
    const image = fanOutImage();
    const { server, gets } = await fanOutRegistry(image);
    const res = await cli.run([
      'copy',
      `${host(server)}/evil/app:v1`,
      `${destination.host}/copied/app:v1`,
      '--json',
      '--quiet',
    ]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout.toString()).digest).toBe(sha256(image.root));
    expect(gets('manifests', sha256(image.child))).toBe(1);
    expect(gets('manifests', sha256(image.leaf))).toBe(1);
    const pushed = await fetch(`${destination.url}/v2/copied/app/manifests/${sha256(image.child)}`, {
      headers: { accept: OCI_INDEX },
    });
    expect(Buffer.from(await pushed.arrayBuffer()).equals(image.child)).toBe(true);
  });

  /** The hostile registry links on forever, but only this many times: an unbounded client still ends. */
  const LINKS_AT_MOST = 30;

  it('tags stops an endless tag list with a clear error once it passes a million names', async () => {
    const perPage = 100_000;
    const registry = await servers.start((req, res) => {
      const page = Number(req.url.searchParams.get('page') ?? '0');
      const tags = Array.from({ length: perPage }, (_, i) => `p${page}-${i}`);
      const link =
        page < LINKS_AT_MOST ? { link: `</v2/evil/app/tags/list?page=${page + 1}>; rel="next"` } : {};
      sendJson(res, 200, { name: 'evil/app', tags }, link);
    });
    const res = await cli.run(['tags', `${host(registry)}/evil/app`]);
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(
      `regauth: error: tags of ${host(registry)}/evil/app: more than 1000000 names; stopping there\n`,
    );
    expect(registry.requests).toHaveLength(11);
    // The ten pages within the limit were printed as they came.
    const lines = res.stdout.toString().split('\n');
    expect(lines).toHaveLength(10 * perPage + 1);
    expect(lines[10 * perPage - 1]).toBe(`p9-${perPage - 1}`);
  });

  it('tags stops a tag list whose next link loops back, after two pages', async () => {
    const registry = await servers.start((req, res) => {
      // The second page links back to the first page's URL.
      const next = req.url.searchParams.has('last') ? '?n=1000' : '?last=b';
      const link =
        registry.requests.length < LINKS_AT_MOST
          ? { link: `</v2/evil/app/tags/list${next}>; rel="next"` }
          : {};
      sendJson(res, 200, { tags: [`t${registry.requests.length}`] }, link);
    });
    const res = await cli.run(['tags', `${host(registry)}/evil/app`]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(
      "page 2 links to page 1 as the next one; the registry's paging loops, stopping",
    );
    expect(registry.requests).toHaveLength(2);
    expect(res.stdout.toString()).toBe('t1\nt2\n');
  });

  it('tags prints the first page before the registry has answered for the second', async () => {
    let firstPageShown: () => void = () => {};
    const shown = new Promise<void>((resolve) => {
      firstPageShown = resolve;
    });
    let shownBeforeSecondPage = false;
    const registry = await servers.start(async (req, res) => {
      if (!req.url.searchParams.has('last')) {
        return sendJson(
          res,
          200,
          { tags: ['first'] },
          { link: '</v2/evil/app/tags/list?last=first>; rel="next"' },
        );
      }
      // A client that holds every page until the end would never show the first: give up after a while.
      shownBeforeSecondPage = await Promise.race([
        shown.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), 10_000)),
      ]);
      sendJson(res, 200, { tags: ['second'] });
    });
    const child = spawn(REGAUTH_BIN, ['tags', `${host(registry)}/evil/app`], {
      env: cli.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout.includes('first\n')) firstPageShown();
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(0);
    expect(stdout).toBe('first\nsecond\n');
    expect(shownBeforeSecondPage).toBe(true);
  });
});
