import { createHash, randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createAuthClient } from '../auth/create-auth-client.js';
import { RegistryClient } from '../registry/registry-client.js';
import { type LoopbackServer, loopbackServers, type RecordedRequest } from '../testing/loopback-server.js';
import { rejection } from '../testing/rejection.js';
import { createTransport } from '../transport/create-transport.js';
import type { BlobDescriptor } from './read-blob.js';
import { uploadBlob } from './upload-blob.js';

const servers = loopbackServers();
afterEach(() => servers.closeAll());

const REPO = 'team/app';
const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/**
 * Printable bytes only: the loopback server records request bodies as UTF-8 text, which keeps
 * ASCII intact. The pattern does not repeat within a chunk, so a duplicated or dropped chunk
 * changes the assembled digest.
 */
function blobOf(size: number, seed = 0): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i++) out[i] = 33 + ((i * 7 + (i >> 7) + seed) % 94);
  return out;
}

function descriptorOf(bytes: Buffer): BlobDescriptor {
  return { digest: sha256(bytes), size: bytes.length };
}

/** The blob from `offset` on, in pieces of `piece` bytes, so chunks have to cross piece boundaries. */
function sourceOf(bytes: Buffer, piece = 333): (offset: number) => AsyncIterable<Uint8Array> {
  return async function* (offset = 0) {
    for (let at = offset; at < bytes.length; at += piece)
      yield bytes.subarray(at, Math.min(at + piece, bytes.length));
  };
}

type LocationStyle = 'absolute-url' | 'path' | 'relative' | 'state';

interface FakeRegistryOptions {
  /** How upload Locations are written. Left out: 'path' (`/v2/<name>/blobs/uploads/<uuid>`). */
  readonly location?: LocationStyle;
  /** Sent as OCI-Chunk-Min-Length on the POST that opens a session. */
  readonly chunkMinLength?: number;
  /** Answer mounts with 202 (a new session) even when the source repository has the blob. */
  readonly refuseMounts?: boolean;
  /** The PATCHes (counted from 0) that are stored and then answered 500, as if the answer were lost. */
  readonly storeThenFailPatches?: readonly number[];
}

interface Session {
  readonly name: string;
  data: Buffer;
  /** Bumped on every answer: with the 'state' style, only the newest Location is accepted. */
  state: number;
}

/**
 * A small registry upload endpoint following the distribution spec (spec.md "Pushing blobs"):
 * HEAD blob, POST (with optional mount), PATCH with Content-Range, GET status, PUT ?digest=, DELETE.
 */
class FakeRegistry {
  readonly blobs = new Map<string, Buffer>();
  readonly sessions = new Map<string, Session>();
  readonly deleted: string[] = [];
  #patches = 0;

  constructor(readonly options: FakeRegistryOptions = {}) {}

  has(repo: string, digest: string): Buffer | undefined {
    return this.blobs.get(`${repo}@${digest}`);
  }

