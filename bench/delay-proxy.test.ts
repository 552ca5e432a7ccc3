import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createHttpServer, type RequestListener } from 'node:http';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { isRegauthError } from '../src/errors/regauth-error.js';
import { type DelayProxy, MAX_QUEUED_BYTES, startDelayProxy } from './delay-proxy.js';

const MiB = 1024 * 1024;

/** Everything a test opens, closed in afterEach so that a failing test leaves nothing behind. */
const cleanups: (() => Promise<unknown> | undefined)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

interface Target {
  readonly port: number;
  /** The server's side of every connection it accepted. */
  readonly sockets: Socket[];
}

async function listen(server: Server | ReturnType<typeof createHttpServer>): Promise<Target> {
  const sockets: Socket[] = [];
  server.on('connection', (s: Socket) => sockets.push(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return { port: (server.address() as AddressInfo).port, sockets };
}

const httpTarget = (handler: RequestListener) => listen(createHttpServer(handler));
const tcpTarget = (onSocket: (socket: Socket) => void) =>
  listen(createServer({ allowHalfOpen: true }, onSocket));

async function proxyTo(port: number, delayMs: number): Promise<DelayProxy> {
  const proxy = await startDelayProxy({ target: { host: '127.0.0.1', port }, delayMs });
  cleanups.push(() => proxy.close());
  return proxy;
}

/** A keep-alive client with one connection, so that requests share it. */
function agent(): Agent {
  const a = new Agent({ connections: 1 });
  cleanups.push(() => a.destroy());
  return a;
}

async function dial(proxy: DelayProxy): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port: proxy.port });
  cleanups.push(async () => {
    socket.destroy();
  });
  await once(socket, 'connect');
  return socket;
}

function collect(socket: Socket): { text: () => string; ended: Promise<unknown> } {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  return { text: () => Buffer.concat(chunks).toString(), ended: once(socket, 'end') };
}

