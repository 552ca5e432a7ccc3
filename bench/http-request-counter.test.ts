import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HttpRequestCounter, MAX_HEADER_SECTION_BYTES, MAX_RECORDED_LINES } from './http-request-counter.js';

const DECOY = 'GET / HTTP/1.1\r\n\r\n';

function count(...chunks: (string | Uint8Array)[]): HttpRequestCounter {
  const counter = new HttpRequestCounter();
  for (const chunk of chunks) counter.feed(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk);
  return counter;
}

function byteByByte(stream: string | Uint8Array): HttpRequestCounter {
  const bytes = typeof stream === 'string' ? Buffer.from(stream, 'latin1') : stream;
  const counter = new HttpRequestCounter();
  for (let i = 0; i < bytes.length; i++) counter.feed(bytes.subarray(i, i + 1));
  return counter;
}

const GET = 'GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1:5000\r\nAccept: */*\r\n\r\n';
const HEAD = 'HEAD /v2/library/alpine/manifests/latest HTTP/1.1\r\nHost: r\r\n\r\n';
const PUT_WITH_DECOY = `PUT /v2/x/blobs/uploads/1?digest=sha256:ab HTTP/1.1\r\nHost: r\r\nContent-Length: ${DECOY.length}\r\n\r\n${DECOY}`;
const CHUNKED_PATCH = [
  'PATCH /v2/x/blobs/uploads/1 HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\n\r\n',
  `${DECOY.length.toString(16)}\r\n${DECOY}\r\n`,
  '4;name=value\r\n\r\n\r\n\r\n',
  'A\r\n0123456789\r\n',
  '0\r\nDigest: sha-256=:x:\r\nX-Trailer: 1\r\n\r\n',
].join('');

