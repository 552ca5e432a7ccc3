import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import type { LookupFunction } from 'node:net';
import type { Readable } from 'node:stream';
import type { HeaderValue, RequestBody } from './http-types.js';

/** One HTTP request and its answer, nothing else: no retries, redirects or auth. */
export interface ExchangeRequest {
  readonly method: string;
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: RequestBody;
  readonly signal?: AbortSignal;
  /** The error a request ended by `signal` fails with. Left out: the exchange's own. */
  readonly aborted?: () => Error;
}

export interface ExchangeResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, HeaderValue>>;
  readonly body: Readable;
}

/** One request on the wire and its answer: no retries, redirects or auth. */
export type Exchange = (request: ExchangeRequest) => Promise<ExchangeResponse>;

export interface ExchangeOptions {
  /** PEM CA certificates trusted for HTTPS, in addition to the system's. */
  readonly ca?: string;
  /** Time to set up a connection. */
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
 * The exchange over node:http and node:https, with keep-alive agents. Node's own client loads
 * in a few milliseconds, where an HTTP library costs a CLI a tenth of a second at every start.
 */
export function nodeHttpExchange(options: ExchangeOptions): Exchange {
  const httpAgent = new HttpAgent({ keepAlive: true, scheduling: 'lifo' });
  let httpsAgent: Promise<HttpsAgent> | undefined;
  const getHttpsAgent = () => {
    httpsAgent ??= import('node:https').then(
      ({ Agent }) =>
        new Agent({
          keepAlive: true,
          scheduling: 'lifo',
          ...(options.ca === undefined ? {} : { ca: options.ca }),
        }),
    );
    return httpsAgent;
  };

  return async (req) => {
    const secure = req.url.protocol === 'https:';
    const agent = secure ? await getHttpsAgent() : httpAgent;
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
      request.on('socket', (socket) => {
        socket.setTimeout(options.idleTimeoutMs);
        // A reused keep-alive socket is connected already; a new one gets a connect deadline.
        if (socket.connecting) {
          connectTimer = setTimeout(
            () =>
              request.destroy(
                timeoutError(`no connection to ${req.url.host} within ${options.connectTimeoutMs} ms`),
              ),
            options.connectTimeoutMs,
          );
          socket.once('connect', () => clearTimeout(connectTimer));
        }
      });
      request.on('timeout', () =>
        request.destroy(timeoutError(`${req.url.host} went silent for ${options.idleTimeoutMs} ms`)),
      );
      request.on('error', (err) => {
        clearTimeout(connectTimer);
        detach();
        reject(err);
      });
      request.on('response', (res: IncomingMessage) => {
        clearTimeout(connectTimer);
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
  const agent = import('undici').then(
    ({ EnvHttpProxyAgent }) =>
      new EnvHttpProxyAgent({
        connect: {
          timeout: options.connectTimeoutMs,
          ...(options.ca === undefined ? {} : { ca: options.ca }),
        },
        headersTimeout: options.idleTimeoutMs,
        bodyTimeout: options.idleTimeoutMs,
        proxyTunnel: false,
        ...(options.ca === undefined ? {} : { requestTls: { ca: options.ca } }),
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
