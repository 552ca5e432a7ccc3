import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createAuthClient } from '../auth/create-auth-client.js';
import { RegistryClient } from '../registry/registry-client.js';
import {
  type LoopbackHandler,
  type LoopbackServer,
  loopbackServers,
  type RecordedRequest,
} from '../testing/loopback-server.js';
import { rejection } from '../testing/rejection.js';
import { createTransport } from '../transport/create-transport.js';
import {
  type BlobDescriptor,
  MAX_BLOB_RESUMES,
  pumpBlob,
  type ReadBlobOptions,
  readBlob,
} from './read-blob.js';

const servers = loopbackServers();
afterEach(() => servers.closeAll());

const REPO = 'team/app';
const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** Deterministic bytes covering all 256 values, so an off-by-one in skipping shows in the digest. */
function blobOf(size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + (i >> 8)) & 0xff;
  return out;
}

// Over 4 MiB: pumpBlob asks for it as a bulk body, read straight off its connection (rawHttpGet).
const BLOB = blobOf(4 * 1024 * 1024 + 123);
const DESCRIPTOR: BlobDescriptor = { digest: sha256(BLOB), size: BLOB.length };
const BLOB_PATH = `/v2/${REPO}/blobs/${DESCRIPTOR.digest}`;

async function registryWith(
  handler: LoopbackHandler,
): Promise<{ server: LoopbackServer; client: RegistryClient }> {
  const server = await servers.start(handler);
  const client = new RegistryClient({
    registry: server.host,
    send: createAuthClient({
      send: createTransport({ env: {}, maxRetries: 1, sleep: async () => {} }),
      credentials: { find: async () => undefined },
    }).send,
  });
  return { server, client };
}

/** Reads a blob to its end, handing each chunk to `onChunk` (a copy: pumpBlob's are views of a reused buffer). */
type Reader = (
  client: RegistryClient,
  descriptor: BlobDescriptor,
  options: ReadBlobOptions,
  onChunk: (chunk: Buffer) => void,
) => Promise<void>;

const READERS: Record<string, Reader> = {
  readBlob: async (client, descriptor, options, onChunk) => {
    for await (const chunk of readBlob(client, REPO, descriptor, options)) onChunk(chunk);
  },
  pumpBlob: (client, descriptor, options, onChunk) =>
    pumpBlob(client, REPO, descriptor, (chunk) => onChunk(Buffer.from(chunk)), options),
};