describe('HttpRequestCounter', () => {
  it('counts one GET with its method and request line', () => {
    const c = count(GET);
    expect(c.requests).toBe(1);
    expect(c.methods).toEqual({ GET: 1 });
    expect(c.lines).toEqual(['GET /v2/']);
    expect(c.broken).toBe(false);
  });

  it('counts pipelined requests that arrive in one chunk', () => {
    const c = count(GET + HEAD);
    expect(c.requests).toBe(2);
    expect(c.methods).toEqual({ GET: 1, HEAD: 1 });
    expect(c.lines).toEqual(['GET /v2/', 'HEAD /v2/library/alpine/manifests/latest']);
  });

  it('skips a Content-Length body that holds a request line, then reads the next request', () => {
    expect(count(PUT_WITH_DECOY).requests).toBe(1);
    const c = count(PUT_WITH_DECOY + GET);
    expect(c.requests).toBe(2);
    expect(c.methods).toEqual({ PUT: 1, GET: 1 });
    expect(c.broken).toBe(false);
  });

  it('skips a chunked body with extensions, CRLFs in its data and a trailer section', () => {
    expect(count(CHUNKED_PATCH).requests).toBe(1);
    const c = count(CHUNKED_PATCH + GET);
    expect(c.methods).toEqual({ PATCH: 1, GET: 1 });
    expect(c.broken).toBe(false);
  });

  it('ends a chunked body with an empty trailer section', () => {
    const c = count(
      `POST /t HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n${GET}`,
    );
    expect(c.methods).toEqual({ POST: 1, GET: 1 });
  });

  it('takes the bytes after a head as body until Content-Length is reached', () => {
    const c = count('PUT /a HTTP/1.1\r\nContent-Length: 10\r\n\r\n01234');
    c.feed(Buffer.from('GET /'));
    expect(c.requests).toBe(1);
    c.feed(Buffer.from(GET));
    expect(c.methods).toEqual({ PUT: 1, GET: 1 });
  });

  it('gives the same counts when every stream is fed byte by byte', () => {
    for (const stream of [GET, GET + HEAD, PUT_WITH_DECOY + GET, CHUNKED_PATCH + GET + HEAD]) {
      const whole = count(stream);
      const split = byteByByte(stream);
      expect(split.requests).toBe(whole.requests);
      expect(split.methods).toEqual(whole.methods);
      expect(split.lines).toEqual(whole.lines);
      expect(split.broken).toBe(false);
    }
    expect(byteByByte(CHUNKED_PATCH + GET + HEAD).requests).toBe(3);
  });

  it('ignores empty lines before a request line (RFC 9112 §2.2)', () => {
    const c = count(`POST /a HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi\r\n${GET}`);
    expect(c.methods).toEqual({ POST: 1, GET: 1 });
    expect(c.broken).toBe(false);
  });

  it('reads repeated equal Content-Length values and lower-case field names', () => {
    const c = count(`PUT /a HTTP/1.1\r\ncontent-length: 3, 3\r\nContent-Length:3\r\n\r\nabc${GET}`);
    expect(c.methods).toEqual({ PUT: 1, GET: 1 });
  });

  // The last number is how many requests had a complete head before the framing went wrong: they
  // were sent, so they stay counted; the GET fed after the garbage never is.
  it.each([
    ['a TLS ClientHello', Buffer.from('16030100a5010000a10303', 'hex'), 0],
    ['text that is not a request line', 'hello world\r\n\r\n', 0],
    ['an HTTP/2 connection preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 0],
    ['a request line without a version', 'GET /\r\n\r\n', 0],
    ['a header line without a colon', 'GET / HTTP/1.1\r\nHost r\r\n\r\n', 0],
    ['an obs-fold header line', 'GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n', 0],
    ['a bare LF in a header', 'GET / HTTP/1.1\r\nA: b\nB: c\r\n\r\n', 0],
    ['conflicting Content-Lengths', 'PUT / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', 0],
    ['a negative Content-Length', 'PUT / HTTP/1.1\r\nContent-Length: -1\r\n\r\n', 0],
    [
      'Content-Length with Transfer-Encoding',
      'PUT / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n',
      0,
    ],
    ['a final coding other than chunked', 'PUT / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n', 0],
    ['a chunk size that is not hex', 'PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 1],
    ['chunk data not followed by CRLF', 'PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n', 1],
    [
      'a trailer line without a colon',
      'PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nnope\r\n\r\n',
      1,
    ],
  ] as const)('stops counting, without throwing, on %s', (_name, garbage, countedBefore) => {
    const c = count(garbage, GET);
    expect(c.broken).toBe(true);
    expect(c.stopReason).toEqual(expect.any(String));
    expect(c.requests).toBe(countedBefore);
  });

  it('stops at the first byte that cannot start a method, before any CRLF', () => {
    const c = count(Buffer.from([0x16, 0x03, 0x01]));
    expect(c.broken).toBe(true);
    expect(c.stopReason).toBe('not an HTTP request line');
  });

  it(`accepts a header section of exactly ${MAX_HEADER_SECTION_BYTES} bytes and stops at one byte more`, () => {
    const prefix = 'GET / HTTP/1.1\r\nX-Fill: ';
    const fill = (n: number) => `${prefix}${'a'.repeat(n - prefix.length - 4)}\r\n\r\n`;
    expect(fill(MAX_HEADER_SECTION_BYTES)).toHaveLength(MAX_HEADER_SECTION_BYTES);
    const atLimit = count(fill(MAX_HEADER_SECTION_BYTES) + GET);
    expect(atLimit.requests).toBe(2);
    expect(atLimit.broken).toBe(false);
    const over = count(fill(MAX_HEADER_SECTION_BYTES + 1) + GET);
    expect(over.requests).toBe(0);
    expect(over.broken).toBe(true);
    expect(over.stopReason).toMatch(/header section over/);
  });

  it('stops on a header section that never ends, fed in pieces', () => {
    const c = count('GET / HTTP/1.1\r\n');
    for (let i = 0; i < 100; i++) c.feed(Buffer.from(`X-${i}: ${'v'.repeat(1000)}\r\n`));
    expect(c.broken).toBe(true);
    expect(c.requests).toBe(0);
  });

  it('stops after CONNECT or an Upgrade request, whose connection may carry another protocol', () => {
    const connect = count(`CONNECT r:443 HTTP/1.1\r\nHost: r:443\r\n\r\n${GET}`);
    expect(connect.requests).toBe(1);
    expect(connect.broken).toBe(true);
    const upgrade = count(`GET /ws HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n${GET}`);
    expect(upgrade.requests).toBe(1);
    expect(upgrade.broken).toBe(true);
  });

  it(`keeps the last ${MAX_RECORDED_LINES} request lines`, () => {
    const c = new HttpRequestCounter();
    for (let i = 0; i < MAX_RECORDED_LINES + 5; i++) c.feed(Buffer.from(`GET /${i} HTTP/1.1\r\n\r\n`));
    expect(c.requests).toBe(MAX_RECORDED_LINES + 5);
    expect(c.lines).toHaveLength(MAX_RECORDED_LINES);
    expect(c.lines[0]).toBe('GET /5');
    expect(c.lines.at(-1)).toBe(`GET /${MAX_RECORDED_LINES + 4}`);
  });

  it('calls onRequest once per request, in order', () => {
    const seen: string[] = [];
    const c = new HttpRequestCounter({ onRequest: (method, target) => seen.push(`${method} ${target}`) });
    c.feed(Buffer.from(GET + PUT_WITH_DECOY));
    expect(seen).toEqual(['GET /v2/', 'PUT /v2/x/blobs/uploads/1?digest=sha256:ab']);
  });

  it('keeps a method named like an Object property as an own key', () => {
    const c = count('__proto__ / HTTP/1.1\r\n\r\nconstructor / HTTP/1.1\r\n\r\n');
    expect(Object.entries(c.methods)).toEqual([
      ['__proto__', 1],
      ['constructor', 1],
    ]);
  });

  describe('on generated request streams', () => {
    const token = fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,12}$/);
    const method = fc.oneof(
      fc.constantFrom('GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE', 'OPTIONS'),
      fc.stringMatching(/^[A-Z][A-Z_-]{0,9}$/).filter((m) => m !== 'CONNECT'),
    );
    const target = fc.stringMatching(/^\/[\x21-\x7e]{0,40}$/);
    const header = fc.tuple(
      token.filter((n) => !['content-length', 'transfer-encoding', 'upgrade'].includes(n.toLowerCase())),
      fc.stringMatching(/^[\x21-\x7e]([\x20-\x7e]{0,30}[\x21-\x7e])?$/),
    );
    // Binary data with request-looking text and CRLFs mixed in: only framing may decide.
    const data = fc
      .array(
        fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.constantFrom(DECOY, '\r\n', '\r\n\r\n', '0\r\n\r\n')),
        {
          maxLength: 4,
        },
      )
      .map((parts) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p))));
    const body = fc.oneof(
      fc.constant({ kind: 'none' as const }),
      fc.record({ kind: fc.constant('length' as const), data }),
      fc.record({
        kind: fc.constant('chunked' as const),
        chunks: fc.array(
          fc.tuple(
            data.filter((d) => d.length > 0),
            fc.boolean(),
            fc.boolean(),
          ),
          { maxLength: 4 },
        ),
        trailers: fc.array(header, { maxLength: 2 }),
      }),
    );
    const request = fc.record({
      method,
      target,
      headers: fc.array(header, { maxLength: 4 }),
      body,
      leadingCrlf: fc.boolean(),
    });
    type Request = typeof request extends fc.Arbitrary<infer T> ? T : never;

    function serialize(r: Request): Buffer {
      const fields = r.headers.map(([n, v]) => `${n}: ${v}\r\n`);
      const parts: Buffer[] = [];
      if (r.leadingCrlf) parts.push(Buffer.from('\r\n'));
      if (r.body.kind === 'length') fields.push(`Content-Length: ${r.body.data.length}\r\n`);
      if (r.body.kind === 'chunked') fields.push('Transfer-Encoding: chunked\r\n');
      parts.push(Buffer.from(`${r.method} ${r.target} HTTP/1.1\r\n${fields.join('')}\r\n`, 'latin1'));
      if (r.body.kind === 'length') parts.push(r.body.data);
      if (r.body.kind === 'chunked') {
        for (const [chunk, upper, ext] of r.body.chunks) {
          const size = chunk.length.toString(16);
          parts.push(Buffer.from(`${upper ? size.toUpperCase() : size}${ext ? ';x="a;b"' : ''}\r\n`), chunk);
          parts.push(Buffer.from('\r\n'));
        }
        parts.push(Buffer.from(`0\r\n${r.body.trailers.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`));
      }
      return Buffer.concat(parts);
    }

    const stream = fc.array(request, { minLength: 1, maxLength: 6 }).map((requests) => ({
      requests,
      bytes: Buffer.concat(requests.map(serialize)),
    }));

    function tally(requests: Request[]): Record<string, number> {
      const methods: Record<string, number> = {};
      for (const r of requests) methods[r.method] = (methods[r.method] ?? 0) + 1;
      return methods;
    }

    it('counts every request and method when fed whole', () => {
      fc.assert(
        fc.property(stream, ({ requests, bytes }) => {
          const c = count(bytes);
          expect(c.broken).toBe(false);
          expect(c.requests).toBe(requests.length);
          expect(c.methods).toEqual(tally(requests));
          expect(c.lines).toEqual(requests.map((r) => `${r.method} ${r.target}`));
        }),
      );
    });

    it('gives the same counts for any split into chunks', () => {
      fc.assert(
        fc.property(stream, fc.array(fc.nat(), { maxLength: 40 }), ({ bytes }, cuts) => {
          const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
          const split = new HttpRequestCounter();
          let from = 0;
          for (const p of [...points, bytes.length]) {
            split.feed(bytes.subarray(from, p));
            from = p;
          }
          const whole = count(bytes);
          expect(split.requests).toBe(whole.requests);
          expect(split.methods).toEqual(whole.methods);
          expect(split.lines).toEqual(whole.lines);
          expect(split.broken).toBe(whole.broken);
        }),
      );
    });

    it('gives the same counts fed byte by byte', () => {
      fc.assert(
        fc.property(stream, ({ requests, bytes }) => {
          const c = byteByByte(bytes);
          expect(c.requests).toBe(requests.length);
          expect(c.methods).toEqual(tally(requests));
        }),
        { numRuns: 50 },
      );
    });

    it('never throws on arbitrary bytes, and counts nothing that does not start like a method', () => {
      fc.assert(
        fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 5 }), (chunks) => {
          const c = new HttpRequestCounter();
          for (const chunk of chunks) c.feed(chunk);
          const bytes = Buffer.concat(chunks);
          const first = bytes.find((b) => b !== 0x0d && b !== 0x0a);
          if (first !== undefined && !/[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(String.fromCharCode(first))) {
            expect(c.broken).toBe(true);
            expect(c.requests).toBe(0);
          }
          if (c.requests > 0) expect(bytes.includes(' HTTP/1.')).toBe(true);
        }),
      );
    });
  });
});
