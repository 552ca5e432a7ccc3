import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import { isIP, type LookupFunction, Socket } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import type { HeaderValue, RequestBody } from './http-types.js';
import { rawHttpGet, rawRequestable } from './raw-http-get.js';
import { trustedSecureContext } from './trusted-secure-context.js';

/** One HTTP request and its answer, nothing else: no retries, redirects or auth. */
export interface ExchangeRequest {
  readonly method: string;
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: RequestBody;
  readonly signal?: AbortSignal;
  /** The error a request ended by `signal` fails with. Left out: the exchange's own. */
  readonly aborted?: () => Error;
  /** See HttpRequest.bulkBody. */
  readonly bulkBody?: boolean;
}

export interface ExchangeResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, HeaderValue>>;
  readonly body: Readable;
}

/** One request on the wire and its answer: no retries, redirects or auth. */
export interface Exchange {
  (request: ExchangeRequest): Promise<ExchangeResponse>;
  /**
   * Opens a connection to `origin` now, for the first request there to use (see Transport).
   * Left out: connections open when requests need them.
   */
  preconnect?(origin: URL): void;
}

export interface ExchangeOptions {
  /** PEM CA certificates trusted for HTTPS, in addition to Node's defaults (trustedSecureContext). */
  readonly ca?: string;
  /** Time to set up a new connection: its TCP handshake and, for HTTPS, its TLS handshake. */
  readonly connectTimeoutMs: number;
  /** Longest silence on a connection (waiting for headers, or inside a body). */
  readonly idleTimeoutMs: number;
  /**
   * How host names become addresses (node:net's `lookup`, as curl's `--resolve` overrides DNS).
   * Left out: the system resolver.
   */
  readonly lookup?: LookupFunction;
}

function timeoutError(message: string): Error {
  return Object.assign(new Error(message), { code: 'ETIMEDOUT' });
}

/**
 * How long a connection opened ahead waits for its request before it is closed: a caller that
 * asked for it and then never sent (a command that failed on a bad argument) leaves nothing open.
 */
const PRECONNECT_IDLE_MS = 10_000;

/** A connection opened ahead of its first request, waiting for it. */
interface Opened {
  readonly socket: Socket;
  readonly servername: string;
  readonly timer: NodeJS.Timeout;
}

/** The name TLS is asked for (SNI) as Node's agent derives it: the host, or none for an address. */
function serverNameOf(host: string): string {
  return isIP(host) ? '' : host;
}

/**
 * Connections opened before their first request, one per agent and origin, handed to the agent
 * when that request asks it for a connection. Each is made by the agent's own createConnection
 * with the agent's own options (CA, keep-alive, no-delay), so it is the connection the request
 * would have opened, only sooner; and TLS checks the certificate the same way. Until a request
 * takes it, it holds no reference on the event loop: it never keeps a process alive.
 */
class EarlyConnections {
  readonly #opened = new Map<string, Opened>();
  /** Origins asked for or sent to already: each is opened ahead at most once. */
  readonly #known = new Set<string>();
  /** Per origin of openAhead: settles once its connection is ready to hand out (or failed). */
  readonly #ready = new Map<string, Promise<Error | undefined>>();
  readonly #lookup: LookupFunction | undefined;
  readonly #connectTimeoutMs: number;

  constructor(options: ExchangeOptions) {
    this.#lookup = options.lookup;
    this.#connectTimeoutMs = options.connectTimeoutMs;
  }

  /** Marks an origin as sent to: its connections are the agent's from now on. */
  used(url: URL): void {
    this.#known.add(keyOf(url));
  }