  #location(req: RecordedRequest, uuid: string, session: Session): string {
    const path = `/v2/${session.name}/blobs/uploads/${uuid}`;
    switch (this.options.location ?? 'path') {
      case 'absolute-url':
        return new URL(path, req.url).href;
      case 'relative':
        // Resolves against /v2/<name>/blobs/uploads/ and against /v2/<name>/blobs/uploads/<uuid>.
        return uuid;
      case 'state':
        return `${path}?_state=${Buffer.from(JSON.stringify({ uuid, n: session.state })).toString('base64url')}`;
      case 'path':
        return path;
    }
  }

  #error(res: ServerResponse, status: number, code: string, message: string): void {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ errors: [{ code, message }] }));
  }

  #sessionAnswer(
    req: RecordedRequest,
    res: ServerResponse,
    status: number,
    uuid: string,
    session: Session,
    extra: Record<string, string> = {},
  ): void {
    session.state++;
    res.writeHead(status, {
      location: this.#location(req, uuid, session),
      range: `0-${Math.max(0, session.data.length - 1)}`,
      'docker-upload-uuid': uuid,
      'content-length': '0',
      ...extra,
    });
    res.end();
  }

  readonly handle = (req: RecordedRequest, res: ServerResponse): void => {
    const path = req.url.pathname;
    const blob = /^\/v2\/(.+)\/blobs\/(sha256:[0-9a-f]{64})$/.exec(path);
    if (blob) {
      const bytes = this.has(blob[1] ?? '', blob[2] ?? '');
      if (!bytes) {
        res.writeHead(404);
        res.end();
        return;
      }
      res.writeHead(200, { 'content-length': String(bytes.length), 'docker-content-digest': blob[2] });
      res.end(req.method === 'HEAD' ? undefined : bytes);
      return;
    }
    const upload = /^\/v2\/(.+)\/blobs\/uploads\/([^/]*)$/.exec(path);
    if (!upload) {
      this.#error(res, 404, 'NAME_UNKNOWN', `no route for ${path}`);
      return;
    }
    const name = upload[1] ?? '';
    const uuid = upload[2] ?? '';
    if (uuid === '') {
      if (req.method !== 'POST') {
        this.#error(res, 405, 'UNSUPPORTED', `${req.method} on the upload collection`);
        return;
      }
      const mount = req.url.searchParams.get('mount');
      const from = req.url.searchParams.get('from');
      const source = mount && from ? this.has(from, mount) : undefined;
      if (mount && source && !this.options.refuseMounts) {
        this.blobs.set(`${name}@${mount}`, source);
        res.writeHead(201, { location: `/v2/${name}/blobs/${mount}`, 'docker-content-digest': mount });
        res.end();
        return;
      }
      const id = randomUUID();
      const session: Session = { name, data: Buffer.alloc(0), state: 0 };
      this.sessions.set(id, session);
      const min = this.options.chunkMinLength;
      this.#sessionAnswer(
        req,
        res,
        202,
        id,
        session,
        min === undefined ? {} : { 'oci-chunk-min-length': String(min) },
      );
      return;
    }
    const session = this.sessions.get(uuid);
    if (!session || session.name !== name) {
      this.#error(res, 404, 'BLOB_UPLOAD_UNKNOWN', `no upload ${uuid}`);
      return;
    }
    if ((this.options.location ?? 'path') === 'state' && req.method !== 'DELETE') {
      // Distribution checks the HMAC'd state against the upload: a stale Location is refused.
      const state = req.url.searchParams.get('_state') ?? '';
      const expected = Buffer.from(JSON.stringify({ uuid, n: session.state })).toString('base64url');
      if (state !== expected) {
        this.#error(res, 400, 'BLOB_UPLOAD_INVALID', `stale or missing _state ${state}`);
        return;
      }
    }
    const body = Buffer.from(req.body, 'utf8');
    switch (req.method) {
      case 'PATCH': {
        const patch = this.#patches++;
        const range = /^(\d+)-(\d+)$/.exec(String(req.headers['content-range'] ?? ''));
        const start = Number(range?.[1]);
        const end = Number(range?.[2]);
        if (!range || start !== session.data.length || end - start + 1 !== body.length) {
          // spec.md: an out-of-order chunk is answered 416 Range Not Satisfiable.
          res.writeHead(416, { range: `0-${Math.max(0, session.data.length - 1)}`, 'content-length': '0' });
          res.end();
          return;
        }
        session.data = Buffer.concat([session.data, body]);
        if (this.options.storeThenFailPatches?.includes(patch)) {
          res.writeHead(500, { 'content-length': '0' });
          res.end();
          return;
        }
        this.#sessionAnswer(req, res, 202, uuid, session);
        return;
      }
      case 'GET':
        this.#sessionAnswer(req, res, 204, uuid, session);
        return;
      case 'PUT': {
        const digest = req.url.searchParams.get('digest') ?? '';
        const assembled = Buffer.concat([session.data, body]);
        if (sha256(assembled) !== digest) {
          this.#error(res, 400, 'DIGEST_INVALID', `assembled ${sha256(assembled)}, asked ${digest}`);
          return;
        }
        this.sessions.delete(uuid);
        this.blobs.set(`${name}@${digest}`, assembled);
        res.writeHead(201, {
          location: `/v2/${name}/blobs/${digest}`,
          'docker-content-digest': digest,
          'content-length': '0',
        });
        res.end();
        return;
      }
      case 'DELETE':
        this.sessions.delete(uuid);
        this.deleted.push(uuid);
        res.writeHead(204);
        res.end();
        return;
      default:
        this.#error(res, 405, 'UNSUPPORTED', `${req.method} on an upload`);
    }
  };
}