/** A port that was just free on 127.0.0.1 and has nothing listening on it now. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function until(condition: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

describe('startDelayProxy', () => {
  it('delays each direction: one request/response round trip takes at least 2 × delayMs', async () => {
    const target = await httpTarget((_req, res) => res.end('ok'));
    const proxy = await proxyTo(target.port, 50);
    const dispatcher = agent();
    const started = performance.now();
    const res = await request(`http://${proxy.host}/`, { dispatcher });
    expect(await res.body.text()).toBe('ok');
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(100);
    expect(elapsed).toBeLessThan(1000);
  });

  it('with chargeHandshake holds only the first client chunk of a connection, to one round trip after it was opened', async () => {
    const arrivals: number[] = [];
    const target = await tcpTarget((socket) => socket.on('data', () => arrivals.push(performance.now())));
    const delayMs = 60;
    const proxy = await startDelayProxy({
      target: { host: '127.0.0.1', port: target.port },
      delayMs,
      chargeHandshake: true,
    });
    cleanups.push(() => proxy.close());
    const dialed = performance.now();
    const socket = await dial(proxy);
    socket.write('first');
    await until(() => arrivals.length === 1, 'the first chunk');
    const first = (arrivals[0] ?? Number.NaN) - dialed;
    const secondSent = performance.now();
    socket.write('second');
    await until(() => arrivals.length === 2, 'the second chunk');
    const second = (arrivals[1] ?? Number.NaN) - secondSent;
    // One way (delayMs) plus the handshake's round trip (2 × delayMs), counted from the connect,
    // for the first chunk only.
    expect(first).toBeGreaterThanOrEqual(3 * delayMs);
    expect(second).toBeGreaterThanOrEqual(delayMs);
    expect(second).toBeLessThan(first);
    // A second connection pays its own handshake.
    const againDialed = performance.now();
    const again = await dial(proxy);
    again.write('third');
    await until(() => arrivals.length === 3, 'the third chunk');
    expect((arrivals[2] ?? Number.NaN) - againDialed).toBeGreaterThanOrEqual(3 * delayMs);
    // A connection opened ahead, written to after its handshake would be done, pays one way only:
    // a round trip (2 × delayMs) less than a first chunk written at once. Charged the handshake
    // from its first write, it would take as long as that one.
    const ahead = await dial(proxy);
    await new Promise((resolve) => setTimeout(resolve, 3 * delayMs));
    const aheadSent = performance.now();
    ahead.write('fourth');
    await until(() => arrivals.length === 4, 'the fourth chunk');
    const fourth = (arrivals[3] ?? Number.NaN) - aheadSent;
    expect(fourth).toBeGreaterThanOrEqual(delayMs);
    expect(fourth).toBeLessThan(first - delayMs);
    expect(proxy.stats().connections).toBe(3);
  });

  it('adds no delay with delayMs 0 beyond loopback', async () => {
    const target = await httpTarget((_req, res) => res.end('ok'));
    const proxy = await proxyTo(target.port, 0);
    const res = await request(`http://${proxy.host}/`, { dispatcher: agent() });
    expect(await res.body.text()).toBe('ok');
    expect(proxy.stats().requests).toBe(1);
  });

  it('counts keep-alive requests on one connection and every byte each way', async () => {
    const target = await httpTarget((req, res) => res.end(`answer for ${req.url} `.repeat(50)));
    const proxy = await proxyTo(target.port, 10);
    const dispatcher = agent();
    let bodyBytes = 0;
    for (let i = 0; i < 5; i++) {
      const res = await request(`http://${proxy.host}/v2/${i}`, { dispatcher });
      bodyBytes += (await res.body.arrayBuffer()).byteLength;
    }
    const stats = proxy.stats();
    expect(stats.connections).toBe(1);
    expect(stats.requests).toBe(5);
    expect(stats.methods).toEqual({ GET: 5 });
    expect(stats.lines).toEqual([0, 1, 2, 3, 4].map((i) => `GET /v2/${i}`));
    expect(stats.brokenConnections).toBe(0);
    // Every byte the server wrote reached the client through the proxy, and the other way round.
    const serverWrote = target.sockets.reduce((sum, s) => sum + s.bytesWritten, 0);
    const serverRead = target.sockets.reduce((sum, s) => sum + s.bytesRead, 0);
    expect(stats.bytesDown).toBeGreaterThan(bodyBytes);
    expect(stats.bytesDown).toBe(serverWrote);
    expect(stats.bytesUp).toBe(serverRead);
  });

  it('carries a 5 MiB upload byte for byte', { timeout: 15_000 }, async () => {
    const target = await httpTarget((req, res) => {
      const hash = createHash('sha256');
      req.on('data', (c: Buffer) => hash.update(c));
      req.on('end', () => res.end(hash.digest('hex')));
    });
    const proxy = await proxyTo(target.port, 10);
    const body = randomBytes(5 * MiB);
    const res = await request(`http://${proxy.host}/v2/x/blobs/uploads/1`, {
      method: 'PUT',
      body,
      dispatcher: agent(),
    });
    expect(await res.body.text()).toBe(createHash('sha256').update(body).digest('hex'));
    const stats = proxy.stats();
    expect(stats.bytesUp).toBeGreaterThanOrEqual(5 * MiB);
    expect(stats.requests).toBe(1);
    expect(stats.methods).toEqual({ PUT: 1 });
  });

  it('pauses the sender while a direction holds more than MAX_QUEUED_BYTES', {
    timeout: 15_000,
  }, async () => {
    let serverSide: Socket | undefined;
    const received = createHash('sha256');
    let receivedBytes = 0;
    const target = await tcpTarget((socket) => {
      serverSide = socket;
      socket.pause(); // a receiver that does not read yet
      socket.on('data', (c: Buffer) => {
        received.update(c);
        receivedBytes += c.length;
      });
    });
    const proxy = await proxyTo(target.port, 5);
    const client = await dial(proxy);
    const payload = randomBytes(12 * MAX_QUEUED_BYTES);
    client.end(payload);
    await sleep(500);
    // Without backpressure the proxy would have taken all 48 MiB into memory by now; with it,
    // it holds MAX_QUEUED_BYTES plus what the kernel's socket buffers take.
    expect(proxy.stats().bytesUp).toBeLessThan(6 * MAX_QUEUED_BYTES);
    expect(receivedBytes).toBe(0);
    serverSide?.resume();
    await until(() => receivedBytes === payload.length, 'the whole payload');
    expect(received.digest('hex')).toBe(createHash('sha256').update(payload).digest('hex'));
    expect(proxy.stats().bytesUp).toBe(payload.length);
  });

  it('keeps the order of chunks when the delay is shortened in between', async () => {
    const chunks: string[] = [];
    const target = await tcpTarget((socket) => socket.on('data', (c: Buffer) => chunks.push(c.toString())));
    const proxy = await proxyTo(target.port, 200);
    const client = await dial(proxy);
    const started = performance.now();
    client.write('first');
    // Once the proxy holds 'first', later chunks get no delay at all; they must still wait.
    await until(() => proxy.stats().bytesUp === 5, 'the proxy to receive the first chunk');
    proxy.setDelay(0);
    client.write('second');
    await until(() => chunks.join('') === 'firstsecond', 'both chunks');
    expect(performance.now() - started).toBeGreaterThanOrEqual(200);
    expect(chunks.join('')).toBe('firstsecond');
  });

  it('passes a half-close on after the data before it', async () => {
    const target = await tcpTarget((socket) => {
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      // Answers only once the client has finished sending, as an upload endpoint might.
      socket.on('end', () => socket.end(Buffer.concat(chunks).toString().toUpperCase()));
    });
    const proxy = await proxyTo(target.port, 30);
    const client = await dial(proxy);
    const reply = collect(client);
    client.write('hello ');
    client.end('world');
    await reply.ended;
    expect(reply.text()).toBe('HELLO WORLD');
  });

  it('zeroes the counts on reset and keeps counting on open connections', async () => {
    const target = await httpTarget((_req, res) => res.end('ok'));
    const proxy = await proxyTo(target.port, 0);
    const dispatcher = agent();
    for (const method of ['GET', 'DELETE']) {
      await (await request(`http://${proxy.host}/a`, { method, dispatcher })).body.text();
    }
    expect(proxy.stats().requests).toBe(2);
    proxy.reset();
    expect(proxy.stats()).toEqual({
      connections: 0,
      requests: 0,
      methods: {},
      bytesUp: 0,
      bytesDown: 0,
      lines: [],
      brokenConnections: 0,
    });
    await (await request(`http://${proxy.host}/b`, { method: 'HEAD', dispatcher })).body.text();
    const after = proxy.stats();
    expect(after).toMatchObject({ connections: 0, requests: 1, methods: { HEAD: 1 }, lines: ['HEAD /b'] });
    expect(after.bytesUp).toBeGreaterThan(0);
  });

  it('counts a connection whose bytes are not HTTP as broken', async () => {
    const target = await tcpTarget((socket) => socket.resume());
    const proxy = await proxyTo(target.port, 0);
    const client = await dial(proxy);
    client.write(Buffer.from('16030100a5010000a10303', 'hex'));
    await until(() => proxy.stats().bytesUp === 11, 'the bytes to pass');
    expect(proxy.stats()).toMatchObject({ requests: 0, brokenConnections: 1 });
  });

  it.each([
    '10.0.0.1',
    '0.0.0.0',
    '192.168.1.10',
    '128.0.0.1',
    '::',
    '::ffff:10.0.0.1',
    'example.com',
    '127.0.0.1.nip.io',
    'localhost.example.com',
  ])('refuses the non-loopback target %s before listening or connecting', async (host) => {
    const refusal = startDelayProxy({ target: { host, port: 80 }, delayMs: 0 }).catch((e: unknown) => e);
    // Refused before the event loop runs any I/O callback: no DNS lookup, listen or connect
    // could have completed (or even been waited for) before the answer.
    const first = await Promise.race([refusal, new Promise((resolve) => setImmediate(resolve, 'io'))]);
    expect(first).not.toBe('io');
    expect(isRegauthError(first, 'ERR_INVALID_CONFIG')).toBe(true);
    expect((first as Error).message).toContain(`target ${host} is not a loopback address`);
  });

  it.each(['127.0.0.1', '127.1.2.3', '::1', '[::1]', '::ffff:127.0.0.1', 'localhost', 'LocalHost'])(
    'accepts the loopback target %s',
    async (host) => {
      const proxy = await startDelayProxy({ target: { host, port: 80 }, delayMs: 0 });
      await proxy.close();
      expect(proxy.host).toBe(`127.0.0.1:${proxy.port}`);
    },
  );

  it('refuses a bad port or delay when started, and a bad delay in setDelay', async () => {
    const target = { host: '127.0.0.1', port: 80 };
    for (const options of [
      { target: { host: '127.0.0.1', port: 0 }, delayMs: 0 },
      { target: { host: '127.0.0.1', port: 70_000 }, delayMs: 0 },
      { target, delayMs: -1 },
      { target, delayMs: Number.NaN },
    ]) {
      await expect(startDelayProxy(options)).rejects.toSatisfy((e) =>
        isRegauthError(e, 'ERR_INVALID_CONFIG'),
      );
    }
    const proxy = await startDelayProxy({ target, delayMs: 0 });
    cleanups.push(() => proxy.close());
    expect(() => proxy.setDelay(Number.POSITIVE_INFINITY)).toThrow(/delayMs/);
  });

  it('listens on an IPv6 loopback and names it in brackets', async () => {
    const proxy = await startDelayProxy({
      target: { host: '127.0.0.1', port: 80 },
      delayMs: 0,
      listenHost: '::1',
    }).catch(() => undefined);
    // A machine without IPv6 on loopback cannot run this; the bracket form is what is tested.
    if (proxy === undefined) return;
    cleanups.push(() => proxy.close());
    expect(proxy.host).toBe(`[::1]:${proxy.port}`);
  });

  it('resets the client when the target refuses the connection', async () => {
    const proxy = await proxyTo(await closedPort(), 0);
    const client = await dial(proxy);
    let received = 0;
    client.on('data', (c: Buffer) => {
      received += c.length;
    });
    const [error] = await once(client, 'error');
    expect((error as NodeJS.ErrnoException).code).toBe('ECONNRESET');
    expect(received).toBe(0);
  });

  it('resets the client when the target resets the connection', async () => {
    const target = await tcpTarget((socket) => socket.once('data', () => socket.resetAndDestroy()));
    const proxy = await proxyTo(target.port, 0);
    const client = await dial(proxy);
    client.write('x');
    const [error] = await once(client, 'error');
    expect((error as NodeJS.ErrnoException).code).toBe('ECONNRESET');
  });

  it('resets the target when the client resets, even with data held for the client', async () => {
    let serverSide: Socket | undefined;
    const target = await tcpTarget((socket) => {
      serverSide = socket;
      socket.on('data', () => socket.write('reply'));
    });
    const proxy = await proxyTo(target.port, 100);
    const client = await dial(proxy);
    client.write('x');
    await until(() => serverSide !== undefined, 'the target to see a connection');
    const serverError = once(serverSide as Socket, 'error');
    client.resetAndDestroy();
    const [error] = await serverError;
    expect((error as NodeJS.ErrnoException).code).toBe('ECONNRESET');
  });

  it('ends open connections on both sides when closed, with data still held', async () => {
    let serverSide: Socket | undefined;
    const target = await tcpTarget((socket) => {
      serverSide = socket;
      socket.resume();
    });
    const proxy = await proxyTo(target.port, 10);
    const client = await dial(proxy);
    client.write('hello');
    await until(() => serverSide !== undefined && serverSide.bytesRead === 5, 'the target to see data');
    proxy.setDelay(10_000);
    client.write('held back');
    await sleep(20);
    const clientClosed = once(client, 'close');
    const serverEnded = once(serverSide as Socket, 'end');
    const started = performance.now();
    await proxy.close();
    await Promise.all([clientClosed, serverEnded]);
    expect(performance.now() - started).toBeLessThan(1000);
    // What was still held is dropped, not delivered.
    expect(serverSide?.bytesRead).toBe(5);
  });
});
