import { connect, type LookupFunction, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { HeaderValue } from './http-types.js';

/**
 * A plain-HTTP GET whose body is read straight off its connection into one buffer reused for
 * every read (node:net's `onread`), not through node:http. node:http hands each 64 KiB read up as
 * a new Buffer through its parser and a stream; on a gigabyte blob from a registry on the same
 * machine that costs more CPU than hashing it, and the registry competes for the same cores.
 * Read this way, the bytes are hashed and written out (pumpBody) from the buffer they landed in.
 *
 * The answer's head is read here too, and its body framed as RFC 9112 §6.3 says (a length,
 * chunked, or until the connection closes). An answer whose framing is anything else, or whose
 * head is not plain HTTP/1.1 (folded lines, a field without a name), is left to node:http: the
 * request is sent again there (rawHttpGet answers undefined), and the origin is not asked this
 * way again. */

/** Each read takes up to this much of what the kernel holds for the connection. */
const READ_BUFFER_BYTES = 1024 * 1024;
/** As node:http's default (--max-http-header-size): a status line and headers beyond it are refused. */
const MAX_HEAD_BYTES = 16 * 1024;

/** RFC 9110 §5.1 token: a field name. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** A field value may not hold CR, LF or NUL (RFC 9110 §5.5): they would split the request. */
const BAD_VALUE = /[\r\n\0]/;
/** Whether a field value of an answer holds a control character other than HTAB (RFC 9110 §5.5). */
function hasControlCharacter(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if ((code < 0x20 && code !== 0x09) || code === 0x7f) return true;
  }
  return false;
}

export interface RawGetRequest {
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
  readonly aborted?: () => Error;
}

export interface RawGetOptions {
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly lookup?: LookupFunction;
}

export interface RawGetResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, HeaderValue>>;
  readonly body: RawBody;
}

/** Writes one chunk of a body. The chunk is the writer's only until it returns, or until the promise it returns settles. */
export type ChunkWriter = (chunk: Uint8Array) => void | Promise<void>;

/** Whether a writer answered with a promise to wait for (anything else it returns is ignored). */
function isThenable(value: unknown): value is Promise<void> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === 'function';
}