  /** Lets `agent` hand out the connections opened ahead for it. */
  adopt<A extends HttpAgent>(agent: A, secure: boolean): A {
    const create = agent.createConnection;
    agent.createConnection = (opts, callback) => {
      const socket =
        this.#take(
          secure,
          opts.host ?? undefined,
          opts.port ?? undefined,
          (opts as { servername?: unknown }).servername,
        ) ?? create.call(agent, opts, callback);
      if (secure && socket) this.#watchHandshake(socket as Socket);
      return socket;
    };
    return agent;
  }

  /** TLS connections whose handshake finished (#watchHandshake). */
  readonly #secured = new WeakSet<Socket>();
  /** When each connection opened ahead began to connect: its deadline runs from then. */
  readonly #startedAt = new WeakMap<Socket, number>();

  /** What is left of the connect deadline for `socket`: all of it for a connection of the request's own. */
  connectTimeLeft(socket: Socket): number {
    const started = this.#startedAt.get(socket);
    if (started === undefined) return this.#connectTimeoutMs;
    return Math.max(0, this.#connectTimeoutMs - (performance.now() - started));
  }

  #watchHandshake(socket: Socket): void {
    socket.once('secureConnect', () => this.#secured.add(socket));
  }

  /**
   * Whether a request given `socket` still waits for it to be set up: for HTTP, TCP's handshake;
   * for HTTPS, TLS's as well (a server may take TCP connections and never answer TLS). A reused
   * keep-alive connection, or one opened ahead and ready, does not.
   */
  settingUp(socket: Socket, secure: boolean): boolean {
    return secure ? !this.#secured.has(socket) && !socket.destroyed : socket.connecting;
  }

  /**
   * Opens a connection to an HTTPS origin ahead, before TLS is ready (`tlsAgent` loads node:tls
   * and builds its trust: milliseconds, tens of them with a CA bundle): the TCP handshake goes
   * first, and its round trip passes while TLS is built; TLS then runs over that connection.
   * Requests to the origin wait for ready() before they ask the agent for a connection.
   */
  openAhead(
    url: URL,
    tlsAgent: () => Promise<{ agent: HttpAgent; create: HttpAgent['createConnection'] }>,
  ): void {
    const key = keyOf(url);
    if (this.#known.has(key)) return;
    this.#known.add(key);
    const { host, port } = hostPortOf(url, true);
    const tcp = new Socket();
    const startedAt = performance.now();
    // Until TLS takes it over, its failure is kept for the request that waits for it.
    let failure: Error | undefined;
    tcp.on('error', (err) => {
      failure ??= err;
    });
    // Listened for before connecting: a lookup of the caller's own may answer at once.
    const sent = dialled(tcp, host);
    const connected = new Promise<void>((resolve) => {
      tcp.once('connect', resolve);
      tcp.once('close', resolve);
    });
    // The deadline a request's own connection has.
    const deadline = setTimeout(
      () => tcp.destroy(timeoutError(`no connection to ${url.host} within ${this.#connectTimeoutMs} ms`)),
      this.#connectTimeoutMs,
    );
    deadline.unref();
    connected.then(() => clearTimeout(deadline));
    try {
      tcp.connect({
        host,
        port,
        noDelay: true,
        keepAlive: true,
        ...(this.#lookup === undefined ? {} : { lookup: this.#lookup }),
      });
    } catch {
      clearTimeout(deadline);
      tcp.destroy();
      this.#known.delete(key);
      return;
    }
    tcp.unref();
    const ready = sent
      .then(tlsAgent)
      // TLS goes on once TCP is connected: until then node:net may still move the socket to a
      // new handle, to try the next of a name's addresses (autoSelectFamily), under TLS's feet.
      .then(async ({ agent, create }) => {
        await connected;
        if (tcp.destroyed) return failure ?? new Error(`no connection to ${url.host}`);
        this.open(agent, create, url, true, tcp, startedAt);
        return undefined;
      })
      .catch(() => {
        // TLS could not be built: the request meets that itself, on a connection of its own.
        tcp.destroy();
        return undefined;
      })
      .finally(() => this.#ready.delete(key));
    this.#ready.set(key, ready);
  }

  /**
   * Settles once the connection openAhead began for `url`'s origin is the agent's to hand out,
   * with the error it failed with if it did (the request fails with it: it would have made the
   * same connection), or at once when `signal` aborts (the request then ends with the abort).
   */
  async ready(url: URL, signal?: AbortSignal): Promise<Error | undefined> {
    const ready = this.#ready.get(keyOf(url));
    if (ready === undefined || signal?.aborted) return undefined;
    if (signal === undefined) return ready;
    let onAbort = () => {};
    const aborted = new Promise<undefined>((resolve) => {
      onAbort = () => resolve(undefined);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([ready, aborted]);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Opens a connection to `url`'s origin through `agent`, unless one was asked for or used; with
   * `tcp` (openAhead, connected), over that TCP connection.
   */
  open(
    agent: HttpAgent,
    create: HttpAgent['createConnection'],
    url: URL,
    secure: boolean,
    tcp?: Socket,
    startedAt: number = performance.now(),
  ): void {
    if (tcp === undefined) {
      const key = keyOf(url);
      if (this.#known.has(key)) return;
      this.#known.add(key);
    }
    const { host, port } = hostPortOf(url, secure);
    const servername = serverNameOf(host);
    const agentOptions = (agent as unknown as { options?: Record<string, unknown> }).options ?? {};
    const connection = {
      ...agentOptions,
      host,
      port,
      servername,
      keepAlive: true,
      ...(this.#lookup === undefined ? {} : { lookup: this.#lookup }),
    };
    let socket: Duplex | null | undefined;
    try {
      // The agent's key lets its TLS session be kept, for the next connections to resume it.
      // With `socket`, TLS runs over the TCP connection openAhead started.
      socket = create.call(agent, {
        ...connection,
        ...(tcp === undefined ? {} : { socket: tcp }),
        _agentKey: agent.getName(connection),
      } as typeof connection);
    } catch {
      tcp?.destroy();
      return;
    }
    if (!socket) {
      tcp?.destroy();
      return;
    }
    const opened = socket as Socket;
    if (secure) this.#watchHandshake(opened);
    this.#startedAt.set(opened, startedAt);
    const slot = slotOf(secure, host, port);
    const drop = () => {
      if (this.#opened.get(slot)?.socket === opened) {
        clearTimeout(this.#opened.get(slot)?.timer);
        this.#opened.delete(slot);
      }
    };
    // An early failure (refused, a certificate not trusted) is not handed out: the request then
    // opens its own connection, and fails with the error it always had.
    opened.on('error', drop);
    opened.once('close', drop);
    const timer = setTimeout(
      () => {
        drop();
        opened.destroy();
      },
      Math.max(PRECONNECT_IDLE_MS, this.#connectTimeoutMs),
    );
    timer.unref();
    opened.unref();
    this.#opened.set(slot, { socket: opened, servername, timer });
  }

  #take(secure: boolean, host: string | undefined, port: number | string | undefined, servername: unknown) {
    if (host === undefined || port === undefined) return undefined;
    const slot = slotOf(secure, host, port);
    const opened = this.#opened.get(slot);
    if (!opened || opened.socket.destroyed) return undefined;
    // The https agent asks with the name TLS was opened for; the http agent names none.
    if (secure && servername !== opened.servername) return undefined;
    this.#opened.delete(slot);
    clearTimeout(opened.timer);
    opened.socket.ref();
    return opened.socket;
  }
}

/**
 * The longest a connection opened ahead holds back TLS's set-up for its SYN: a name's address
 * comes back on the event loop, and a main thread busy building TLS would hold the SYN until it
 * is done. A lookup slower than this (a DNS server far away) lets TLS be built meanwhile.
 */
const DIAL_WAIT_MS = 25;

/**
 * Settles once `socket` (about to connect) has sent its SYN, or failed: after its lookup for a
 * name, on the next turn of the event loop for an address; at the latest after DIAL_WAIT_MS.
 */
function dialled(socket: Socket, host: string): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, DIAL_WAIT_MS);
    const done = () => {
      clearTimeout(timer);
      // node:net connects right after it emits 'lookup', in the same turn: the next turn is after.
      setImmediate(resolve);
    };
    if (isIP(host) !== 0) done();
    else {
      socket.once('lookup', done);
      socket.once('close', done);
    }
  });
}

/**
 * Calls `silent` when `socket` brings nothing of `res`'s body for `idleMs`. Only while more is
 * due and the reader takes what comes: a reader that stops makes node:http pause the socket
 * (backpressure), and that wait is the reader's own, not the server's (undici's body timeout
 * also waits while its reader does). A body received whole is never timed.
 */
function watchBody(res: IncomingMessage, socket: Socket, idleMs: number, silent: () => void): void {
  let timer: NodeJS.Timeout | undefined;
  const stop = () => clearTimeout(timer);
  const arm = () => {
    stop();
    if (!res.complete && !socket.isPaused()) timer = setTimeout(silent, idleMs);
  };
  socket.on('data', arm);
  socket.on('resume', arm);
  socket.on('pause', stop);
  res.once('close', () => {
    stop();
    socket.removeListener('data', arm);
    socket.removeListener('resume', arm);
    socket.removeListener('pause', stop);
  });
  arm();
}

/** Host (brackets off an IPv6 address) and port of a URL, the scheme's default port filled in. */
function hostPortOf(url: URL, secure: boolean): { host: string; port: number } {
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return { host, port: url.port === '' ? (secure ? 443 : 80) : Number(url.port) };
}

function slotOf(secure: boolean, host: string, port: number | string): string {
  return `${secure ? 'https' : 'http'}|${host}|${port}`;
}

function keyOf(url: URL): string {
  return `${url.protocol}//${url.host}`;
}

/**
 * The exchange over node:http and node:https, with keep-alive agents. Node's own client loads
 * in a few milliseconds, where an HTTP library costs a CLI a tenth of a second at every start.
 */
export function nodeHttpExchange(options: ExchangeOptions): Exchange {
  const early = new EarlyConnections(options);
  const httpAgent = new HttpAgent({ keepAlive: true, scheduling: 'lifo' });
  const createHttp = httpAgent.createConnection;
  early.adopt(httpAgent, false);
  let httpsAgent: Promise<{ agent: HttpsAgent; create: HttpAgent['createConnection'] }> | undefined;
  /** Set once TLS is loaded and its trust built: connections then start with TLS at once. */
  let httpsReady: { agent: HttpsAgent; create: HttpAgent['createConnection'] } | undefined;
  const getHttpsAgent = () => {
    httpsAgent ??= Promise.all([import('node:https'), trustedSecureContext(options.ca)]).then(
      ([{ Agent }, secureContext]) => {
        const agent = new Agent({ keepAlive: true, scheduling: 'lifo', secureContext });
        const create = agent.createConnection;
        httpsReady = { agent: early.adopt(agent, true), create };
        return httpsReady;
      },
    );
    return httpsAgent;
  };

  /** Plain-HTTP origins whose blob answers rawHttpGet could not take: node:http reads theirs. */
  const notRaw = new Set<string>();

  const exchange: Exchange = async (req) => {
    const secure = req.url.protocol === 'https:';
    if (
      req.bulkBody &&
      req.method === 'GET' &&
      req.body === undefined &&
      !notRaw.has(keyOf(req.url)) &&
      rawRequestable(req)
    ) {
      const raw = await rawHttpGet(req, options);
      if (raw !== undefined) return raw;
      notRaw.add(keyOf(req.url));
    }
    // The first HTTPS request of an exchange, not opened ahead (preconnect): the same, TCP first.
    if (secure && httpsReady === undefined) early.openAhead(req.url, getHttpsAgent);
    early.used(req.url);
    // A connection opened ahead whose TLS is being set up: it is handed to the agent first.
    if (secure) {
      const failed = await early.ready(req.url, req.signal);
      if (failed !== undefined) throw failed;
    }
    const agent = secure ? (await getHttpsAgent()).agent : httpAgent;
    const send = secure ? (await import('node:https')).request : httpRequest;
    const headers: Record<string, string> = { ...req.headers };
    const body = req.body;
    if ((typeof body === 'string' || body instanceof Uint8Array) && headers['content-length'] === undefined) {
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    return new Promise<ExchangeResponse>((resolve, reject) => {
      const request = send(req.url, {
        method: req.method,
        headers,
        agent,
        ...(options.lookup === undefined ? {} : { lookup: options.lookup }),
      });
      let connectTimer: NodeJS.Timeout | undefined;
      // Node's own `signal` option destroys with a plain AbortError; the caller's error (`aborted`,
      // ERR_ABORTED naming the request) is what the promise and a streamed request body get.
      // Once the answer's headers are in, the body is the caller's to abort (createTransport).
      const { signal, aborted } = req;
      const onAbort = () => {
        const err =
          aborted?.() ??
          Object.assign(new Error('the request was aborted'), { name: 'AbortError', code: 'ABORT_ERR' });
        if (body !== undefined && typeof body !== 'string' && !(body instanceof Uint8Array)) body.destroy();
        request.destroy(err);
      };
      const detach = () => signal?.removeEventListener('abort', onAbort);
      if (signal?.aborted) queueMicrotask(onAbort);
      else signal?.addEventListener('abort', onAbort, { once: true });
      // Silence on the connection until the answer's headers (a socket's own timeout alone does
      // not reach the request); inside the body, watchBody counts it.
      request.setTimeout(options.idleTimeoutMs);
      request.on('socket', (socket) => {
        // A reused keep-alive socket is ready; a new one gets a deadline for its TCP and TLS
        // handshakes, as Go's http.Transport has (TLSHandshakeTimeout) for docker and skopeo.
        if (early.settingUp(socket, secure)) {
          connectTimer = setTimeout(
            () =>
              request.destroy(
                timeoutError(`no connection to ${req.url.host} within ${options.connectTimeoutMs} ms`),
              ),
            // One opened ahead has been at it for a while: the deadline runs from its start.
            early.connectTimeLeft(socket),
          );
          socket.once(secure ? 'secureConnect' : 'connect', () => clearTimeout(connectTimer));
        }
      });
      const silent = () => {
        const err = timeoutError(`${req.url.host} went silent for ${options.idleTimeoutMs} ms`);
        // Inside the body, its reader gets this error rather than a bare "aborted".
        response?.destroy(err);
        request.destroy(err);
      };
      let response: IncomingMessage | undefined;
      request.on('timeout', silent);
      request.on('error', (err) => {
        clearTimeout(connectTimer);
        detach();
        reject(err);
      });
      request.on('response', (res: IncomingMessage) => {
        response = res;
        clearTimeout(connectTimer);
        request.setTimeout(0);
        if (request.socket !== null) watchBody(res, request.socket, options.idleTimeoutMs, silent);
        detach();
        // headersDistinct keeps repeated headers apart (several WWW-Authenticate challenges).
        const headers: Record<string, HeaderValue> = {};
        for (const [name, values] of Object.entries(res.headersDistinct)) {
          if (values !== undefined) headers[name] = values.length === 1 ? values[0] : values;
        }
        resolve({ status: res.statusCode ?? 0, headers, body: res });
      });
      if (body === undefined) request.end();
      else if (typeof body === 'string' || body instanceof Uint8Array) request.end(body);
      else {
        body.on('error', (err) => request.destroy(err));
        body.pipe(request);
      }
    });
  };
  exchange.preconnect = (origin) => {
    if (origin.protocol === 'http:') early.open(httpAgent, createHttp, origin, false);
    else if (origin.protocol === 'https:') {
      // Until TLS is ready, TCP's handshake goes first: its round trip passes while TLS is built.
      // Once it is, the connection starts now, before whatever the caller does next.
      if (httpsReady === undefined) early.openAhead(origin, getHttpsAgent);
      else early.open(httpsReady.agent, httpsReady.create, origin, true);
    }
  };
  return exchange;
}

/**
 * The exchange through HTTP(S)_PROXY/NO_PROXY, by undici's EnvHttpProxyAgent: loaded only when
 * a proxy is configured, so a plain start-up does not pay for it. Plain-HTTP targets go to the
 * proxy in absolute form, as curl sends them (proxies commonly allow CONNECT only to port 443);
 * HTTPS targets are tunnelled with CONNECT.
 */
export function proxyExchange(
  options: ExchangeOptions & {
    readonly httpProxy?: string;
    readonly httpsProxy?: string;
    readonly noProxy?: string;
  },
): Exchange {
  const agent = Promise.all([
    import('undici'),
    options.ca === undefined ? undefined : trustedSecureContext(options.ca),
  ]).then(
    ([{ EnvHttpProxyAgent }, secureContext]) =>
      new EnvHttpProxyAgent({
        connect: {
          timeout: options.connectTimeoutMs,
          ...(secureContext === undefined ? {} : { secureContext }),
        },
        headersTimeout: options.idleTimeoutMs,
        bodyTimeout: options.idleTimeoutMs,
        proxyTunnel: false,
        // The target's TLS through a tunnel, and an https:// proxy's own.
        ...(secureContext === undefined
          ? {}
          : { requestTls: { secureContext }, proxyTls: { secureContext } }),
        ...(options.httpProxy ? { httpProxy: options.httpProxy } : {}),
        ...(options.httpsProxy ? { httpsProxy: options.httpsProxy } : {}),
        ...(options.noProxy === undefined ? {} : { noProxy: options.noProxy }),
      }),
  );
  return async (req) => {
    const { request } = await import('undici');
    // undici ends a request, and destroys its body, with its signal's raw reason: it gets a
    // signal of the exchange's own, aborted with the caller's error (`aborted`, ERR_ABORTED naming
    // the request) as nodeHttpExchange fails with, so a body cut off midway says it was aborted.
    const { signal, aborted } = req;
    const own = signal === undefined ? undefined : new AbortController();
    const onAbort = () =>
      own?.abort(
        aborted?.() ??
          Object.assign(new Error('the request was aborted'), { name: 'AbortError', code: 'ABORT_ERR' }),
      );
    const detach = () => signal?.removeEventListener('abort', onAbort);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(req.url, {
        method: req.method as 'GET',
        headers: req.headers,
        body: req.body ?? null,
        dispatcher: await agent,
        ...(own === undefined ? {} : { signal: own.signal }),
      });
    } catch (err) {
      detach();
      throw err;
    }
    const body = res.body as unknown as Readable;
    // The body stays under the signal until it is done with (read, or destroyed).
    if (signal !== undefined) body.once('close', detach);
    return { status: res.statusCode, headers: res.headers as Record<string, HeaderValue>, body };
  };
}
