import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { controlCharacters } from '../testing/control-characters.js';
import { closedPort, loopbackServers } from '../testing/loopback-server.js';
import { rejection } from '../testing/rejection.js';
import {
  createTransport,
  MAX_REDIRECTS,
  MAX_RETRY_AFTER_S,
  type TransportOptions,
} from './create-transport.js';
import type { Send } from './http-types.js';
import type { TraceEvent } from './trace.js';

const servers = loopbackServers();
afterEach(() => servers.closeAll());

/** A transport that never waits for real and records every wait it asks for. */
function transport(options: TransportOptions = {}): { send: Send; waits: number[] } {
  const waits: number[] = [];
  const send = createTransport({
    env: {},
    sleep: async (ms) => {
      waits.push(ms);
    },
    ...options,
  });
  return { send, waits };
}

describe('createTransport: retries', () => {
  it('retries a 503 and returns the answer that followed', async () => {
    let attempts = 0;
    const server = await servers.start((_req, res) => {
      attempts++;
      res.statusCode = attempts === 1 ? 503 : 200;
      res.end(`answer ${attempts}`);
    });
    const { send, waits } = transport();
    const res = await send({ method: 'GET', url: server.url('/v2/') });
    expect(res.status).toBe(200);
    expect(await res.text(1024)).toBe('answer 2');
    expect(attempts).toBe(2);
    expect(waits).toHaveLength(1);
  });

  it('waits the seconds a 429 names in Retry-After before retrying', async () => {
    let attempts = 0;
    const server = await servers.start((_req, res) => {
      attempts++;
      if (attempts === 1) {
        res.writeHead(429, { 'retry-after': '2' });
        res.end();
        return;
      }
      res.end('ok');
    });
    const { send, waits } = transport();
    const res = await send({ method: 'GET', url: server.url('/v2/') });
    expect(res.status).toBe(200);
    expect(await res.text(100)).toBe('ok');
    expect(waits).toEqual([2000]);
    expect(attempts).toBe(2);
  });

  it('waits until the HTTP date a 429 names in Retry-After', async () => {
    let attempts = 0;
    const server = await servers.start((_req, res) => {
      attempts++;
      if (attempts === 1) {
        res.writeHead(429, { 'retry-after': new Date(Date.now() + 5000).toUTCString() });
        res.end();
        return;
      }
      res.end('ok');
    });
    const { send, waits } = transport();
    const res = await send({ method: 'GET', url: server.url('/v2/') });
    expect(res.status).toBe(200);
    expect(attempts).toBe(2);
    expect(waits).toHaveLength(1);
    // The date has one-second resolution, so the wait is 4 or 5 whole seconds.
    expect([4000, 5000]).toContain(waits[0]);
  });

  it(`returns a 429 whose Retry-After is over MAX_RETRY_AFTER_S (${MAX_RETRY_AFTER_S} s) without waiting`, async () => {
    let attempts = 0;
    const server = await servers.start((_req, res) => {
      attempts++;
      res.writeHead(429, { 'retry-after': String(MAX_RETRY_AFTER_S + 1) });
      res.end('slow down');
    });
    const { send, waits } = transport();
    const res = await send({ method: 'GET', url: server.url('/v2/') });
    expect(res.status).toBe(429);
    expect(res.header('retry-after')).toBe(String(MAX_RETRY_AFTER_S + 1));
    expect(await res.text(100)).toBe('slow down');
    expect(attempts).toBe(1);
    expect(waits).toEqual([]);
  });

  it('gives up after maxRetries and returns the last 5xx, backing off exponentially', async () => {
    let attempts = 0;
    const server = await servers.start((_req, res) => {
      attempts++;
      res.statusCode = 502;
      res.end(`bad gateway ${attempts}`);
    });
    const { send, waits } = transport({ maxRetries: 2, backoffMs: 100 });
    const res = await send({ method: 'GET', url: server.url('/v2/') });
    expect(res.status).toBe(502);
    expect(await res.text(100)).toBe('bad gateway 3');
    expect(attempts).toBe(3);
    // 100 ms then 200 ms, each with ±20 % jitter.
    expect(waits).toHaveLength(2);
    expect(waits[0]).toBeGreaterThanOrEqual(80);
    expect(waits[0]).toBeLessThanOrEqual(120);
    expect(waits[1]).toBeGreaterThanOrEqual(160);
    expect(waits[1]).toBeLessThanOrEqual(240);
  });

  it.each([400, 404, 501])('does not retry a %i', async (status) => {
    let attempts = 0;
    const server = await servers.start((_req, res) => {
      attempts++;
      res.statusCode = status;
      res.end('no');
    });
    const { send, waits } = transport();
    const res = await send({ method: 'GET', url: server.url('/v2/x') });
    expect(res.status).toBe(status);
    expect(attempts).toBe(1);
    expect(waits).toEqual([]);
  });

  it('retries a GET whose connection was reset', async () => {
    let attempts = 0;
    const server = await servers.start((_req, res, raw) => {
      attempts++;
      if (attempts <= 2) {
        raw.socket.destroy();
        return;
      }
      res.end('made it');
    });
    const { send, waits } = transport({ maxRetries: 3 });
    const res = await send({ method: 'GET', url: server.url('/v2/') });
    expect(res.status).toBe(200);
    expect(await res.text(100)).toBe('made it');
    expect(attempts).toBe(3);
    expect(waits).toHaveLength(2);
  });

  it('never retries a request whose body is a stream', async () => {
    const bodies: string[] = [];
    const server = await servers.start((req, res) => {
      bodies.push(req.body);
      res.statusCode = 503;
      res.end();
    });
    const { send, waits } = transport({ maxRetries: 3 });
    const res = await send({
      method: 'PUT',
      url: server.url('/v2/a/blobs/uploads/1'),
      body: Readable.from([Buffer.from('layer '), Buffer.from('bytes')]),
    });
    expect(res.status).toBe(503);
    expect(bodies).toEqual(['layer bytes']);
    expect(waits).toEqual([]);
  });

  it('retries a request whose body is a string, sending the same body again', async () => {
    const bodies: string[] = [];
    const server = await servers.start((req, res) => {
      bodies.push(req.body);
      res.statusCode = bodies.length === 1 ? 503 : 201;
      res.end();
    });
    const { send } = transport();
    const res = await send({ method: 'POST', url: server.url('/token'), body: 'grant_type=password' });
    expect(res.status).toBe(201);
    expect(bodies).toEqual(['grant_type=password', 'grant_type=password']);
  });

  it('reports a refused connection as ERR_NETWORK naming the host, with a hint', async () => {
    const port = await closedPort();
    const { send } = transport({ maxRetries: 0 });
    const err = await rejection(send({ method: 'GET', url: new URL(`http://127.0.0.1:${port}/v2/`) }));
    expect(err.code).toBe('ERR_NETWORK');
    expect(err.message).toContain(`127.0.0.1:${port}`);
    expect(err.message).toContain('ECONNREFUSED');
    expect(err.message).toContain('is the registry running there?');
  });
});

