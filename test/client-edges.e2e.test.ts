import { createHash } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type CliHome, createCliHome } from './harness/regauth-cli.js';

/** The seed's Docker Hub 401, byte for byte (docker-registry-auth-in-go.md). */
const SEED_401_BODY = `{
    "errors": [
        {
            "code": "UNAUTHORIZED",
            "detail": [
                {
                    "Action": "pull",
                    "Name": "odewahn/myalpine",
                    "Type": "repository"
                }
            ],
            "message": "authentication required"
        }
    ]
}
`;

const SEED_MANIFEST = `{
   "schemaVersion": 1,
   "name": "odewahn/myalpine",
   "tag": "latest",
   "architecture": "amd64",
   "fsLayers": [
      {
         "blobSum": "sha256:d0ca440e86378344053c79282fe959c9f288ef2ab031411295d87ef1250cfec3"
      }
   ],
   "history": []
}`;

const TOKEN = 'eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJzZWVkIjp0cnVlfQ.c2lnbmF0dXJl';

type Handler = (req: { method: string; url: string; headers: IncomingHttpHeaders }) => {
  status: number;
  headers?: Record<string, string>;
  body?: string;
};

async function serve(
  handler: Handler,
): Promise<{ server: Server; origin: string; seen: { url: string; headers: IncomingHttpHeaders }[] }> {
  const seen: { url: string; headers: IncomingHttpHeaders }[] = [];
  const server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    const out = handler({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    res.writeHead(out.status, out.headers);
    res.end(out.body ?? '');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { server, origin: `http://127.0.0.1:${port}`, seen };
}

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

describe('regauth against loopback replays of real registries', () => {
  let cli: CliHome;
  beforeAll(async () => {
    cli = await createCliHome();
  });
  afterAll(async () => {
    await cli?.dispose();
  });

  it("handles the seed's Docker Hub exchange: its 401, a token response with both token fields", async () => {
    let origin = '';
    const hub = await serve(({ url, headers }) => {
      if (url.startsWith('/token')) {
        const expected = `Basic ${Buffer.from('odewahn:mysecret').toString('base64')}`;
        if (headers.authorization !== expected)
          return { status: 401, body: '{"details":"incorrect username or password"}' };
        return {
          status: 200,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            token: TOKEN,
            access_token: TOKEN,
            expires_in: 300,
            issued_at: new Date().toISOString(),
          }),
        };
      }
      if (headers.authorization === `Bearer ${TOKEN}`) {
        return {
          status: 200,
          headers: {
            'content-type': 'application/vnd.docker.distribution.manifest.v1+prettyjws',
            'docker-content-digest':
              'sha256:dbe5a6b3f06ee68180a27bfce174c203fb58e1ab8bad0450db38a693e7b59f28',
            'docker-distribution-api-version': 'registry/2.0',
          },
          body: SEED_MANIFEST,
        };
      }
      return {
        status: 401,
        headers: {
          'content-type': 'application/json; charset=utf-8',
          'docker-distribution-api-version': 'registry/2.0',
          'strict-transport-security': 'max-age=31536000',
          'www-authenticate': `Bearer realm="${origin}/token",service="registry.docker.io",scope="repository:odewahn/myalpine:pull"`,
        },
        body: SEED_401_BODY,
      };
    });
    servers.push(hub.server);
    origin = hub.origin;
    const host = origin.slice('http://'.length);
    const res = await cli.run(
      ['manifest', `${host}/odewahn/myalpine:latest`, '--trace', '--no-token-cache'],
      {
        env: { REGAUTH_USERNAME: 'odewahn', REGAUTH_PASSWORD: 'mysecret' },
      },
    );
    expect(res.stderr).not.toContain('mysecret');
    expect(res.stderr).not.toContain(TOKEN);
    expect(res.code).toBe(0);
    expect(res.stdout.toString()).toBe(SEED_MANIFEST);
    expect(res.requests).toBe(3);
    const tokenRequest = new URL(hub.seen[1]?.url ?? '', origin);
    expect(tokenRequest.searchParams.get('service')).toBe('registry.docker.io');
    expect(tokenRequest.searchParams.getAll('scope')).toEqual(['repository:odewahn/myalpine:pull']);
    expect(res.stderr).toContain('"message": "authentication required"');
  });

  it('follows a manifest redirect to another origin without sending Authorization there', async () => {
    const storage = await serve(() => ({
      status: 200,
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      body: '{"schemaVersion":2}',
    }));
    servers.push(storage.server);
    let origin = '';
    const registry = await serve(({ url, headers }) => {
      if (url.startsWith('/token')) return { status: 200, body: JSON.stringify({ token: TOKEN }) };
      if (headers.authorization !== `Bearer ${TOKEN}`) {
        return { status: 401, headers: { 'www-authenticate': `Bearer realm="${origin}/token",service="s"` } };
      }
      return { status: 307, headers: { location: `${storage.origin}/bucket/object?signature=abc` } };
    });
    servers.push(registry.server);
    origin = registry.origin;
    const res = await cli.run(['manifest', `${origin.slice(7)}/team/app:v1`, '--no-token-cache'], {
      env: { REGAUTH_USERNAME: 'u', REGAUTH_PASSWORD: 'p' },
    });
    expect(res.stderr).toBe('');
    expect(res.stdout.toString()).toBe('{"schemaVersion":2}');
    expect(storage.seen).toHaveLength(1);
    expect(storage.seen[0]?.url).toBe('/bucket/object?signature=abc');
    expect(storage.seen[0]?.headers.authorization).toBeUndefined();
    // The registry itself did get the token.
    expect(registry.seen.at(-1)?.headers.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('refuses a manifest whose bytes do not match the digest asked for', async () => {
    const body = '{"schemaVersion":2,"tampered":true}';
    const wanted = `sha256:${createHash('sha256').update('{"schemaVersion":2}').digest('hex')}`;
    const registry = await serve(() => ({
      status: 200,
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      body,
    }));
    servers.push(registry.server);
    const res = await cli.run(['manifest', `${registry.origin.slice(7)}/team/app@${wanted}`]);
    expect(res.code).toBe(1);
    expect(res.stdout.length).toBe(0);
    expect(res.stderr).toMatch(
      /sent content with digest sha256:[0-9a-f]{64}, not the sha256:[0-9a-f]{64} asked for/,
    );
  });

  it('retries a 503 and honours Retry-After before succeeding', async () => {
    let calls = 0;
    const registry = await serve(() => {
      calls++;
      return calls === 1
        ? { status: 503, headers: { 'retry-after': '1' } }
        : {
            status: 200,
            headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
            body: '{}',
          };
    });
    servers.push(registry.server);
    const started = Date.now();
    const res = await cli.run(['manifest', `${registry.origin.slice(7)}/a/b:c`, '--trace']);
    expect(res.code).toBe(0);
    expect(calls).toBe(2);
    expect(res.stderr).toMatch(/# retrying .* in 1000 ms \(attempt 1: HTTP 503\)/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
  });

  it("surfaces Docker Hub's rate-limit headers when the quota runs low", async () => {
    const registry = await serve(() => ({
      status: 200,
      headers: {
        'content-type': 'application/json',
        'ratelimit-limit': '100;w=21600',
        'ratelimit-remaining': '3;w=21600',
      },
      body: '{}',
    }));
    servers.push(registry.server);
    const res = await cli.run(['manifest', `${registry.origin.slice(7)}/a/b:c`]);
    expect(res.code).toBe(0);
    expect(res.stderr).toBe(
      `regauth: warning: ${registry.origin.slice(7)} rate limit: 3 of 100 pulls left per 6 h; logging in raises it\n`,
    );
  });

  it('goes through HTTP_PROXY when one is set', async () => {
    const registry = await serve(() => ({
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: '{"x":1}',
    }));
    servers.push(registry.server);
    const proxied: string[] = [];
    // A minimal forward proxy: absolute-form request lines, relayed to the origin.
    const proxy = createServer((req, res) => {
      proxied.push(req.url ?? '');
      const upstream = httpRequest(req.url ?? '', { method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      req.pipe(upstream);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    servers.push(proxy);
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    const res = await cli.run(['manifest', `${registry.origin.slice(7)}/a/b:c`], {
      env: { HTTP_PROXY: proxyUrl, NO_PROXY: '' },
    });
    expect(res.stderr).toBe('');
    expect(res.stdout.toString()).toBe('{"x":1}');
    expect(proxied).toEqual([`${registry.origin}/v2/a/b/manifests/c`]);
  });
});