describe.each(Object.keys(READERS))('%s', (name) => {
  const run = READERS[name] as Reader;

  /** Reads the blob to the end; records progress and resumes. */
  async function read(
    client: RegistryClient,
    descriptor: BlobDescriptor = DESCRIPTOR,
  ): Promise<{ bytes: Buffer; progress: number; resumes: { offset: number; reason: string }[] }> {
    const chunks: Buffer[] = [];
    let progress = 0;
    const resumes: { offset: number; reason: string }[] = [];
    const options: ReadBlobOptions = {
      onBytes: (n) => {
        progress += n;
      },
      onResume: (offset, reason) => {
        resumes.push({ offset, reason });
      },
      sleep: async () => {},
    };
    await run(client, descriptor, options, (chunk) => chunks.push(chunk));
    return { bytes: Buffer.concat(chunks), progress, resumes };
  }

  /** Answers a blob GET as distribution does: 206 with Content-Range for `Range: bytes=N-`, else 200. */
  function serveBlob(blob: Buffer, req: RecordedRequest, res: ServerResponse): void {
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range) {
      const start = Number(range[1]);
      res.writeHead(206, {
        'content-length': String(blob.length - start),
        'content-range': `bytes ${start}-${blob.length - 1}/${blob.length}`,
      });
      res.end(blob.subarray(start));
      return;
    }
    res.writeHead(200, { 'content-length': String(blob.length) });
    res.end(blob);
  }

  /** Promises the full length, sends `count` bytes from `from`, then drops the connection. */
  function breakAfter(res: ServerResponse, blob: Buffer, from: number, count: number, status = 200): void {
    const headers: Record<string, string> = { 'content-length': String(blob.length - from) };
    if (status === 206) headers['content-range'] = `bytes ${from}-${blob.length - 1}/${blob.length}`;
    res.writeHead(status, headers);
    res.write(blob.subarray(from, from + count), () => res.destroy());
  }

  describe('reading', () => {
    it('yields the whole blob from one GET and checks its digest', async () => {
      const { client, server } = await registryWith((req, res) => serveBlob(BLOB, req, res));
      const { bytes, progress, resumes } = await read(client);
      expect(bytes.equals(BLOB)).toBe(true);
      expect(progress).toBe(BLOB.length);
      expect(resumes).toEqual([]);
      expect(server.requests).toHaveLength(1);
      expect(server.requests[0]?.url.pathname).toBe(BLOB_PATH);
      expect(server.requests[0]?.headers.range).toBeUndefined();
      // pumpBlob reads a blob this large off a connection of its own (rawHttpGet), closed after it.
      expect(server.requests[0]?.headers.connection).toBe(name === 'pumpBlob' ? 'close' : 'keep-alive');
    });

    it('resumes with Range from the last byte received when the connection breaks mid-blob', async () => {
      const BREAK_AT = 10_000;
      const { client, server } = await registryWith((req, res) => {
        if (server.requests.length === 1) breakAfter(res, BLOB, 0, BREAK_AT);
        else serveBlob(BLOB, req, res);
      });
      const { bytes, progress, resumes } = await read(client);
      expect(bytes.equals(BLOB)).toBe(true);
      expect(progress).toBe(BLOB.length);
      expect(resumes.map((r) => r.offset)).toEqual([BREAK_AT]);
      expect(resumes[0]?.reason).toMatch(/connection broke/);
      expect(server.requests).toHaveLength(2);
      expect(server.requests[0]?.headers.range).toBeUndefined();
      expect(server.requests[1]?.headers.range).toBe(`bytes=${BREAK_AT}-`);
    });

    it('skips the bytes it already has when the registry ignores Range and sends the whole blob again', async () => {
      const BREAK_AT = 20_001;
      const { client, server } = await registryWith((_req, res) => {
        if (server.requests.length === 1) {
          breakAfter(res, BLOB, 0, BREAK_AT);
          return;
        }
        res.writeHead(200, { 'content-length': String(BLOB.length) });
        res.end(BLOB);
      });
      const { bytes, progress, resumes } = await read(client);
      expect(bytes.equals(BLOB)).toBe(true);
      // Progress counts each byte once: the repeated prefix is not reported again.
      expect(progress).toBe(BLOB.length);
      expect(resumes.map((r) => r.offset)).toEqual([BREAK_AT]);
      expect(server.requests[1]?.headers.range).toBe(`bytes=${BREAK_AT}-`);
    });

    it('resumes when a body ends cleanly short of the descriptor size', async () => {
      const SHORT = 4096;
      const { client, server } = await registryWith((req, res) => {
        if (server.requests.length === 1) {
          // No Content-Length (chunked): a clean end after SHORT bytes, no transport error.
          res.writeHead(200);
          res.end(BLOB.subarray(0, SHORT));
          return;
        }
        serveBlob(BLOB, req, res);
      });
      const { bytes, resumes } = await read(client);
      expect(bytes.equals(BLOB)).toBe(true);
      expect(resumes).toEqual([
        { offset: SHORT, reason: `the body ended at ${SHORT} of ${BLOB.length} bytes` },
      ]);
      expect(server.requests[1]?.headers.range).toBe(`bytes=${SHORT}-`);
      // A chunked answer is read as it is, not asked for again.
      expect(server.requests).toHaveLength(2);
    });

    it(`gives up with ERR_NETWORK naming the digest after ${MAX_BLOB_RESUMES} resumes`, async () => {
      const STEP = 1000;
      const { client, server } = await registryWith((req, res) => {
        const start = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
        breakAfter(res, BLOB, start, STEP, start > 0 ? 206 : 200);
      });
      const resumes: number[] = [];
      const err = await rejection(
        run(
          client,
          DESCRIPTOR,
          {
            onResume: (offset) => {
              resumes.push(offset);
            },
            sleep: async () => {},
          },
          () => {},
        ),
      );
      expect(err.code).toBe('ERR_NETWORK');
      expect(err.message).toContain(DESCRIPTOR.digest);
      expect(err.message).toContain(`after ${(MAX_BLOB_RESUMES + 1) * STEP} bytes`);
      expect(resumes).toEqual(Array.from({ length: MAX_BLOB_RESUMES }, (_, i) => (i + 1) * STEP));
      expect(server.requests).toHaveLength(MAX_BLOB_RESUMES + 1);
    });

    it('throws ERR_DIGEST_MISMATCH when the bytes hash to another digest', async () => {
      const wrong = Buffer.from(BLOB);
      wrong[wrong.length - 1] = (wrong[wrong.length - 1] ?? 0) ^ 0xff;
      const { client } = await registryWith((req, res) => serveBlob(wrong, req, res));
      const err = await rejection(read(client));
      expect(err.code).toBe('ERR_DIGEST_MISMATCH');
      expect(err.message).toContain(DESCRIPTOR.digest);
      expect(err.message).toContain(sha256(wrong));
    });

    it('throws ERR_DIGEST_MISMATCH as soon as the registry sends more bytes than the descriptor states', async () => {
      const longer = Buffer.concat([BLOB, Buffer.from('trailing garbage')]);
      const { client, server } = await registryWith((req, res) => serveBlob(longer, req, res));
      const received: number[] = [];
      const resumes: number[] = [];
      const err = await rejection(
        run(
          client,
          DESCRIPTOR,
          {
            sleep: async () => {},
            onResume: (offset) => {
              resumes.push(offset);
            },
          },
          (chunk) => received.push(chunk.length),
        ),
      );
      expect(err.code).toBe('ERR_DIGEST_MISMATCH');
      expect(err.message).toContain(`more than the ${BLOB.length} bytes`);
      // Nothing past the stated size was handed out.
      expect(received.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(BLOB.length);
      // Refused at once: not taken for a broken connection and asked for again.
      expect(resumes).toEqual([]);
      expect(server.requests).toHaveLength(1);
    });

    it('follows a redirect to a storage host and reads the blob from there', async () => {
      const storage = await servers.start((req, res) => serveBlob(BLOB, req, res));
      const { client, server } = await registryWith((_req, res) => {
        res.writeHead(307, {
          location: storage.url('/bucket/blob?sig=abc').toString(),
          'content-length': '0',
        });
        res.end();
      });
      const { bytes, resumes } = await read(client);
      expect(bytes.equals(BLOB)).toBe(true);
      expect(resumes).toEqual([]);
      expect(server.requests).toHaveLength(1);
      expect(storage.requests.map((r) => r.target)).toEqual(['/bucket/blob?sig=abc']);
      expect(storage.requests[0]?.headers.connection).toBe(name === 'pumpBlob' ? 'close' : 'keep-alive');
    });

    it('refuses a 206 that starts somewhere other than the offset asked for', async () => {
      const { client, server } = await registryWith((_req, res) => {
        if (server.requests.length === 1) {
          breakAfter(res, BLOB, 0, 5000);
          return;
        }
        res.writeHead(206, {
          'content-length': String(BLOB.length),
          'content-range': `bytes 0-${BLOB.length - 1}/${BLOB.length}`,
        });
        res.end(BLOB);
      });
      const err = await rejection(read(client));
      expect(err.code).toBe('ERR_REGISTRY');
      expect(err.message).toContain('from 5000');
    });

    it('turns a 404 BLOB_UNKNOWN envelope into ERR_BLOB_UNKNOWN without retrying', async () => {
      const { client, server } = await registryWith((_req, res) => {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown to registry' }] }));
      });
      const err = await rejection(read(client));
      expect(err.code).toBe('ERR_BLOB_UNKNOWN');
      expect(err.status).toBe(404);
      expect(err.registryErrors).toEqual([{ code: 'BLOB_UNKNOWN', message: 'blob unknown to registry' }]);
      expect(err.message).toContain(DESCRIPTOR.digest);
      expect(server.requests).toHaveLength(1);
    });
  });

  describe('with held bytes (a partial download kept on disk)', () => {
    const HELD = 30_000;

    async function readHeld(
      client: RegistryClient,
      held: Buffer,
    ): Promise<{ bytes: Buffer; resumes: { offset: number; reason: string }[] }> {
      const chunks: Buffer[] = [];
      const resumes: { offset: number; reason: string }[] = [];
      // Held bytes arrive in pieces, as from a file stream.
      const pieces = [held.subarray(0, 1000), held.subarray(1000)];
      await run(
        client,
        DESCRIPTOR,
        {
          held: pieces,
          onResume: (offset, reason) => {
            resumes.push({ offset, reason });
          },
          sleep: async () => {},
        },
        (chunk) => chunks.push(chunk),
      );
      return { bytes: Buffer.concat(chunks), resumes };
    }

    it('asks for the rest with Range from the held length and yields only the rest', async () => {
      const { client, server } = await registryWith((req, res) => serveBlob(BLOB, req, res));
      const { bytes, resumes } = await readHeld(client, BLOB.subarray(0, HELD));
      expect(bytes.equals(BLOB.subarray(HELD))).toBe(true);
      expect(resumes).toEqual([{ offset: HELD, reason: 'continuing a partial download' }]);
      expect(server.requests).toHaveLength(1);
      expect(server.requests[0]?.headers.range).toBe(`bytes=${HELD}-`);
    });

    it('checks the digest of the whole blob: wrong held bytes fail although the rest is right', async () => {
      const { client } = await registryWith((req, res) => serveBlob(BLOB, req, res));
      const held = Buffer.from(BLOB.subarray(0, HELD));
      held[7] = (held[7] ?? 0) ^ 0x01;
      const err = await rejection(readHeld(client, held));
      expect(err.code).toBe('ERR_DIGEST_MISMATCH');
      expect(err.message).toContain(`the ${HELD} bytes held and those received hash to`);
    });

    it('skips the held bytes of a 200 answer from a registry that ignores Range', async () => {
      const { client } = await registryWith((_req, res) => {
        res.writeHead(200, { 'content-length': String(BLOB.length) });
        res.end(BLOB);
      });
      const { bytes } = await readHeld(client, BLOB.subarray(0, HELD));
      expect(bytes.equals(BLOB.subarray(HELD))).toBe(true);
    });

    it('sends no request when the held bytes are the whole blob, and still verifies them', async () => {
      const { client, server } = await registryWith((req, res) => serveBlob(BLOB, req, res));
      const { bytes } = await readHeld(client, BLOB);
      expect(bytes.length).toBe(0);
      expect(server.requests).toHaveLength(0);
      const wrong = Buffer.from(BLOB);
      wrong[0] = (wrong[0] ?? 0) ^ 0x01;
      expect((await rejection(readHeld(client, wrong))).code).toBe('ERR_DIGEST_MISMATCH');
      expect(server.requests).toHaveLength(0);
    });

    it('refuses held bytes longer than the blob before any request', async () => {
      const { client, server } = await registryWith((req, res) => serveBlob(BLOB, req, res));
      const err = await rejection(readHeld(client, Buffer.concat([BLOB, Buffer.from('x')])));
      expect(err.code).toBe('ERR_DIGEST_MISMATCH');
      expect(server.requests).toHaveLength(0);
    });

    it('passes a 416 for the range on with its status, so the caller can start over', async () => {
      const { client } = await registryWith((_req, res) => {
        res.writeHead(416, { 'content-range': `bytes */${BLOB.length}` });
        res.end();
      });
      const err = await rejection(readHeld(client, BLOB.subarray(0, HELD)));
      expect(err.status).toBe(416);
    });
  });
});