describe('createTransport: redirects', () => {
  it('follows a same-origin 307 keeping Authorization, and reports the final URL', async () => {
    const server = await servers.start((req, res) => {
      if (req.url.pathname === '/v2/a/blobs/x') {
        res.writeHead(307, { location: '/v2/b/blobs/x' });
        res.end();
        return;
      }
      res.end('blob');
    });
    const { send } = transport();
    const res = await send({
      method: 'GET',
      url: server.url('/v2/a/blobs/x'),
      headers: { authorization: 'Bearer tok' },
    });
    expect(res.status).toBe(200);
    expect(await res.text(100)).toBe('blob');
    expect(res.url.href).toBe(server.url('/v2/b/blobs/x').href);
    expect(server.requests.map((r) => [r.url.pathname, r.headers.authorization])).toEqual([
      ['/v2/a/blobs/x', 'Bearer tok'],
      ['/v2/b/blobs/x', 'Bearer tok'],
    ]);
  });

  it.each([302, 307])(
    'follows a %i to another origin without Authorization or Cookie, resolving a relative Location there',
    async (status) => {
      const storage = await servers.start((req, res) => {
        if (req.url.pathname === '/bucket/x') {
          res.writeHead(307, { location: 'signed/x?sig=1' });
          res.end();
          return;
        }
        res.end('from storage');
      });
      const registry = await servers.start((_req, res) => {
        res.writeHead(status, { location: `${storage.origin}/bucket/x` });
        res.end();
      });
      const { send } = transport();
      const res = await send({
        method: 'GET',
        url: registry.url('/v2/a/blobs/sha256:1'),
        headers: { Authorization: 'Bearer secret-token', cookie: 'session=1', 'x-request-id': 'r1' },
      });
      expect(res.status).toBe(200);
      expect(await res.text(100)).toBe('from storage');
      expect(res.url.href).toBe(`${storage.origin}/bucket/signed/x?sig=1`);
      expect(registry.requests[0]?.headers.authorization).toBe('Bearer secret-token');
      expect(storage.requests.map((r) => r.target)).toEqual(['/bucket/x', '/bucket/signed/x?sig=1']);
      for (const r of storage.requests) {
        expect(r.headers.authorization).toBeUndefined();
        expect(r.headers.cookie).toBeUndefined();
        // Headers that are not credentials still go along.
        expect(r.headers['x-request-id']).toBe('r1');
      }
    },
  );

  it(`stops with ERR_REDIRECT after MAX_REDIRECTS (${MAX_REDIRECTS}) hops`, async () => {
    const server = await servers.start((req, res) => {
      const n = Number(req.url.searchParams.get('n') ?? '0');
      res.writeHead(302, { location: `/loop?n=${n + 1}` });
      res.end();
    });
    const { send } = transport();
    const err = await rejection(send({ method: 'GET', url: server.url('/loop?n=0') }));
    expect(err.code).toBe('ERR_REDIRECT');
    expect(err.message).toContain(`more than ${MAX_REDIRECTS} redirects`);
    expect(server.requests).toHaveLength(MAX_REDIRECTS + 1);
  });

  it('does not follow a redirect answering a POST', async () => {
    const server = await servers.start((_req, res) => {
      res.writeHead(307, { location: '/elsewhere' });
      res.end();
    });
    const { send } = transport();
    const res = await send({ method: 'POST', url: server.url('/v2/a/blobs/uploads/'), body: 'x' });
    expect(res.status).toBe(307);
    expect(res.header('location')).toBe('/elsewhere');
    expect(res.url.href).toBe(server.url('/v2/a/blobs/uploads/').href);
    expect(server.requests).toHaveLength(1);
  });

  it('does not follow a redirect when the request says followRedirects: false', async () => {
    const server = await servers.start((_req, res) => {
      res.writeHead(302, { location: '/elsewhere' });
      res.end();
    });
    const { send } = transport();
    const res = await send({ method: 'GET', url: server.url('/a'), followRedirects: false });
    expect(res.status).toBe(302);
    expect(server.requests).toHaveLength(1);
  });
});

