/**
 * Counts the HTTP/1.1 requests a client sends on one TCP connection, from the raw client→server
 * bytes in whatever pieces they arrive. The benchmark's delay proxy feeds one of these per
 * connection, so "how many requests did this pull cost" is measured on the wire, not estimated.
 *
 * Message framing follows RFC 9112: a request is a request line and header fields up to an empty
 * line (§2.1), then a body whose length is decided by Transfer-Encoding, else Content-Length, else
 * zero (§6.3). A chunked body is chunk-size lines, chunk data and a trailer section (§7.1).
 * Anything that breaks these rules stops the counting for the connection (`broken`), because after
 * a framing error no byte offset can be trusted: a body could be taken for a request or the other
 * way round. It never throws.
 */

/** Request line plus header fields, CRLFs included; four times Node's default limit of 16 KiB. */
export const MAX_HEADER_SECTION_BYTES = 64 * 1024;
/** A chunk-size line with its extensions; real clients send a few hex digits and no extension. */
const MAX_CHUNK_LINE_BYTES = 4 * 1024;
/** A section buffer bigger than this is dropped once read rather than kept for the next request. */
const RETAINED_SECTION_BYTES = 16 * 1024;
/** How many request lines `lines` keeps: enough to read a benchmark run, bounded in memory. */
export const MAX_RECORDED_LINES = 1000;

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;
const SEMICOLON = 0x3b;

// tchar (RFC 9110 §5.6.2): the characters of a method and of a field name.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") {
  TCHAR[c.charCodeAt(0)] = 1;
}
// request-target: visible ASCII (RFC 9112 §3.2; a URI has no space, control or non-ASCII byte).
const REQUEST_TARGET = /^[\x21-\x7e]+$/;
const HTTP_VERSION = /^HTTP\/1\.[01]$/;
// field-value: VCHAR, SP, HTAB and obs-text (RFC 9110 §5.5); no CR, LF, NUL or other control.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const DIGITS = /^[0-9]+$/;

type State =
  | 'head' // request line and header fields, up to CRLFCRLF
  | 'body' // Content-Length bytes to skip
  | 'chunk-size' // hex digits of a chunk-size line
  | 'chunk-ext' // the rest of a chunk-size line, up to its CR
  | 'chunk-size-lf' // the LF that ends a chunk-size line
  | 'chunk-data' // chunk bytes to skip
  | 'chunk-data-cr' // the CRLF after chunk data
  | 'chunk-data-lf'
  | 'trailer' // trailer fields after the last chunk, up to an empty line
  | 'stopped'; // broken or tunnelled: nothing more is parsed

export interface HttpRequestCounterOptions {
  /** Called once per request, as soon as its header section is complete. Left out: nothing is called. */
  readonly onRequest?: (method: string, target: string) => void;
}

/** The parsed framing of a request head. */
interface Framing {
  readonly method: string;
  readonly target: string;
  readonly body: { readonly kind: 'length'; readonly bytes: number } | { readonly kind: 'chunked' };
  /** CONNECT or Upgrade: what follows on the connection may not be HTTP any more. */
  readonly tunnel: boolean;
}

export class HttpRequestCounter {
  #requests = 0;
  #stopReason: string | undefined;
  readonly #methods = new Map<string, number>();
  readonly #lines: string[] = [];
  readonly #onRequest: ((method: string, target: string) => void) | undefined;

  #state: State = 'head';
  #broken = false;
  /** The header or trailer section read so far. */
  #section = Buffer.alloc(0);
  #sectionLength = 0;
  /** How much of CR LF CR LF the last bytes of the section matched (0–4). */
  #terminator = 0;
  /** While the request line's method is being read: its bytes are checked one by one. */
  #inMethod = true;
  /** Bytes of body or chunk data still to skip; the value of the chunk-size line being read. */
  #remaining = 0;
  #chunkDigits = 0;
  #chunkLineBytes = 0;

  constructor(options: HttpRequestCounterOptions = {}) {
    this.#onRequest = options.onRequest;
  }

  /** Requests whose header section was complete. */
  get requests(): number {
    return this.#requests;
  }

