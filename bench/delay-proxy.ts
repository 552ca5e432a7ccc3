import { type AddressInfo, BlockList, connect, createServer, isIP, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { RegauthError } from '../src/errors/regauth-error.js';
import { HttpRequestCounter, MAX_RECORDED_LINES } from './http-request-counter.js';

/**
 * A TCP proxy on loopback that holds every chunk for `delayMs` in each direction, so that a
 * benchmark against a registry on the same machine pays network latency the way a client on a
 * real network does: a request and its response cost 2 × delay. It counts the HTTP requests
 * that pass, per method, to show what a workflow costs in round trips.
 *
 * Connection setup is not delayed by default: the client's connect to the proxy completes at
 * once, where a real TCP handshake costs one round trip, so runs that open many connections look
 * better through this proxy than on a real network. With `chargeHandshake` the first bytes a
 * client sends on a connection wait as they would on a network for the SYN / SYN-ACK exchange
 * (RFC 9293 §3.5): until one round trip after the connection was opened. A client that writes at
 * once pays the whole round trip; one that opened its connection ahead and wrote later pays
 * what is left of it, as it would on a network.
 */

/**
 * Bytes held per direction (in the delay queue plus the socket's write buffer) before the
 * sending side is paused. At 10 ms one way this still lets 400 MiB/s through, more than a
 * loopback registry serves, and it bounds the proxy's memory when one side stops reading.
 */
export const MAX_QUEUED_BYTES = 4 * 1024 * 1024;
export const DEFAULT_LISTEN_HOST = '127.0.0.1';

export interface DelayProxyOptions {
  /** Where connections go. Only a loopback host (127.0.0.0/8, ::1, localhost) is accepted. */
  readonly target: { readonly host: string; readonly port: number };
  /** Milliseconds each chunk is held, in each direction. */
  readonly delayMs: number;
  /** Address to listen on, port chosen by the OS. Left out: {@link DEFAULT_LISTEN_HOST}. */
  readonly listenHost?: string;
  /**
   * Charge each new connection one round trip (2 × the delay), as a TCP handshake does: the
   * first client→server chunk of a connection goes no earlier than one round trip after the
   * connection was opened (plus the one-way delay). Left out: false, and connecting through the
   * proxy costs nothing.
   */
  readonly chargeHandshake?: boolean;
}

export interface DelayProxyStats {
  /** Connections accepted. */
  readonly connections: number;
  /** HTTP requests sent by clients, counted on the client→server bytes. */
  readonly requests: number;
  /** Requests per method, e.g. `{ GET: 3, PATCH: 2 }`. */
  readonly methods: Record<string, number>;
  /** Bytes received from clients, counted as they arrive (before the delay). */
  readonly bytesUp: number;
  /** Bytes received from the target, counted as they arrive (before the delay). */
  readonly bytesDown: number;
  /** The last requests, `METHOD target`, oldest first, across connections. */
  readonly lines: readonly string[];
  /**
   * Connections whose client bytes stopped being HTTP/1.1 the counter could follow (see
   * `HttpRequestCounter.broken`): when not 0, `requests` is a lower bound.
   */
  readonly brokenConnections: number;
}

export interface DelayProxy {
  /**
   * `127.0.0.1:PORT` (by default; `[::1]:PORT` when listening on ::1), to use in place of the
   * target's host.
   */
  readonly host: string;
  readonly port: number;
  /** Counts since the start or the last {@link reset}. */
  stats(): DelayProxyStats;
  /** Zeroes the counts; open connections stay open and keep being counted. */
  reset(): void;
  /** Changes the delay for chunks that arrive from now on; chunks already held keep their order. */
  setDelay(ms: number): void;
  /** Destroys every connection and stops listening. */
  close(): Promise<void>;
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** 127.0.0.0/8, ::1 (also IPv4-mapped, ::ffff:127.x.y.z) or localhost; nothing that needs DNS. */
function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (bare.toLowerCase() === 'localhost') return true;
  const family = isIP(bare);
  if (family === 0) return false;
  return LOOPBACK.check(bare, family === 4 ? 'ipv4' : 'ipv6');
}

function checkDelay(ms: number): number {
  if (!Number.isFinite(ms) || ms < 0) {
    throw new RegauthError(
      'ERR_INVALID_CONFIG',
      `delay proxy: delayMs must be a finite number ≥ 0, got ${ms}`,
    );
  }
  return ms;
}

interface Counts {
  connections: number;
  requests: number;
  methods: Map<string, number>;
  bytesUp: number;
  bytesDown: number;
  lines: string[];
  broken: number;
}

function zeroCounts(): Counts {
  return { connections: 0, requests: 0, methods: new Map(), bytesUp: 0, bytesDown: 0, lines: [], broken: 0 };
}

/**
 * One direction of a connection: chunks from `source` wait in a FIFO until their time, then go
 * to `sink`. One timer per direction, for the head of the queue, keeps the order even when the
 * delay changes in between.
 */
class DelayedPipe {
  readonly #queue: { chunk: Buffer; due: number }[] = [];
  #queuedBytes = 0;
  #timer: NodeJS.Timeout | undefined;
  #sourceEnded = false;
  #paused = false;
  readonly #source: Socket;
  readonly #sink: Socket;
  readonly #delayMs: () => number;
  /** Extra milliseconds for the first chunk only (what is left of the handshake's round trip), then 0. */
  #firstExtraMs: () => number;
  readonly #received: (chunk: Buffer) => void;
  /** Called when the sink is gone with data still to deliver. */
  readonly #fail: () => void;

  constructor(
    source: Socket,
    sink: Socket,
    delayMs: () => number,
    received: (chunk: Buffer) => void,
    fail: () => void,
    firstExtraMs: () => number = () => 0,
  ) {
    this.#source = source;
    this.#sink = sink;
    this.#delayMs = delayMs;
    this.#firstExtraMs = firstExtraMs;
    this.#received = received;
    this.#fail = fail;
    source.on('data', (chunk: Buffer) => this.#hold(chunk));
    source.on('end', () => {
      this.#sourceEnded = true;
      this.#endIfFlushed();
    });
    sink.on('drain', () => this.#resumeIfRoom());
  }

  #hold(chunk: Buffer): void {
    this.#received(chunk);
    const extra = this.#firstExtraMs();
    this.#firstExtraMs = () => 0;
    this.#queue.push({ chunk, due: performance.now() + this.#delayMs() + extra });
    this.#queuedBytes += chunk.length;
    if (!this.#paused && this.#queuedBytes + this.#sink.writableLength > MAX_QUEUED_BYTES) {
      this.#paused = true;
      this.#source.pause();
    }
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer !== undefined) return;
    const head = this.#queue[0];
    if (head === undefined) return;
    // Timers run on the loop's millisecond clock and can fire a fraction early; rounding up and
    // checking `due` again when they fire makes "held at least delayMs" exact.
    const wait = Math.max(0, Math.ceil(head.due - performance.now()));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#flush();
    }, wait);
  }

  #flush(): void {
    const now = performance.now();
    for (let head = this.#queue[0]; head !== undefined && head.due <= now; head = this.#queue[0]) {
      this.#queue.shift();
      this.#queuedBytes -= head.chunk.length;
      if (this.#sink.destroyed) {
        this.#fail();
        return;
      }
      this.#sink.write(head.chunk);
    }
    this.#schedule();
    this.#resumeIfRoom();
    this.#endIfFlushed();
  }

  #resumeIfRoom(): void {
    if (this.#paused && this.#queuedBytes + this.#sink.writableLength <= MAX_QUEUED_BYTES) {
      this.#paused = false;
      this.#source.resume();
    }
  }

  /** Half-close: the FIN goes on once everything before it has. */
  #endIfFlushed(): void {
    if (this.#sourceEnded && this.#queue.length === 0 && !this.#sink.writableEnded && !this.#sink.destroyed) {
      this.#sink.end();
    }
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#queue.length = 0;
    this.#queuedBytes = 0;
  }
}