describe('createTransport: body limits', () => {
  it('refuses a body over the limit with ERR_TOO_LARGE', async () => {
    const server = await servers.start((_req, res) => {
      res.end(Buffer.alloc(10_000, 0x61));
    });
    const { send } = transport();
    const res = await send({ method: 'GET', url: server.url('/big') });
    const err = await rejection(res.bytes(1000));
    expect(err.code).toBe('ERR_TOO_LARGE');
    expect(err.message).toContain('1000 bytes');
    expect(err.message).toContain(server.host);
  });

  it('returns a body within the limit byte for byte', async () => {
    const payload = randomBytes(5000);
    const server = await servers.start((_req, res) => {
      res.end(payload);
    });
    const { send } = transport();
    const res = await send({ method: 'GET', url: server.url('/blob') });
    const bytes = await res.bytes(5000);
    expect(bytes.equals(payload)).toBe(true);
  });
});

describe('createTransport: trace', () => {
  it('reports request, response and a small JSON body in order, with every secret redacted', async () => {
    const server = await servers.start((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': 'sid=cookie-secret-9f3a' });
      res.end(
        JSON.stringify({
          token: 'issued-token-7d1e5b',
          access_token: 'issued-access-token-2c44',
          refresh_token: 'issued-refresh-token-91ab',
          expires_in: 300,
        }),
      );
    });
    const events: TraceEvent[] = [];
    const { send } = transport({ trace: (e) => events.push(e) });
    const res = await send({
      method: 'GET',
      url: server.url('/token?service=reg&scope=repository:a:pull'),
      headers: { authorization: 'Bearer sent-token-5e0c9d' },
    });
    expect(JSON.parse(await res.text(4096))).toMatchObject({ access_token: 'issued-access-token-2c44' });

    expect(events.map((e) => e.kind)).toEqual(['request', 'response', 'body']);
    const [request, response, body] = events;
    expect(request).toMatchObject({
      kind: 'request',
      method: 'GET',
      headers: { authorization: 'Bearer <redacted>' },
    });
    expect(response).toMatchObject({
      kind: 'response',
      status: 200,
      headers: { 'set-cookie': '<redacted>' },
    });
    expect(body?.kind === 'body' && JSON.parse(body.text)).toEqual({
      token: '<redacted>',
      access_token: '<redacted>',
      refresh_token: '<redacted>',
      expires_in: 300,
    });
    const all = JSON.stringify(events);
    for (const secret of [
      'sent-token-5e0c9d',
      'cookie-secret-9f3a',
      'issued-token-7d1e5b',
      'issued-access-token-2c44',
      'issued-refresh-token-91ab',
    ]) {
      expect(all).not.toContain(secret);
    }
  });

  it('redacts the password of a form body and a Basic header', async () => {
    const server = await servers.start((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"access_token":"at-8c1f20b7"}');
    });
    const events: TraceEvent[] = [];
    const { send } = transport({ trace: (e) => events.push(e) });
    const basic = `Basic ${Buffer.from('alice:pw-3e8a71').toString('base64')}`;
    const res = await send({
      method: 'POST',
      url: server.url('/token'),
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic },
      body: 'grant_type=password&username=alice&password=pw-3e8a71&service=reg',
    });
    await res.text(4096);
    const request = events[0];
    expect(request?.kind).toBe('request');
    if (request?.kind !== 'request') return;
    expect(request.body).toBe('grant_type=password&username=alice&password=<redacted>&service=reg');
    expect(request.headers.authorization).toBe('Basic <redacted>');
    const all = JSON.stringify(events);
    expect(all).not.toContain('pw-3e8a71');
    expect(all).not.toContain(basic.slice(6));
    expect(all).not.toContain('at-8c1f20b7');
  });

  it('leaks no signature or token when a blob GET redirects to a presigned URL on another origin', async () => {
    const secrets = {
      signature: 'sig-4f0c2e9d7a1b',
      securityToken: 'FwoGZXIvYXdzE-sts-7c3a',
      cdnToken: 'cdn-token-91d0aa',
      uploadState: 'state-b6e2f1',
    };
    const storage = await servers.start((_req, res) => {
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'x-amz-security-token': secrets.securityToken,
        'content-location': `/blob?token=${secrets.cdnToken}`,
      });
      res.end('blob bytes');
    });
    const presigned =
      `${storage.origin}/docker/registry/v2/blobs/sha256/ab/data?X-Amz-Algorithm=AWS4-HMAC-SHA256` +
      `&X-Amz-Security-Token=${secrets.securityToken}&X-Amz-Signature=${secrets.signature}` +
      `&sig=${secrets.signature}&token=${secrets.cdnToken}`;
    const registry = await servers.start((_req, res) => {
      res.writeHead(307, {
        location: presigned,
        link: `</v2/a/blobs/uploads/u1?_state=${secrets.uploadState}>; rel="upload"`,
      });
      res.end();
    });
    const events: TraceEvent[] = [];
    const { send } = transport({ trace: (e) => events.push(e) });
    const res = await send({ method: 'GET', url: registry.url('/v2/a/blobs/sha256:ab') });
    expect(await res.text(100)).toBe('blob bytes');
    // The redirect really carried the secrets to the storage host.
    expect(storage.requests[0]?.url.searchParams.get('X-Amz-Signature')).toBe(secrets.signature);

    expect(events.map((e) => e.kind)).toEqual(['request', 'response', 'request', 'response']);
    const all = JSON.stringify(events);
    for (const secret of Object.values(secrets)) expect(all).not.toContain(secret);
    const hop = events[2];
    expect(hop?.kind === 'request' && new URL(hop.url).pathname).toBe(
      '/docker/registry/v2/blobs/sha256/ab/data',
    );
  });

  it('never shows a token endpoint answer that is not JSON, whatever its status or type', async () => {
    const token = 'opaque-token-0b5d3c71';
    const realm = await servers.start((req, res) => {
      const status = Number(req.url.searchParams.get('status'));
      res.writeHead(status, { 'content-type': req.url.searchParams.get('type') ?? '' });
      res.end(`token=${token}&expires_in=300`);
    });
    const events: TraceEvent[] = [];
    const { send } = transport({ trace: (e) => events.push(e) });
    for (const [status, type] of [
      [200, 'application/json'],
      [401, 'text/plain'],
      [500, 'text/html'],
    ] as const) {
      const res = await send({ method: 'GET', url: realm.url(`/token?status=${status}&type=${type}`) });
      expect(await res.text(4096)).toContain(token);
    }
    const notes = events.filter((e) => e.kind === 'note');
    expect(notes).toHaveLength(3);
    expect(notes[0]).toEqual({
      kind: 'note',
      text: 'a 42-byte body that is not JSON, not shown (it may hold secrets)',
    });
    expect(events.some((e) => e.kind === 'body')).toBe(false);
    expect(JSON.stringify(events)).not.toContain(token);
  });

  it("escapes a server's control characters in the headers and bodies it reports", async () => {
    const server = await servers.start((_req, res) => {
      // Node's parser refuses C0 controls in header values, but C1 bytes pass (read as latin1).
      res.writeHead(404, { 'content-type': 'application/json', 'x-note': 'a\u009b2Kb' });
      res.end(JSON.stringify({ errors: [{ code: 'X', message: 'a\u001b]0;title\u0007\u009b2K\u007f' }] }));
    });
    const events: TraceEvent[] = [];
    const { send } = transport({ trace: (e) => events.push(e) });
    await (await send({ method: 'GET', url: server.url('/v2/') })).text(4096);
    const response = events[1];
    expect(response?.kind === 'response' && response.headers['x-note']).toBe('a\\x9b2Kb');
    const body = events[2];
    expect(body?.kind === 'body' && JSON.parse(body.text)).toEqual({
      errors: [{ code: 'X', message: 'a\u001b]0;title\u0007\u009b2K\u007f' }],
    });
    // The body is still JSON, and its text holds no control character, only escapes.
    expect(controlCharacters(body?.kind === 'body' ? body.text : '')).toEqual([]);
    expect(body?.kind === 'body' && body.text).toContain('\\u009b2K');
  });

  it('reports each retry with its wait and reason', async () => {
    let attempts = 0;
    const server = await servers.start((_req, res) => {
      attempts++;
      res.writeHead(attempts === 1 ? 503 : 200, attempts === 1 ? { 'retry-after': '3' } : {});
      res.end();
    });
    const events: TraceEvent[] = [];
    const { send } = transport({ trace: (e) => events.push(e) });
    await (await send({ method: 'GET', url: server.url('/v2/') })).dump();
    expect(events.map((e) => e.kind)).toEqual(['request', 'response', 'retry', 'request', 'response']);
    expect(events[2]).toMatchObject({ kind: 'retry', attempt: 1, waitMs: 3000, reason: 'HTTP 503' });
  });
});

