import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { loopbackServers } from '../testing/loopback-server.js';
import { rejection } from '../testing/rejection.js';
import { createTransport } from './create-transport.js';

const servers = loopbackServers();
afterEach(() => servers.closeAll());

/** Answers opened by the test server and never finished; ended after each test. */
const held: ServerResponse[] = [];
afterEach(() => {
  for (const res of held.splice(0)) res.destroy();
});

describe('createTransport: abort', () => {
  it('sends nothing for an already-aborted signal, and rejects with ERR_ABORTED naming the request', async () => {
    const server = await servers.start((_req, res) => {
      res.end('ok');
    });
    const reason = new Error('the caller gave up');
    const controller = new AbortController();
    controller.abort(reason);
    const send = createTransport({ env: {} });
    const url = server.url('/v2/library/x/manifests/latest?token=secret-value');
    url.username = 'user';
    url.password = 'hunter2';
    const err = await rejection(send({ method: 'GET', url, signal: controller.signal }));
    expect(err.code).toBe('ERR_ABORTED');
    expect(err.cause).toBe(reason);
    expect(err.message).toMatch(/^GET http:\/\/\S*127\.0\.0\.1:\d+\/v2\/library\/x\/manifests\/latest/);
    expect(err.message).toMatch(/was aborted$/);
    expect(err.message).not.toMatch(/hunter2|secret-value/);
    expect(server.requests).toHaveLength(0);
  });

  it('ends a request waiting for its headers and closes its connection', async () => {
    let closed!: () => void;
    const serverSawClose = new Promise<void>((resolve) => {
      closed = resolve;
    });
    let seen!: () => void;
    const requested = new Promise<void>((resolve) => {
      seen = resolve;
    });
    const server = await servers.start((_req, res, raw) => {
      held.push(res);
      raw.socket.once('close', closed);
      seen();
    });
    const controller = new AbortController();
    const send = createTransport({ env: {} });
    const sent = send({ method: 'GET', url: server.url('/v2/'), signal: controller.signal });
    await requested;
    controller.abort();
    const err = await rejection(sent);
    expect(err.code).toBe('ERR_ABORTED');
    await serverSawClose;
    expect(server.requests).toHaveLength(1);
  });

  it('errors a body being read with ERR_ABORTED when the signal aborts mid-body', async () => {
    const server = await servers.start((_req, res) => {
      held.push(res);
      res.writeHead(200, { 'content-length': String(1024 * 1024) });
      res.write(Buffer.alloc(1000, 1));
    });
    const controller = new AbortController();
    const send = createTransport({ env: {} });
    const res = await send({ method: 'GET', url: server.url('/v2/blob'), signal: controller.signal });
    expect(res.status).toBe(200);
    let received = 0;
    const read = (async () => {
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        received += chunk.length;
        if (received >= 1000) controller.abort();
      }
    })();
    const err = await rejection(read);
    expect(err.code).toBe('ERR_ABORTED');
    expect(res.body.destroyed).toBe(true);
    expect(received).toBe(1000);
  });

  it('rejects bytes() of an aborted answer with ERR_ABORTED', async () => {
    const server = await servers.start((_req, res) => {
      held.push(res);
      res.writeHead(200, { 'content-length': '100000' });
      res.write('{"tags":[');
    });
    const controller = new AbortController();
    const send = createTransport({ env: {} });
    const res = await send({ method: 'GET', url: server.url('/v2/x/tags/list'), signal: controller.signal });
    const reading = res.bytes(1024 * 1024);
    controller.abort();
    expect((await rejection(reading)).code).toBe('ERR_ABORTED');
  });

  it('ends a Retry-After wait at once on abort, after exactly one request', async () => {
    const server = await servers.start((_req, res) => {
      res.writeHead(503, { 'retry-after': '30' });
      res.end();
    });
    const controller = new AbortController();
    const waits: number[] = [];
    // The real timer: nothing but the abort ends a 30-second wait within the test's time.
    const send = createTransport({
      env: {},
      trace: (event) => {
        if (event.kind === 'retry') {
          waits.push(event.waitMs);
          setTimeout(() => controller.abort(), 20);
        }
      },
    });
    const err = await rejection(send({ method: 'GET', url: server.url('/v2/'), signal: controller.signal }));
    expect(err.code).toBe('ERR_ABORTED');
    expect(waits).toEqual([30_000]);
    expect(server.requests).toHaveLength(1);
  });

  it('ends a back-off on abort even when the sleep given ignores the signal, and retries nothing', async () => {
    const server = await servers.start((_req, res) => {
      res.writeHead(503);
      res.end();
    });
    const controller = new AbortController();
    const send = createTransport({
      env: {},
      sleep: () => {
        controller.abort();
        return new Promise<void>(() => {});
      },
    });
    const err = await rejection(send({ method: 'GET', url: server.url('/v2/'), signal: controller.signal }));
    expect(err.code).toBe('ERR_ABORTED');
    expect(server.requests).toHaveLength(1);
  });

  it('follows no redirect after an abort', async () => {
    const controller = new AbortController();
    const server = await servers.start((req, res) => {
      if (req.target === '/first') {
        controller.abort();
        res.writeHead(307, { location: '/second' });
        res.end();
        return;
      }
      res.end('second');
    });
    const send = createTransport({ env: {} });
    const err = await rejection(
      send({ method: 'GET', url: server.url('/first'), signal: controller.signal }),
    );
    expect(err.code).toBe('ERR_ABORTED');
    expect(server.requests.map((r) => r.target)).toEqual(['/first']);
  });
});
