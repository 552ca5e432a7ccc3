import { createHash } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { loopbackServers } from '../testing/loopback-server.js';
import { nodeHttpExchange } from './http-exchange.js';
import { pumpBody, RawBody, type RawGetOptions, rawHttpGet } from './raw-http-get.js';

const servers = loopbackServers();
const rawServers: Server[] = [];
afterEach(async () => {
  await servers.closeAll();
  await Promise.all(rawServers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

const OPTIONS: RawGetOptions = { connectTimeoutMs: 5000, idleTimeoutMs: 5000 };

/** Bytes covering all 256 values, so a byte lost or repeated shows. */
function bytesOf(size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i++) out[i] = (i * 7 + (i >> 10)) & 0xff;
  return out;
}

const BIG = bytesOf(3 * 1024 * 1024 + 17);

/**
 * A server on 127.0.0.1 that answers each connection by `answer`, on the socket itself: what it
 * writes is exactly what the client reads. Records each request's head.
 */
async function rawServer(
  answer: (socket: Socket, head: string) => void,
): Promise<{ url: (path: string) => URL; heads: string[] }> {
  const heads: string[] = [];
  const server = createServer((socket) => {
    let got = '';
    socket.on('error', () => {});
    socket.on('data', (d) => {
      if (got.includes('\r\n\r\n')) return;
      got += d.toString('latin1');
      if (got.includes('\r\n\r\n')) {
        heads.push(got);
        answer(socket, got);
      }
    });
  });
  rawServers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { url: (path) => new URL(`http://127.0.0.1:${port}${path}`), heads };
}

async function collect(body: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** pumpBody into copies; also the distinct buffers the chunks were views of. */
async function pumped(
  body: RawBody,
): Promise<{ bytes: Buffer; buffers: Set<ArrayBufferLike>; calls: number }> {
  const chunks: Buffer[] = [];
  const buffers = new Set<ArrayBufferLike>();
  let calls = 0;
  await pumpBody(body, (chunk) => {
    calls++;
    buffers.add(chunk.buffer);
    chunks.push(Buffer.from(chunk));
  });
  return { bytes: Buffer.concat(chunks), buffers, calls };
}

function sha(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

describe('rawHttpGet', () => {
  it('reads a Content-Length body as a stream, on a connection closed after it', async () => {
    const server = await servers.start((_req, res) => {
      res.writeHead(200, { 'content-length': String(BIG.length), 'docker-content-digest': 'sha256:x' });
      res.end(BIG);
    });
    const res = await rawHttpGet(
      { url: server.url('/v2/a/blobs/x?q=1'), headers: { authorization: 'Bearer t0k', accept: '*/*' } },
      OPTIONS,
    );
    expect(res?.status).toBe(200);
    expect(res?.headers['docker-content-digest']).toBe('sha256:x');
    const bytes = await collect(res?.body as RawBody);
    expect(sha(bytes)).toBe(sha(BIG));
    const req = server.requests[0];
    expect(req?.target).toBe('/v2/a/blobs/x?q=1');
    expect(req?.headers.authorization).toBe('Bearer t0k');
    expect(req?.headers.host).toBe(server.host);
    expect(req?.headers.connection).toBe('close');
  });

  it('pumps a body to the writer in place: every chunk a view of one reused buffer', async () => {
    const server = await servers.start((_req, res) => {
      res.writeHead(200, { 'content-length': String(BIG.length) });
      res.end(BIG);
    });
    const res = await rawHttpGet({ url: server.url('/b'), headers: {} }, OPTIONS);
    const { bytes, buffers, calls } = await pumped(res?.body as RawBody);
    expect(sha(bytes)).toBe(sha(BIG));
    expect(calls).toBeGreaterThan(1);
    // The bytes that came with the headers are a copy; every later read lands in the same buffer.
    expect(buffers.size).toBeLessThanOrEqual(2);
  });

  it('waits for a writer that answers with a promise before it reads on, keeping each chunk intact', async () => {
    const server = await servers.start((_req, res) => {
      res.writeHead(200, { 'content-length': String(BIG.length) });
      res.end(BIG);
    });
    const res = await rawHttpGet({ url: server.url('/b'), headers: {} }, { ...OPTIONS, idleTimeoutMs: 50 });
    const hash = createHash('sha256');
    let calls = 0;
    await pumpBody(res?.body as RawBody, async (chunk) => {
      calls++;
      const before = sha(chunk);
      // Longer than the idle timeout: a reader's own wait is not the server's silence.
      await new Promise((resolve) => setTimeout(resolve, calls === 1 ? 120 : 0));
      expect(sha(chunk)).toBe(before);
      hash.update(chunk);
    });
    expect(hash.digest('hex')).toBe(sha(BIG));
  });

  it('decodes a chunked body split anywhere across reads, with extensions and trailers', async () => {
    const wire = Buffer.from(
      '5;name=x\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nx-trailer: 1\r\n\r\n',
    );
    const { url } = await rawServer((socket) => {
      socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n');
      // One byte a write, each after the last: every boundary falls between reads somewhere.
      let i = 0;
      const next = () => {
        if (i >= wire.length) return;
        socket.write(wire.subarray(i, i + 1), () => setTimeout(next, 1));
        i++;
      };
      next();
    });
    for (const mode of ['stream', 'pump'] as const) {
      const res = await rawHttpGet({ url: url('/c'), headers: {} }, OPTIONS);
      const body = res?.body as RawBody;
      const bytes = mode === 'stream' ? await collect(body) : (await pumped(body)).bytes;
      expect(bytes.toString()).toBe('helloabcdefghijklmnopqrstuvwxyz');
    }
  });

  it('decodes a large chunked body from node:http', async () => {
    const server = await servers.start((_req, res) => {
      res.writeHead(200);
      for (let at = 0; at < BIG.length; at += 100_000) res.write(BIG.subarray(at, at + 100_000));
      res.end();
    });
    const res = await rawHttpGet({ url: server.url('/c'), headers: {} }, OPTIONS);
    expect(res?.headers['transfer-encoding']).toBe('chunked');
    expect(sha((await pumped(res?.body as RawBody)).bytes)).toBe(sha(BIG));
  });

  it('reads a body without length or chunks until the connection closes', async () => {
    const { url } = await rawServer((socket) => {
      socket.end(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\n\r\n'), BIG.subarray(0, 70_000)]));
    });
    const res = await rawHttpGet({ url: url('/d'), headers: {} }, OPTIONS);
    expect((await collect(res?.body as RawBody)).equals(BIG.subarray(0, 70_000))).toBe(true);
  });

  it('reads an error answer and its JSON body', async () => {
    const server = await servers.start((_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"BLOB_UNKNOWN"}]}');
    });
    const res = await rawHttpGet({ url: server.url('/e'), headers: {} }, OPTIONS);
    expect(res?.status).toBe(404);
    expect((await collect(res?.body as RawBody)).toString()).toBe('{"errors":[{"code":"BLOB_UNKNOWN"}]}');
  });

  for (const framing of ['length', 'close'] as const) {
    it(`keeps a body that came whole before the connection closed, read later (${framing})`, async () => {
      const body = '{"errors":[{"code":"DENIED","message":"not yours"}]}';
      const length = framing === 'length' ? `content-length: ${body.length}\r\n` : '';
      const { url } = await rawServer((socket) => {
        socket.end(`HTTP/1.1 403 Forbidden\r\n${length}\r\n${body}`);
      });
      const res = await rawHttpGet({ url: url('/late'), headers: {} }, OPTIONS);
      // The server has closed by now: what it sent is still there to read.
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect((await collect(res?.body as RawBody)).toString()).toBe(body);
      const again = await rawHttpGet({ url: url('/late'), headers: {} }, OPTIONS);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect((await pumped(again?.body as RawBody)).bytes.toString()).toBe(body);
    });
  }

  it('keeps repeated header fields apart', async () => {
    const { url } = await rawServer((socket) => {
      socket.end(
        'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm="a"\r\nwww-authenticate: Bearer realm="b"\r\ncontent-length: 0\r\n\r\n',
      );
    });
    const res = await rawHttpGet({ url: url('/f'), headers: {} }, OPTIONS);
    expect(res?.headers['www-authenticate']).toEqual(['Basic realm="a"', 'Bearer realm="b"']);
    expect(await collect(res?.body as RawBody)).toHaveLength(0);
  });

  for (const mode of ['stream', 'pump'] as const) {
    it(`fails a body cut short with ECONNRESET, saying how far it got (${mode})`, async () => {
      const { url } = await rawServer((socket) => {
        socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${BIG.length}\r\n\r\n`);
        socket.write(BIG.subarray(0, 100_000), () => socket.destroy());
      });
      const res = await rawHttpGet({ url: url('/g'), headers: {} }, OPTIONS);
      const body = res?.body as RawBody;
      const err = await (mode === 'stream' ? collect(body) : pumped(body)).then(
        () => undefined,
        (e: NodeJS.ErrnoException) => e,
      );
      expect(err?.code).toBe('ECONNRESET');
      expect(err?.message).toBe(`the connection closed after 100000 of ${BIG.length} bytes of the body`);
    });
  }

  it('fails a malformed chunked body', async () => {
    const { url } = await rawServer((socket) => {
      socket.end('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n');
    });
    const res = await rawHttpGet({ url: url('/h'), headers: {} }, OPTIONS);
    const err = await pumped(res?.body as RawBody).then(
      () => undefined,
      (e: NodeJS.ErrnoException) => e,
    );
    expect(err?.code).toBe('HPE_INVALID_CHUNK_SIZE');
    expect(err?.message).toContain('not a hexadecimal number');
  });

  it('fails a chunked body whose trailer fields never end', async () => {
    const { url } = await rawServer((socket) => {
      socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n');
      // Trailer lines, each short, without the empty line that would end them.
      for (let i = 0; i < 1000; i++) socket.write(`x-t${i}: ${'v'.repeat(40)}\r\n`);
    });
    const res = await rawHttpGet({ url: url('/t'), headers: {} }, OPTIONS);
    const err = await pumped(res?.body as RawBody).then(
      () => undefined,
      (e: NodeJS.ErrnoException) => e,
    );
    expect(err?.code).toBe('HPE_INVALID_CHUNK_SIZE');
    expect(err?.message).toBe(
      'the registry sent a malformed chunked body: its trailer fields pass 16384 bytes',
    );
  });

  it('keeps header fields named like Object properties as fields, and leaves control characters to node:http', async () => {
    const { url } = await rawServer((socket, head) => {
      if (head.startsWith('GET /ctl'))
        socket.end('HTTP/1.1 200 OK\r\nx-a: a\x01b\r\ncontent-length: 0\r\n\r\n');
      else socket.end('HTTP/1.1 200 OK\r\n__proto__: x\r\nconstructor: y\r\ncontent-length: 0\r\n\r\n');
    });
    const res = await rawHttpGet({ url: url('/proto'), headers: {} }, OPTIONS);
    expect(Object.entries(res?.headers ?? {})).toEqual([
      ['__proto__', 'x'],
      ['constructor', 'y'],
      ['content-length', '0'],
    ]);
    expect(await rawHttpGet({ url: url('/ctl'), headers: {} }, OPTIONS)).toBeUndefined();
  });

  it('leaves no abort listener behind on a request that ends before its answer is taken', async () => {
    const controller = new AbortController();
    const server = await servers.start((_req, res) => {
      res.end();
    });
    const refused = server.url('/r');
    await server.close();
    await rawHttpGet({ url: refused, headers: {}, signal: controller.signal }, OPTIONS).catch(() => {});
    const { url } = await rawServer((socket) => {
      socket.end('HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\nxx');
    });
    expect(
      await rawHttpGet({ url: url('/s'), headers: {}, signal: controller.signal }, OPTIONS),
    ).toBeUndefined();
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('fails when the server goes silent mid-body', async () => {
    const { url } = await rawServer((socket) => {
      socket.write(`HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n`);
      socket.write(BIG.subarray(0, 10));
    });
    const res = await rawHttpGet({ url: url('/i'), headers: {} }, { ...OPTIONS, idleTimeoutMs: 100 });
    const err = await pumped(res?.body as RawBody).then(
      () => undefined,
      (e: NodeJS.ErrnoException) => e,
    );
    expect(err?.code).toBe('ETIMEDOUT');
    expect(err?.message).toMatch(/went silent for 100 ms/);
  });

  it('fails with the abort error when the signal aborts before the answer, and closes the connection', async () => {
    let closed: Promise<void> = Promise.resolve();
    const { url } = await rawServer((socket) => {
      // No answer: the request waits until it is aborted.
      closed = new Promise((resolve) => socket.on('close', () => resolve()));
    });
    const controller = new AbortController();
    const stop = new Error('stopped by the caller');
    const pending = rawHttpGet(
      { url: url('/j'), headers: {}, signal: controller.signal, aborted: () => stop },
      OPTIONS,
    ).then(
      () => undefined,
      (e: Error) => e,
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    controller.abort();
    expect(await pending).toBe(stop);
    await closed;
  });

  it('ends a pumped body with the error it is destroyed with (the caller aborting), and closes the connection', async () => {
    let closed: Promise<void> = Promise.resolve();
    const { url } = await rawServer((socket) => {
      closed = new Promise((resolve) => socket.on('close', () => resolve()));
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n');
      socket.write(BIG.subarray(0, 10));
    });
    const res = await rawHttpGet({ url: url('/j'), headers: {} }, OPTIONS);
    const body = res?.body as RawBody;
    const done = pumped(body).then(
      () => undefined,
      (e: Error) => e,
    );
    const stop = new Error('stopped by the caller');
    setTimeout(() => body.destroy(stop), 50);
    expect(await done).toBe(stop);
    await closed;
  });

  it('stops at a writer that throws, with its error, and closes the connection', async () => {
    let closed: Promise<void> = Promise.resolve();
    const server = await servers.start((_req, res, raw) => {
      closed = new Promise((resolve) => raw.socket.on('close', () => resolve()));
      res.writeHead(200, { 'content-length': String(BIG.length) });
      res.end(BIG);
    });
    const res = await rawHttpGet({ url: server.url('/k'), headers: {} }, OPTIONS);
    const full = new Error('ENOSPC: no space left on device');
    const err = await pumpBody(res?.body as RawBody, () => {
      throw full;
    }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).toBe(full);
    await closed;
  });

  it('refuses headers larger than node:http allows', async () => {
    const { url } = await rawServer((socket) => {
      socket.end(`HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(20_000)}\r\ncontent-length: 0\r\n\r\n`);
    });
    const err = await rawHttpGet({ url: url('/l'), headers: {} }, OPTIONS).then(
      () => undefined,
      (e: NodeJS.ErrnoException) => e,
    );
    expect(err?.code).toBe('HPE_HEADER_OVERFLOW');
  });

  it('leaves to node:http an answer framed both ways, a folded header, or a request header with CR LF', async () => {
    const { url, heads } = await rawServer((socket, head) => {
      if (head.startsWith('GET /both')) {
        socket.end(
          'HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
        );
      } else socket.end('HTTP/1.1 200 OK\r\nx-a: 1\r\n  folded\r\ncontent-length: 5\r\n\r\nhello');
    });
    expect(await rawHttpGet({ url: url('/both'), headers: {} }, OPTIONS)).toBeUndefined();
    expect(await rawHttpGet({ url: url('/fold'), headers: {} }, OPTIONS)).toBeUndefined();
    expect(
      await rawHttpGet({ url: url('/crlf'), headers: { 'x-a': 'a\r\nx-injected: 1' } }, OPTIONS),
    ).toBeUndefined();
    // The last one was never sent.
    expect(heads.map((h) => h.split(' ')[1])).toEqual(['/both', '/fold']);
  });

  it('fails ECONNREFUSED when nothing listens', async () => {
    const server = await servers.start((_req, res) => {
      res.end();
    });
    const url = server.url('/m');
    await server.close();
    const err = await rawHttpGet({ url, headers: {} }, OPTIONS).then(
      () => undefined,
      (e: NodeJS.ErrnoException) => e,
    );
    expect(err?.code).toBe('ECONNREFUSED');
  });
});

describe('nodeHttpExchange with bulkBody', () => {
  it('reads a plain-HTTP bulk GET off a connection of its own, and anything else by node:http', async () => {
    const server = await servers.start((_req, res) => {
      res.writeHead(200, { 'content-length': String(BIG.length) });
      res.end(BIG);
    });
    const exchange = nodeHttpExchange(OPTIONS);
    const bulk = await exchange({ method: 'GET', url: server.url('/n'), headers: {}, bulkBody: true });
    expect(bulk.body).toBeInstanceOf(RawBody);
    expect(sha(await collect(bulk.body as AsyncIterable<Buffer>))).toBe(sha(BIG));
    const plain = await exchange({ method: 'GET', url: server.url('/o'), headers: {} });
    expect(plain.body).not.toBeInstanceOf(RawBody);
    await collect(plain.body as AsyncIterable<Buffer>);
    expect(server.requests.map((r) => r.headers.connection)).toEqual(['close', 'keep-alive']);
  });

  it('sends again by node:http an answer it does not take, and asks that origin by node:http from then on', async () => {
    const { url, heads } = await rawServer((socket) => {
      // A coding besides chunked: node:http's to judge (it reads the chunks, the gzip stays).
      socket.end(
        'HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\nconnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
      );
    });
    const exchange = nodeHttpExchange(OPTIONS);
    for (const path of ['/p', '/q']) {
      const res = await exchange({ method: 'GET', url: url(path), headers: {}, bulkBody: true });
      expect(res.body).not.toBeInstanceOf(RawBody);
      expect((await collect(res.body as AsyncIterable<Buffer>)).toString()).toBe('hello');
    }
    expect(heads.map((h) => [h.split(' ')[1], /connection: (\S+)/i.exec(h)?.[1]])).toEqual([
      ['/p', 'close'],
      ['/p', 'keep-alive'],
      ['/q', 'keep-alive'],
    ]);
  });
});