describe('createTransport: response headers', () => {
  it('gives every value of a repeated WWW-Authenticate, and all of them joined by header()', async () => {
    const bearer = 'Bearer realm="http://127.0.0.1/token",service="reg"';
    const basic = 'Basic realm="reg"';
    const server = await servers.start((_req, res) => {
      res.setHeader('WWW-Authenticate', [bearer, basic]);
      res.setHeader('Docker-Distribution-Api-Version', 'registry/2.0');
      res.statusCode = 401;
      res.end();
    });
    const { send } = transport();
    const res = await send({ method: 'GET', url: server.url('/v2/') });
    expect(res.status).toBe(401);
    expect(res.headerValues('WWW-Authenticate')).toEqual([bearer, basic]);
    expect(res.header('www-authenticate')).toBe(`${bearer}, ${basic}`);
    expect(res.headerValues('docker-distribution-api-version')).toEqual(['registry/2.0']);
    expect(res.header('Docker-Distribution-API-Version')).toBe('registry/2.0');
    expect(res.headerValues('link')).toEqual([]);
    expect(res.header('link')).toBeUndefined();
  });

  it('sends a User-Agent, the one given or regauth', async () => {
    const server = await servers.start((_req, res) => {
      res.end();
    });
    await (await transport().send({ method: 'GET', url: server.url('/') })).dump();
    await (
      await transport({ userAgent: 'regauth/9.9' }).send({ method: 'GET', url: server.url('/') })
    ).dump();
    expect(server.requests.map((r) => r.headers['user-agent'])).toEqual(['regauth', 'regauth/9.9']);
  });
});