function networkFailure(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

/** How an answer's body ends (RFC 9112 §6.3): after a length, with a last chunk, or when the connection closes. */
export type BodyFraming = { readonly length: number } | 'chunked' | 'close';

/** A chunk-size line or a trailer line longer than this is not HTTP a registry sends. */
const MAX_CHUNK_LINE = 4096;

/**
 * A body on a connection of its own, read either as a stream (each chunk copied out of the read
 * buffer) or by pump(), which hands the writer each chunk in place. The connection closes once
 * the body is complete. One that ends short fails the body with ECONNRESET, as node:http's
 * "aborted" does, so a download picks up again from there.
 */
export class RawBody extends Readable {
  readonly #socket: Socket;
  readonly #framing: BodyFraming;
  /** Length framing: bytes still to come. */
  #left: number;
  #received = 0;
  #complete = false;
  /** Bytes taken off the connection but not yet handed on (a copy): the first ones, or those behind a writer's wait. */
  #backlog: Buffer | undefined;
  #writer: ChunkWriter | undefined;
  #pumped: { resolve: () => void; reject: (err: Error) => void } | undefined;
  #waiting = false;
  /** The connection ended while a backlog was still to be handed on. */
  #ended: { readonly err: Error | undefined } | undefined;
  // Chunked framing (RFC 9112 §7.1): where the decoder stands.
  #state: 'size' | 'data' | 'crlf' | 'trailer' = 'size';
  #line = '';
  /** Bytes of trailer fields so far: bounded as a head is. */
  #trailerBytes = 0;
  #chunkLeft = 0;
  #crlfLeft = 0;

  /** `first`: the bytes that came in with the headers (a copy). */
  constructor(socket: Socket, framing: BodyFraming, first: Buffer | undefined) {
    super({ highWaterMark: READ_BUFFER_BYTES });
    this.#socket = socket;
    this.#framing = framing;
    this.#left = typeof framing === 'object' ? framing.length : Number.POSITIVE_INFINITY;
    this.#backlog = first !== undefined && first.length > 0 ? first : undefined;
    if (this.#left === 0) {
      this.#backlog = undefined;
      this.#complete = true;
      socket.destroy();
      this.push(null);
    }
  }

  /** Called by the connection's reader with each read, in the reused buffer. */
  accept(data: Buffer): void {
    if (this.destroyed || this.#complete) return;
    if (this.#waiting) {
      // Behind a writer's wait (several chunks in one read): kept, in order, until it settles.
      this.#backlog = this.#backlog === undefined ? Buffer.from(data) : Buffer.concat([this.#backlog, data]);
      return;
    }
    const framing = this.#framing;
    if (framing === 'chunked') this.#decode(data);
    else if (framing === 'close') this.#deliver(data);
    else {
      const take = data.length > this.#left ? data.subarray(0, this.#left) : data;
      this.#left -= take.length;
      this.#deliver(take);
      if (this.#left === 0) this.#finish();
    }
  }

  /** Hands on the backlog, then the connection's end if it came meanwhile. */
  #takeBacklog(): void {
    const backlog = this.#backlog;
    this.#backlog = undefined;
    if (backlog !== undefined) this.accept(backlog);
    const ended = this.#ended;
    if (ended !== undefined && this.#backlog === undefined) {
      this.#ended = undefined;
      this.connectionEnded(ended.err);
    }
  }

  /** Chunked framing: hands on the data of each chunk, and finishes after the trailers. */
  #decode(data: Buffer): void {
    let at = 0;
    while (at < data.length && !this.#complete && !this.destroyed) {
      if (this.#waiting) {
        this.accept(data.subarray(at));
        return;
      }
      if (this.#state === 'data') {
        const n = Math.min(this.#chunkLeft, data.length - at);
        this.#chunkLeft -= n;
        if (this.#chunkLeft === 0) {
          this.#state = 'crlf';
          this.#crlfLeft = 2;
        }
        const view = data.subarray(at, at + n);
        at += n;
        this.#deliver(view);
        continue;
      }
      if (this.#state === 'crlf') {
        const want = this.#crlfLeft === 2 ? 0x0d : 0x0a;
        if (data[at] !== want) {
          this.#malformed('a chunk does not end with CRLF');
          return;
        }
        at++;
        if (--this.#crlfLeft === 0) this.#state = 'size';
        continue;
      }
      // A line: a chunk's size, or a trailer field (the empty line ends the body).
      const lf = data.indexOf(0x0a, at);
      const end = lf < 0 ? data.length : lf + 1;
      this.#line += data.toString('latin1', at, end);
      at = end;
      if (this.#line.length > MAX_CHUNK_LINE) {
        this.#malformed('a chunk-size or trailer line is too long');
        return;
      }
      if (lf < 0) return;
      const line = this.#line.endsWith('\r\n') ? this.#line.slice(0, -2) : this.#line.slice(0, -1);
      this.#line = '';
      if (this.#state === 'trailer') {
        this.#trailerBytes += line.length + 2;
        if (this.#trailerBytes > MAX_HEAD_BYTES) {
          this.#malformed(`its trailer fields pass ${MAX_HEAD_BYTES} bytes`);
          return;
        }
        if (line === '') this.#finish();
        continue;
      }
      const size = /^([0-9A-Fa-f]{1,12})[ \t]*(?:;.*)?$/.exec(line)?.[1];
      if (size === undefined) {
        this.#malformed('a chunk size is not a hexadecimal number');
        return;
      }
      this.#chunkLeft = Number.parseInt(size, 16);
      this.#state = this.#chunkLeft === 0 ? 'trailer' : 'data';
    }
  }

  #malformed(why: string): void {
    this.destroy(
      networkFailure(`the registry sent a malformed chunked body: ${why}`, 'HPE_INVALID_CHUNK_SIZE'),
    );
  }

  #deliver(view: Uint8Array): void {
    if (view.length === 0) return;
    this.#received += view.length;
    if (this.#writer !== undefined) this.#write(view);
    else if (!this.push(Buffer.from(view))) this.#socket.pause();
  }

  /** The connection ended (`err` when it failed): the end of a close-framed body, else a broken one. */
  connectionEnded(err?: Error): void {
    if (this.destroyed || this.#complete) return;
    if (this.#backlog !== undefined) {
      // Bytes taken off the connection before it ended are handed on first: they may be the rest.
      this.#ended = { err };
      return;
    }
    if (err === undefined && this.#framing === 'close') {
      this.#finish();
      return;
    }
    const length = typeof this.#framing === 'object' ? ` of ${this.#framing.length}` : '';
    const failure =
      err ??
      networkFailure(
        `the connection closed after ${this.#received}${length} bytes of the body`,
        'ECONNRESET',
      );
    // Nobody reads it yet: it ends quietly, and a reader later finds it short.
    this.destroy(this.#writer !== undefined || this.listenerCount('error') > 0 ? failure : undefined);
  }

  #finish(): void {
    this.#complete = true;
    this.#socket.destroy();
    if (this.#writer !== undefined) {
      if (!this.#waiting) this.#settle();
    } else this.push(null);
  }

  #settle(): void {
    const pumped = this.#pumped;
    this.#pumped = undefined;
    // A stream read by pump() ends here: nobody reads it, so it is closed, not ended.
    this.destroy();
    pumped?.resolve();
  }

  #write(chunk: Uint8Array): void {
    let result: unknown;
    try {
      result = this.#writer?.(chunk);
    } catch (err) {
      this.destroy(err as Error);
      return;
    }
    if (!isThenable(result)) return;
    // The writer holds the chunk until its promise settles: nothing is read or handed on meanwhile.
    this.#waiting = true;
    this.#socket.pause();
    result.then(
      () => {
        this.#waiting = false;
        if (this.destroyed) return;
        this.#takeBacklog();
        if (this.#complete) {
          if (!this.#waiting) this.#settle();
        } else if (!this.#waiting && !this.destroyed) this.#socket.resume();
      },
      (err: Error) => {
        this.#waiting = false;
        this.destroy(err);
      },
    );
  }

  /**
   * Hands every chunk of the body to `write`, in order, each a view of the read buffer valid
   * until `write` returns (or its promise settles); resolves after the last byte. Only on a
   * body not read as a stream yet.
   */
  pump(write: ChunkWriter): Promise<void> {
    if (this.#writer !== undefined || this.readableDidRead) {
      return Promise.reject(new Error('RawBody.pump: the body is being read already'));
    }
    if (this.destroyed && !this.#complete) {
      return Promise.reject(
        this.errored ??
          networkFailure('the body was closed before it was read', 'ERR_STREAM_PREMATURE_CLOSE'),
      );
    }
    this.#writer = write;
    // Its errors reach the caller through the promise.
    this.on('error', () => {});
    const done = new Promise<void>((resolve, reject) => {
      this.#pumped = { resolve, reject };
    });
    this.#takeBacklog();
    if (this.#complete) {
      if (!this.#waiting) this.#settle();
    } else if (!this.#waiting && !this.destroyed) this.#socket.resume();
    return done;
  }

  override _read(): void {
    this.#takeBacklog();
    if (!this.#complete && !this.destroyed) this.#socket.resume();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.#socket.destroy();
    const pumped = this.#pumped;
    this.#pumped = undefined;
    if (pumped !== undefined) {
      pumped.reject(
        err ?? networkFailure('the body was closed before its end', 'ERR_STREAM_PREMATURE_CLOSE'),
      );
    }
    callback(err);
  }
}

/**
 * Hands every chunk of `body` to `write` in order, waiting for any promise it returns. A RawBody
 * gives each read in place (RawBody.pump); any other stream its own chunks.
 */
export async function pumpBody(body: Readable, write: ChunkWriter): Promise<void> {
  if (body instanceof RawBody) return body.pump(write);
  for await (const chunk of body as AsyncIterable<Buffer>) {
    const written = write(chunk);
    if (isThenable(written)) await written;
  }
}

interface Head {
  readonly status: number;
  readonly headers: Record<string, HeaderValue>;
}

/** The status line and header fields of an answer, or undefined when they are not plain HTTP/1.1. */
function parseHead(text: string): Head | undefined {
  const lines = text.split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (!status) return undefined;
  const headers: Record<string, HeaderValue> = Object.create(null);
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    // A folded line (obs-fold) or a field without a name: node:http judges those.
    if (colon <= 0 || line[0] === ' ' || line[0] === '\t') return undefined;
    const name = line.slice(0, colon).toLowerCase();
    if (!TOKEN.test(name)) return undefined;
    const value = line.slice(colon + 1).trim();
    // Control characters (a bare LF among them) are node:http's to refuse, as llhttp does.
    if (hasControlCharacter(value)) return undefined;
    const known = headers[name];
    headers[name] = known === undefined ? value : Array.isArray(known) ? [...known, value] : [known, value];
  }
  return { status: Number(status[1]), headers };
}

/**
 * How the answer's body ends, when it is framed in a way this reader takes (RFC 9112 §6.3);
 * undefined for anything node:http had better judge: both Content-Length and
 * Transfer-Encoding, a coding other than chunked, a Content-Length that is not one number.
 */
function framingOf(head: Head): BodyFraming | undefined {
  if (head.status < 200) return undefined;
  const coding = head.headers['transfer-encoding'];
  const length = head.headers['content-length'];
  if (coding !== undefined) {
    return length === undefined && typeof coding === 'string' && coding.toLowerCase() === 'chunked'
      ? 'chunked'
      : undefined;
  }
  if (head.status === 204 || head.status === 304) return { length: 0 };
  if (length === undefined) return 'close';
  if (typeof length !== 'string' || !/^\d{1,15}$/.test(length)) return undefined;
  return { length: Number(length) };
}

/** Host (brackets off an IPv6 address) and port of an http: URL. */
function hostPort(url: URL): { host: string; port: number } {
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return { host, port: url.port === '' ? 80 : Number(url.port) };
}

/** Whether rawHttpGet sends `req`: plain HTTP, and header fields that cannot split the request. */
export function rawRequestable(req: Pick<RawGetRequest, 'url' | 'headers'>): boolean {
  if (req.url.protocol !== 'http:') return false;
  return Object.entries(req.headers).every(([name, value]) => TOKEN.test(name) && !BAD_VALUE.test(value));
}

/**
 * Sends a GET over a connection of its own and reads the answer's head. Answers undefined, with
 * the connection closed and nothing else done, when the request (a header value with CR or LF)
 * or the answer is not one it takes (see above): the caller sends it by node:http instead.
 */
export function rawHttpGet(req: RawGetRequest, options: RawGetOptions): Promise<RawGetResponse | undefined> {
  if (!rawRequestable(req)) return Promise.resolve(undefined);
  const { host, port } = hostPort(req.url);
  let head = `GET ${req.url.pathname}${req.url.search} HTTP/1.1\r\n`;
  head += `host: ${req.url.host}\r\n`;
  for (const [name, value] of Object.entries(req.headers)) {
    const lower = name.toLowerCase();
    if (lower === 'host' || lower === 'connection') continue;
    head += `${name}: ${value}\r\n`;
  }
  // One request per connection: it closes after the body, and the server may close it first.
  head += 'connection: close\r\n\r\n';

  return new Promise<RawGetResponse | undefined>((resolve, reject) => {
    const buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
    let received: Buffer[] = [];
    let receivedBytes = 0;
    let body: RawBody | undefined;
    let settled = false;
    const fail = (err: Error) => {
      if (body !== undefined) body.connectionEnded(err);
      else if (!settled) {
        settled = true;
        detach();
        reject(err);
      }
      socket.destroy();
    };
    const onRead = (nread: number, buf: Buffer): void => {
      const data = buf.subarray(0, nread);
      if (body !== undefined) {
        body.accept(data);
        return;
      }
      received.push(Buffer.from(data));
      receivedBytes += nread;
      const all = received.length === 1 ? (received[0] as Buffer) : Buffer.concat(received);
      received = [all];
      const end = all.indexOf('\r\n\r\n');
      // Too much without the end of the head, or a head that ends past the limit.
      if ((end < 0 ? receivedBytes : end) > MAX_HEAD_BYTES) {
        fail(
          networkFailure(
            `the answer's headers from ${req.url.host} are larger than ${MAX_HEAD_BYTES} bytes`,
            'HPE_HEADER_OVERFLOW',
          ),
        );
        return;
      }
      if (end < 0) return;
      const parsed = parseHead(all.subarray(0, end).toString('latin1'));
      const framing = parsed === undefined ? undefined : framingOf(parsed);
      if (parsed === undefined || framing === undefined) {
        settled = true;
        detach();
        socket.destroy();
        resolve(undefined);
        return;
      }
      clearTimeout(connectTimer);
      detach();
      // Until the body is read (as a stream, or pumped) nothing more is taken off the connection.
      socket.pause();
      body = new RawBody(socket, framing, all.subarray(end + 4));
      settled = true;
      resolve({ status: parsed.status, headers: parsed.headers, body });
    };
    const socket = connect({
      host,
      port,
      noDelay: true,
      onread: { buffer, callback: onRead as (nread: number, buf: Uint8Array) => boolean },
      ...(options.lookup === undefined ? {} : { lookup: options.lookup }),
    });
    const connectTimer = setTimeout(
      () =>
        fail(
          networkFailure(
            `no connection to ${req.url.host} within ${options.connectTimeoutMs} ms`,
            'ETIMEDOUT',
          ),
        ),
      options.connectTimeoutMs,
    );
    socket.once('connect', () => {
      clearTimeout(connectTimer);
      socket.write(head);
    });
    // Silence on the connection: waiting for the head, or inside the body while it is being read
    // (a reader that holds a chunk pauses the connection, and that wait is its own).
    socket.setTimeout(options.idleTimeoutMs);
    socket.on('timeout', () => {
      // Paused: the wait is the reader's. The deadline starts again, for when it reads on.
      if (body !== undefined && socket.isPaused()) socket.setTimeout(options.idleTimeoutMs);
      else fail(networkFailure(`${req.url.host} went silent for ${options.idleTimeoutMs} ms`, 'ETIMEDOUT'));
    });
    socket.on('error', (err) => {
      clearTimeout(connectTimer);
      fail(err);
    });
    socket.on('close', () => {
      clearTimeout(connectTimer);
      if (body !== undefined) body.connectionEnded();
      else if (!settled) {
        settled = true;
        detach();
        reject(networkFailure(`${req.url.host} closed the connection before answering`, 'ECONNRESET'));
      }
    });
    const { signal } = req;
    const onAbort = () => {
      const err =
        req.aborted?.() ??
        Object.assign(new Error('the request was aborted'), { name: 'AbortError', code: 'ABORT_ERR' });
      fail(err);
    };
    const detach = () => signal?.removeEventListener('abort', onAbort);
    if (signal?.aborted) queueMicrotask(onAbort);
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}