  /** Requests per method, e.g. `{ GET: 3, PATCH: 2 }`. */
  get methods(): Record<string, number> {
    return Object.fromEntries(this.#methods);
  }

  /** The last {@link MAX_RECORDED_LINES} requests as `METHOD target`, oldest first. */
  get lines(): readonly string[] {
    return this.#lines.slice();
  }

  /** True once the stream stopped being HTTP/1.1 that this counter can follow; counting stopped then. */
  get broken(): boolean {
    return this.#broken;
  }

  /** Why counting stopped, when it did; for a benchmark log. */
  get stopReason(): string | undefined {
    return this.#stopReason;
  }

  /** Reads the next bytes the client sent. Never throws; after a framing error it ignores everything. */
  feed(chunk: Uint8Array): void {
    let i = 0;
    const n = chunk.length;
    while (i < n && this.#state !== 'stopped') {
      switch (this.#state) {
        case 'head':
        case 'trailer':
          i = this.#readSection(chunk, i);
          break;
        case 'body': {
          const take = Math.min(this.#remaining, n - i);
          this.#remaining -= take;
          i += take;
          if (this.#remaining === 0) this.#startHead();
          break;
        }
        case 'chunk-data': {
          const take = Math.min(this.#remaining, n - i);
          this.#remaining -= take;
          i += take;
          if (this.#remaining === 0) this.#state = 'chunk-data-cr';
          break;
        }
        default:
          this.#readChunkByte(chunk[i] as number);
          i++;
      }
    }
  }

  #stop(reason: string): void {
    this.#state = 'stopped';
    this.#broken = true;
    this.#stopReason = reason;
    this.#section = Buffer.alloc(0);
  }

  #startHead(): void {
    this.#state = 'head';
    this.#sectionLength = 0;
    this.#terminator = 0;
    this.#inMethod = true;
  }

  /** Copies header or trailer bytes until CRLFCRLF; returns the index after what it consumed. */
  #readSection(chunk: Uint8Array, start: number): number {
    const head = this.#state === 'head';
    let i = start;
    for (; i < chunk.length; i++) {
      const b = chunk[i] as number;
      if (head && this.#sectionLength === 0 && (b === CR || b === LF)) {
        // RFC 9112 §2.2: a server SHOULD ignore empty lines before a request line; some clients
        // send an extra CRLF after a body.
        continue;
      }
      if (head && this.#inMethod) {
        // A method is a token: fail on the first byte that cannot be one (a TLS ClientHello
        // starts with 0x16), not after 64 KiB of waiting for a CRLFCRLF that never comes.
        if (b === SP && this.#sectionLength > 0) this.#inMethod = false;
        else if (TCHAR[b] !== 1) {
          this.#stop('not an HTTP request line');
          return chunk.length;
        }
      }
      if (this.#sectionLength >= MAX_HEADER_SECTION_BYTES) {
        this.#stop(`${head ? 'header' : 'trailer'} section over ${MAX_HEADER_SECTION_BYTES} bytes`);
        return chunk.length;
      }
      this.#append(b);
      if (b === CR) this.#terminator = this.#terminator === 2 ? 3 : 1;
      else if (b === LF) this.#terminator = this.#terminator === 1 ? 2 : this.#terminator === 3 ? 4 : 0;
      else this.#terminator = 0;
      if (this.#terminator === 4) {
        const text = this.#section.toString('latin1', 0, this.#sectionLength);
        // Both sections end in CRLF CRLF, so the split ends in two empty strings.
        const lines = text.split('\r\n').slice(0, -2);
        // A rare big header section should not pin its buffer for the connection's lifetime.
        if (this.#section.length > RETAINED_SECTION_BYTES) this.#section = Buffer.alloc(0);
        if (head) this.#endHead(lines);
        else this.#endTrailer(lines);
        return i + 1;
      }
    }
    return i;
  }

  #append(b: number): void {
    if (this.#sectionLength === this.#section.length) {
      // Grows by doubling: a header fed byte by byte costs O(n), not O(n²).
      const grown = Buffer.alloc(
        Math.min(Math.max(this.#section.length * 2, 1024), MAX_HEADER_SECTION_BYTES),
      );
      this.#section.copy(grown, 0, 0, this.#sectionLength);
      this.#section = grown;
    }
    this.#section[this.#sectionLength++] = b;
  }

  #endHead(lines: string[]): void {
    const framing = parseHead(lines);
    if (typeof framing === 'string') {
      this.#stop(framing);
      return;
    }
    this.#requests++;
    this.#methods.set(framing.method, (this.#methods.get(framing.method) ?? 0) + 1);
    this.#lines.push(`${framing.method} ${framing.target}`);
    if (this.#lines.length > MAX_RECORDED_LINES) this.#lines.shift();
    this.#onRequest?.(framing.method, framing.target);
    if (framing.tunnel) {
      // After a 2xx to CONNECT or a 101 the bytes belong to another protocol; the answer is on
      // the other direction, which this counter does not see, so it cannot tell. Stop rather
      // than count a tunnelled payload as requests.
      this.#stop(`${framing.method} ${framing.target} may switch the connection to another protocol`);
      return;
    }
    if (framing.body.kind === 'chunked') this.#startChunk();
    else if (framing.body.bytes > 0) {
      this.#state = 'body';
      this.#remaining = framing.body.bytes;
    } else this.#startHead();
  }

  #endTrailer(lines: string[]): void {
    for (const line of lines) {
      const error = checkField(line);
      if (error !== undefined) {
        this.#stop(`trailer: ${error}`);
        return;
      }
    }
    this.#startHead();
  }

  #startChunk(): void {
    this.#state = 'chunk-size';
    this.#remaining = 0;
    this.#chunkDigits = 0;
    this.#chunkLineBytes = 0;
  }

  #readChunkByte(b: number): void {
    switch (this.#state) {
      case 'chunk-size': {
        const digit = hexValue(b);
        if (digit >= 0) {
          this.#remaining = this.#remaining * 16 + digit;
          this.#chunkDigits++;
          if (!Number.isSafeInteger(this.#remaining)) this.#stop('chunk size too large');
          else this.#countChunkLineByte();
        } else if (this.#chunkDigits === 0) this.#stop('chunk-size line without a size');
        else if (b === CR) this.#state = 'chunk-size-lf';
        else if (b === SEMICOLON || b === SP || b === HTAB) {
          // chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ) (RFC 9112 §7.1.1): skipped.
          this.#state = 'chunk-ext';
          this.#countChunkLineByte();
        } else this.#stop('invalid byte in a chunk-size line');
        return;
      }
      case 'chunk-ext':
        if (b === CR) this.#state = 'chunk-size-lf';
        else if (b === LF || (b < SP && b !== HTAB) || b === 0x7f)
          this.#stop('invalid byte in a chunk extension');
        else this.#countChunkLineByte();
        return;
      case 'chunk-size-lf':
        if (b !== LF) this.#stop('chunk-size line not ended by CRLF');
        else if (this.#remaining === 0) {
          // The last chunk: a trailer section follows. Starting it as if CRLF had just been read
          // makes an empty trailer (a lone CRLF) complete the CRLFCRLF.
          this.#state = 'trailer';
          this.#sectionLength = 0;
          this.#terminator = 2;
        } else this.#state = 'chunk-data';
        return;
      case 'chunk-data-cr':
        if (b === CR) this.#state = 'chunk-data-lf';
        else this.#stop('chunk data not followed by CRLF');
        return;
      case 'chunk-data-lf':
        if (b === LF) this.#startChunk();
        else this.#stop('chunk data not followed by CRLF');
        return;
      default:
        return;
    }
  }

  #countChunkLineByte(): void {
    if (++this.#chunkLineBytes > MAX_CHUNK_LINE_BYTES)
      this.#stop(`chunk-size line over ${MAX_CHUNK_LINE_BYTES} bytes`);
  }
}

function hexValue(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x41 && b <= 0x46) return b - 0x41 + 10;
  if (b >= 0x61 && b <= 0x66) return b - 0x61 + 10;
  return -1;
}

/** Why a field line is not `name: value`, or undefined when it is one. */
function checkField(line: string): string | undefined {
  const colon = line.indexOf(':');
  if (colon <= 0) {
    // Includes obs-fold (a line starting with SP or HTAB), which a server must reject (RFC 9112 §5.2).
    return `not a field line: ${JSON.stringify(line.slice(0, 40))}`;
  }
  if (!TOKEN.test(line.slice(0, colon))) return `invalid field name ${JSON.stringify(line.slice(0, colon))}`;
  if (!FIELD_VALUE.test(line.slice(colon + 1))) return `invalid byte in field ${line.slice(0, colon)}`;
  return undefined;
}

/** The request's method, target and body framing, or why the head cannot be followed. */
function parseHead(lines: string[]): Framing | string {
  const [requestLine = '', ...fields] = lines;
  const parts = requestLine.split(' ');
  const [method = '', target = '', version = ''] = parts;
  if (
    parts.length !== 3 ||
    !TOKEN.test(method) ||
    !REQUEST_TARGET.test(target) ||
    !HTTP_VERSION.test(version)
  ) {
    return `not an HTTP/1.x request line: ${JSON.stringify(requestLine.slice(0, 80))}`;
  }
  const lengths: string[] = [];
  const codings: string[] = [];
  let upgrade = false;
  for (const line of fields) {
    const error = checkField(line);
    if (error !== undefined) return error;
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'content-length') lengths.push(...value.split(',').map((v) => v.trim()));
    else if (name === 'transfer-encoding')
      codings.push(...value.split(',').map((v) => v.trim().toLowerCase()));
    else if (name === 'upgrade') upgrade = true;
  }
  const tunnel = method === 'CONNECT' || upgrade;
  if (codings.length > 0) {
    // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 is faulty framing; a request with both it and
    // Content-Length is a smuggling attempt a server may reject, so its length cannot be known.
    if (version === 'HTTP/1.0') return 'Transfer-Encoding in an HTTP/1.0 request';
    if (lengths.length > 0) return 'both Transfer-Encoding and Content-Length';
    const chunked = codings.filter((c) => c.split(';')[0]?.trim() === 'chunked').length;
    const last = codings[codings.length - 1]?.split(';')[0]?.trim();
    // A request whose final coding is not chunked has no length a server can read (§6.3 item 4).
    if (chunked !== 1 || last !== 'chunked') return `unsupported Transfer-Encoding: ${codings.join(', ')}`;
    return { method, target, body: { kind: 'chunked' }, tunnel };
  }
  if (lengths.length > 0) {
    // Repeated or listed values are accepted when they all agree (RFC 9110 §8.6).
    const first = lengths[0] ?? '';
    if (!DIGITS.test(first) || lengths.some((l) => l !== first)) {
      return `invalid Content-Length: ${lengths.join(', ')}`;
    }
    const bytes = Number(first);
    if (!Number.isSafeInteger(bytes)) return `Content-Length too large: ${first}`;
    return { method, target, body: { kind: 'length', bytes }, tunnel };
  }
  return { method, target, body: { kind: 'length', bytes: 0 }, tunnel };
}