async function registry(
  options: FakeRegistryOptions = {},
  maxRetries = 1,
): Promise<{ fake: FakeRegistry; server: LoopbackServer; client: RegistryClient }> {
  const fake = new FakeRegistry(options);
  const server = await servers.start(fake.handle);
  const client = new RegistryClient({
    registry: server.host,
    send: createAuthClient({
      send: createTransport({ env: {}, maxRetries, sleep: async () => {} }),
      credentials: { find: async () => undefined },
    }).send,
  });
  return { fake, server, client };
}

const methods = (server: LoopbackServer) => server.requests.map((r) => r.method);
const patches = (server: LoopbackServer) => server.requests.filter((r) => r.method === 'PATCH');

describe('uploadBlob', () => {
  it('skips a blob the registry already has, without opening an upload or reading the source', async () => {
    const { fake, server, client } = await registry();
    const bytes = blobOf(500);
    fake.blobs.set(`${REPO}@${sha256(bytes)}`, bytes);
    let opened = 0;
    const how = await uploadBlob(client, REPO, descriptorOf(bytes), () => {
      opened++;
      return sourceOf(bytes)(0);
    });
    expect(how).toBe('skipped');
    expect(methods(server)).toEqual(['HEAD']);
    expect(server.requests[0]?.url.pathname).toBe(`/v2/${REPO}/blobs/${sha256(bytes)}`);
    expect(opened).toBe(0);
  });

  it('mounts from another repository when the registry answers 201', async () => {
    const { fake, server, client } = await registry();
    const bytes = blobOf(500);
    const digest = sha256(bytes);
    fake.blobs.set(`base/image@${digest}`, bytes);
    const how = await uploadBlob(client, REPO, descriptorOf(bytes), sourceOf(bytes), {
      mountFrom: 'base/image',
    });
    expect(how).toBe('mounted');
    expect(methods(server)).toEqual(['HEAD', 'POST']);
    const post = server.requests[1];
    expect(post?.url.pathname).toBe(`/v2/${REPO}/blobs/uploads/`);
    expect(post?.url.searchParams.get('mount')).toBe(digest);
    expect(post?.url.searchParams.get('from')).toBe('base/image');
    expect(fake.has(REPO, digest)?.equals(bytes)).toBe(true);
  });

  it('sends the bytes through the session a refused mount opened (202)', async () => {
    const { fake, server, client } = await registry({ refuseMounts: true });
    const bytes = blobOf(500);
    const digest = sha256(bytes);
    fake.blobs.set(`base/image@${digest}`, bytes);
    const how = await uploadBlob(client, REPO, descriptorOf(bytes), sourceOf(bytes), {
      mountFrom: 'base/image',
    });
    expect(how).toBe('sent');
    // One POST only: the mount's session is used, not a second one opened.
    expect(methods(server)).toEqual(['HEAD', 'POST', 'PUT']);
    expect(server.requests[1]?.url.searchParams.get('mount')).toBe(digest);
    expect(fake.has(REPO, digest)?.equals(bytes)).toBe(true);
    expect(fake.sessions.size).toBe(0);
  });

  it('sends a blob smaller than a chunk as one monolithic PUT', async () => {
    const { fake, server, client } = await registry();
    const bytes = blobOf(700);
    const digest = sha256(bytes);
    let progress = 0;
    const how = await uploadBlob(client, REPO, descriptorOf(bytes), sourceOf(bytes, 100), {
      onBytes: (n) => {
        progress += n;
      },
    });
    expect(how).toBe('sent');
    expect(methods(server)).toEqual(['HEAD', 'POST', 'PUT']);
    const put = server.requests[2];
    expect(put?.url.searchParams.get('digest')).toBe(digest);
    expect(put?.body).toBe(bytes.toString('utf8'));
    expect(put?.headers['content-length']).toBe(String(bytes.length));
    expect(fake.has(REPO, digest)?.equals(bytes)).toBe(true);
    expect(progress).toBe(bytes.length);
  });

  it('sends a large blob as PATCHes with contiguous Content-Ranges and the remainder with the PUT', async () => {
    const { fake, server, client } = await registry();
    const bytes = blobOf(5000);
    const digest = sha256(bytes);
    const how = await uploadBlob(client, REPO, descriptorOf(bytes), sourceOf(bytes), { chunkBytes: 1024 });
    expect(how).toBe('sent');
    expect(patches(server).map((r) => r.headers['content-range'])).toEqual([
      '0-1023',
      '1024-2047',
      '2048-3071',
      '3072-4095',
    ]);
    expect(patches(server).map((r) => r.body.length)).toEqual([1024, 1024, 1024, 1024]);
    const puts = server.requests.filter((r) => r.method === 'PUT');
    expect(puts).toHaveLength(1);
    expect(puts[0]?.body).toBe(bytes.subarray(4096).toString('utf8'));
    expect(fake.has(REPO, digest)?.equals(bytes)).toBe(true);
  });

  it('sends a blob of exactly whole chunks with the last chunk in the PUT', async () => {
    const { fake, server, client } = await registry();
    const bytes = blobOf(3072);
    await uploadBlob(client, REPO, descriptorOf(bytes), sourceOf(bytes, 1024), { chunkBytes: 1024 });
    expect(patches(server).map((r) => r.headers['content-range'])).toEqual(['0-1023', '1024-2047']);
    expect(server.requests.at(-1)?.body).toHaveLength(1024);
    expect(fake.has(REPO, sha256(bytes))?.equals(bytes)).toBe(true);
  });

  it.each<LocationStyle>(['absolute-url', 'relative', 'state'])(
    'follows upload Locations written as %s, always using the newest one',
    async (style) => {
      const { fake, server, client } = await registry({ location: style });
      const bytes = blobOf(2500, 3);
      const how = await uploadBlob(client, REPO, descriptorOf(bytes), sourceOf(bytes), { chunkBytes: 1024 });
      expect(how).toBe('sent');
      const sessionRequests = server.requests.filter((r) => r.method === 'PATCH' || r.method === 'PUT');
      expect(sessionRequests.map((r) => r.method)).toEqual(['PATCH', 'PATCH', 'PUT']);
      for (const r of sessionRequests)
        expect(r.url.pathname).toMatch(new RegExp(`^/v2/${REPO}/blobs/uploads/[0-9a-f-]{36}$`));
      const put = sessionRequests[2];
      expect(put?.url.searchParams.get('digest')).toBe(sha256(bytes));
      // The server refuses stale states, so success means every request used the newest Location.
      if (style === 'state') expect(put?.url.searchParams.get('_state')).not.toBeNull();
      expect(fake.has(REPO, sha256(bytes))?.equals(bytes)).toBe(true);
    },
  );

  it("raises the chunk size to the registry's OCI-Chunk-Min-Length", async () => {
    const { fake, server, client } = await registry({ chunkMinLength: 2048 });
    const bytes = blobOf(5000);
    await uploadBlob(client, REPO, descriptorOf(bytes), sourceOf(bytes), { chunkBytes: 1024 });
    const sizes = patches(server).map((r) => r.body.length);
    expect(sizes.length).toBeGreaterThan(0);
    for (const size of sizes) expect(size).toBeGreaterThanOrEqual(2048);
    expect(patches(server).map((r) => r.headers['content-range'])).toEqual(['0-2047', '2048-4095']);
    expect(fake.has(REPO, sha256(bytes))?.equals(bytes)).toBe(true);
  });

  it('asks for the upload status after a PATCH whose answer was a 500 and goes on without sending it again', async () => {
    // No transport retries: the recovery under test is uploadBlob's own.
    const { fake, server, client } = await registry({ storeThenFailPatches: [1] }, 0);
    const bytes = blobOf(5000);
    const how = await uploadBlob(client, REPO, descriptorOf(bytes), sourceOf(bytes), { chunkBytes: 1024 });
    expect(how).toBe('sent');
    expect(methods(server)).toEqual(['HEAD', 'POST', 'PATCH', 'PATCH', 'GET', 'PATCH', 'PATCH', 'PUT']);
    expect(patches(server).map((r) => r.headers['content-range'])).toEqual([
      '0-1023',
      '1024-2047',
      '2048-3071',
      '3072-4095',
    ]);
    expect(fake.has(REPO, sha256(bytes))?.equals(bytes)).toBe(true);
  });

  it("resumes from the registry's offset when a streamed chunk fails after being stored, without duplicating data", async () => {
    // A streamed chunk cannot be replayed by the transport: uploadBlob asks the registry instead.
    const { fake, server, client } = await registry({ storeThenFailPatches: [0] }, 1);
    const bytes = blobOf(5000);
    const how = await uploadBlob(client, REPO, descriptorOf(bytes), sourceOf(bytes), { chunkBytes: 1024 });
    expect(how).toBe('sent');
    expect(patches(server).map((r) => r.headers['content-range'])).toEqual([
      '0-1023',
      '1024-2047',
      '2048-3071',
      '3072-4095',
    ]);
    expect(methods(server).filter((m) => m === 'GET')).toHaveLength(1);
    expect(fake.has(REPO, sha256(bytes))?.equals(bytes)).toBe(true);
  });

  it('abandons the upload with DELETE when the source does not match the digest, and the blob never lands', async () => {
    const { fake, server, client } = await registry();
    const expected = blobOf(3000);
    const actual = blobOf(3000, 1);
    const err = await rejection(
      uploadBlob(client, REPO, descriptorOf(expected), sourceOf(actual), {
        chunkBytes: 1024,
        sourceName: 'layers/broken.tar',
      }),
    );
    expect(err.code).toBe('ERR_DIGEST_MISMATCH');
    expect(err.message).toContain('layers/broken.tar');
    expect(err.message).toContain(sha256(expected));
    expect(err.message).toContain(sha256(actual));
    // The last chunk travels with the PUT, which the registry refuses on its digest check.
    expect(methods(server).at(-1)).toBe('DELETE');
    expect(fake.deleted).toHaveLength(1);
    expect(server.requests.at(-1)?.url.pathname).toBe(`/v2/${REPO}/blobs/uploads/${fake.deleted[0]}`);
    expect(fake.sessions.size).toBe(0);
    expect(fake.has(REPO, sha256(expected))).toBeUndefined();
  });

  it('abandons the upload when the source has the right digest but not the stated size', async () => {
    const { fake, server, client } = await registry();
    const bytes = blobOf(800);
    const err = await rejection(
      uploadBlob(client, REPO, { digest: sha256(bytes), size: 801 }, sourceOf(bytes)),
    );
    expect(err.code).toBe('ERR_DIGEST_MISMATCH');
    expect(err.message).toContain('800 bytes');
    expect(methods(server)).toEqual(['HEAD', 'POST', 'DELETE']);
    expect(fake.deleted).toHaveLength(1);
  });

  it('cancels the session and passes the error on when the source fails', async () => {
    const { fake, server, client } = await registry();
    const boom = new Error('disk went away');
    const err = await uploadBlob(client, REPO, descriptorOf(blobOf(100)), async function* () {
      yield blobOf(10);
      throw boom;
    }).catch((e: unknown) => e);
    expect(err).toBe(boom);
    expect(methods(server)).toEqual(['HEAD', 'POST', 'DELETE']);
    expect(fake.deleted).toHaveLength(1);
  });
});