/** Starts the proxy on `listenHost`, port chosen by the OS. Rejects a target that is not loopback. */
export async function startDelayProxy(options: DelayProxyOptions): Promise<DelayProxy> {
  const { target } = options;
  // The proxy exists to put latency on loopback traffic; refusing anything else keeps a
  // benchmark from ever sending a workload (or credentials) off the machine by a typo.
  if (!isLoopbackHost(target.host)) {
    throw new RegauthError(
      'ERR_INVALID_CONFIG',
      `delay proxy: target ${target.host} is not a loopback address; use 127.0.0.1, ::1 or localhost`,
    );
  }
  if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65_535) {
    throw new RegauthError('ERR_INVALID_CONFIG', `delay proxy: target port ${target.port} is not 1–65535`);
  }
  let delayMs = checkDelay(options.delayMs);
  const listenHost = options.listenHost ?? DEFAULT_LISTEN_HOST;

  let counts = zeroCounts();
  /** Destroys one connection pair; every open pair is in here until both its sockets closed. */
  const pairs = new Set<() => void>();

  const onConnection = (client: Socket): void => {
    counts.connections++;
    // The handshake's round trip runs from the moment the connection was opened.
    const openedAt = performance.now();
    const handshakeMs =
      options.chargeHandshake === true
        ? () => Math.max(0, openedAt + 2 * delayMs - performance.now())
        : () => 0;
    // allowHalfOpen on both sides: a FIN from one side must not end the other before the
    // held data has gone through.
    const upstream = connect({ host: target.host, port: target.port, allowHalfOpen: true });
    let counted = false;
    const counter = new HttpRequestCounter({
      onRequest: (method, path) => {
        counts.requests++;
        counts.methods.set(method, (counts.methods.get(method) ?? 0) + 1);
        counts.lines.push(`${method} ${path}`);
        if (counts.lines.length > MAX_RECORDED_LINES) counts.lines.shift();
      },
    });
    /**
     * Ends the pair at once. After an error (a reset, a refused connection) the other side is
     * reset too, so that a client sees a failure as a failure and not as a clean end of stream.
     */
    const destroyPair = (reset = false): void => {
      up.stop();
      down.stop();
      for (const socket of [client, upstream]) {
        if (socket.destroyed) continue;
        if (reset) socket.resetAndDestroy();
        else socket.destroy();
      }
      pairs.delete(destroyPair);
    };
    pairs.add(destroyPair);
    const up = new DelayedPipe(
      client,
      upstream,
      () => delayMs,
      (chunk) => {
        counts.bytesUp += chunk.length;
        counter.feed(chunk);
        if (counter.broken && !counted) {
          counted = true;
          counts.broken++;
        }
      },
      () => destroyPair(true),
      handshakeMs,
    );
    const down = new DelayedPipe(
      upstream,
      client,
      () => delayMs,
      (chunk) => {
        counts.bytesDown += chunk.length;
      },
      () => destroyPair(true),
    );
    for (const socket of [client, upstream]) {
      socket.on('error', () => destroyPair(true));
      // A clean close of one side leaves the other to finish its half-close; a reset ends both.
      socket.on('close', (hadError) => {
        if (hadError || (client.destroyed && upstream.destroyed)) destroyPair(hadError);
      });
    }
  };

  const server: Server = createServer({ allowHalfOpen: true }, onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, listenHost, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    host: `${isIP(listenHost) === 6 ? `[${listenHost}]` : listenHost}:${port}`,
    port,
    stats: () => ({
      connections: counts.connections,
      requests: counts.requests,
      methods: Object.fromEntries(counts.methods),
      bytesUp: counts.bytesUp,
      bytesDown: counts.bytesDown,
      lines: counts.lines.slice(),
      brokenConnections: counts.broken,
    }),
    reset() {
      counts = zeroCounts();
    },
    setDelay(ms) {
      delayMs = checkDelay(ms);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const destroyPair of pairs) destroyPair();
      }),
  };
}
