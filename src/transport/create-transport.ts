import type { Readable } from 'node:stream';
import { abortedError, raceSignal } from '../errors/aborted-error.js';
import { RegauthError } from '../errors/regauth-error.js';
import { sanitizeServerText, stringifyServerJson } from '../errors/sanitize-server-text.js';
import { errorRequest, httpErrorFacts } from './http-error-facts.js';
import { type Exchange, nodeHttpExchange, proxyExchange } from './http-exchange.js';
import type { HeaderValue, HttpRequest, HttpResponse, Send, Transport } from './http-types.js';
import { isQuotaExhausted } from './is-quota-exhausted.js';
import { redactForm, redactHeaders, redactJson, redactUrl } from './redact.js';
import { parseRetryAfter } from './retry-after.js';
import type { Tracer } from './trace.js';
import { readCaFile } from './trusted-secure-context.js';

/** Attempts after the first for 408/429/5xx and network errors (what crane and containerd do, roughly). */
export const DEFAULT_MAX_RETRIES = 3;
/** First back-off; doubles per attempt, with jitter, up to MAX_BACKOFF_MS. */
export const DEFAULT_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 5000;
/** A Retry-After longer than this is not waited out: the caller gets the 429 and says how long. */
export const MAX_RETRY_AFTER_S = 60;
/** Redirect hops followed before giving up (browsers and curl use 20; registries use one or two). */
export const MAX_REDIRECTS = 10;
/**
 * Time to set up a connection, its TCP and TLS handshakes both; registries on loopback answer in
 * microseconds, remote ones in milliseconds.
 */
export const CONNECT_TIMEOUT_MS = 15_000;
/** Time to the response headers: registries compute digests of large uploads before answering. */
export const HEADERS_TIMEOUT_MS = 120_000;
/** Longest silence inside a body before the transfer is given up (and, for blobs, resumed). */
export const BODY_TIMEOUT_MS = 120_000;
const TRACE_BODY_LIMIT = 4096;

/** Answers a failed idempotent request is sent again after (with back-off, honouring Retry-After). */
export const RETRY_STATUSES: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504]);
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const RETRY_ERROR_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

/** Whether an error is a network failure worth another attempt (reset, timeout, closed socket). */
export function isRetryableNetworkError(err: unknown): boolean {
  return RETRY_ERROR_CODES.has((err as { code?: string } | undefined)?.code ?? '');
}

/** How createTransport sends: its CA, proxy environment, retries and tracing. */
export interface TransportOptions {
  /** Receives every request and response, redacted. Left out: no tracing. */
  readonly trace?: Tracer;
  /** Extra CA certificates (PEM file) trusted for HTTPS, besides Node's defaults. Left out: those alone. */
  readonly caFile?: string;
  /** Environment for HTTPS_PROXY/HTTP_PROXY/NO_PROXY. Left out: process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Left out: DEFAULT_MAX_RETRIES. */
  readonly maxRetries?: number;
  /** Left out: DEFAULT_BACKOFF_MS. */
  readonly backoffMs?: number;
  /**
   * How the transport waits between attempts; tests pass a fast one. The request's signal is
   * passed along; the wait ends at its abort whether or not this function heeds it.
   */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /**
   * How one request goes out. Left out: node:http(s) with keep-alive, or a proxy when the env
   * names one.
   * @internal tests replace the wire; applications give their own `send` instead.
   */
  readonly exchange?: Exchange;
  /** Sent with every request. Left out: `regauth/<version>`. */
  readonly userAgent?: string;
}

function firstHeader(headers: Readonly<Record<string, HeaderValue>>, name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Headers for the trace: secrets redacted, and a server's control characters (C1 ones pass Node's parser) escaped. */
function traceHeaders(headers: Readonly<Record<string, HeaderValue>>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(redactHeaders(headers))) {
    out[name] = Array.isArray(value)
      ? value.map((v) => sanitizeServerText(v, { singleLine: true }))
      : sanitizeServerText(value, { singleLine: true });
  }
  return out;
}

function makeExchange(options: TransportOptions): Exchange {
  const ca = options.caFile === undefined ? undefined : readCaFile(options.caFile);
  const base = {
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    idleTimeoutMs: Math.max(HEADERS_TIMEOUT_MS, BODY_TIMEOUT_MS),
    ...(ca === undefined ? {} : { ca }),
  };
  const env = options.env ?? process.env;
  const proxy = (name: string): string | undefined => env[name] ?? env[name.toLowerCase()];
  const httpProxy = proxy('HTTP_PROXY');
  const httpsProxy = proxy('HTTPS_PROXY');
  if (httpProxy || httpsProxy) {
    const noProxy = proxy('NO_PROXY');
    return proxyExchange({
      ...base,
      ...(httpProxy ? { httpProxy } : {}),
      ...(httpsProxy ? { httpsProxy } : {}),
      ...(noProxy === undefined ? {} : { noProxy }),
    });
  }
  return nodeHttpExchange(base);
}

async function readLimited(body: Readable, limit: number, url: URL): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      body.destroy();
      throw new RegauthError(
        'ERR_TOO_LARGE',
        `the response from ${url.host} is larger than ${limit} bytes, more than this kind of answer can be; refusing to read it`,
      );
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Reads a body to its end (up to 1 MiB) so its connection goes back to the pool; else drops it. */
async function drain(body: Readable): Promise<void> {
  let seen = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      seen += chunk.length;
      if (seen > 1024 * 1024) {
        body.destroy();
        return;
      }
    }
  } catch {
    // A broken body has nothing left to drain.
  }
}

function isReplayable(body: HttpRequest['body']): boolean {
  return body === undefined || typeof body === 'string' || body instanceof Uint8Array;
}

function networkError(err: unknown, req: HttpRequest): RegauthError {
  const code = (err as { code?: string }).code ?? '';
  const why = (err as Error).message || code;
  const tls = code !== 'ECONNREFUSED' && /certificate|self.signed|SSL|TLS/i.test(why);
  // A TLS failure's advice names settings (a CA to trust, plain HTTP): the caller words it.
  const advice =
    code === 'ECONNREFUSED'
      ? '; is the registry running there?'
      : tls
        ? ''
        : '; check the address and the network';
  return new RegauthError(
    'ERR_NETWORK',
    `${req.method} ${req.url.origin}: ${why} (${code || 'network error'})${advice}`,
    {
      cause: err,
      request: errorRequest(req.method, req.url),
      ...(tls ? { hint: { kind: 'tls' as const } } : {}),
    },
  );
}

/** The default wait between attempts: its timer goes when the request is aborted. */
function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * The one send function every layer above uses: keep-alive connections, retries with back-off
 * honouring Retry-After, redirects that never carry credentials to another origin (as
 * containerd and go-containerregistry strip Authorization on a cross-origin redirect), capped
 * body reads, and a redacted trace.
 */
export function createTransport(options: TransportOptions = {}): Transport {
  const exchange = options.exchange ?? makeExchange(options);
  const maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES;
  const backoffMs = options.backoffMs ?? DEFAULT_BACKOFF_MS;
  const sleep = options.sleep ?? defaultSleep;
  const trace = options.trace;
  const userAgent = options.userAgent ?? 'regauth';

  /** What an aborted request fails with: it names the request (redacted), never a secret. */
  const aborted = (req: HttpRequest) => abortedError(`${req.method} ${redactUrl(req.url)}`, req.signal);

  const once = async (req: HttpRequest): Promise<HttpResponse> => {
    const headers: Record<string, string> = { 'user-agent': userAgent, ...req.headers };
    const started = Date.now();
    if (trace) {
      const body =
        typeof req.body === 'string' && /x-www-form-urlencoded/.test(headers['content-type'] ?? '')
          ? redactForm(req.body)
          : undefined;
      trace({
        kind: 'request',
        method: req.method,
        url: redactUrl(req.url),
        headers: traceHeaders(headers),
        ...(body === undefined ? {} : { body }),
      });
    }
    const res = await exchange({
      method: req.method,
      url: req.url,
      headers,
      ...(req.body === undefined ? {} : { body: req.body }),
      ...(req.signal === undefined ? {} : { signal: req.signal, aborted: () => aborted(req) }),
      ...(req.bulkBody ? { bulkBody: true } : {}),
    });
    const signal = req.signal;
    if (signal !== undefined) {
      // From here the body is being read: an abort errors it (and frees its connection).
      if (signal.aborted) {
        res.body.destroy();
        throw aborted(req);
      }
      const onAbort = () => res.body.destroy(aborted(req));
      signal.addEventListener('abort', onAbort, { once: true });
      res.body.once('close', () => signal.removeEventListener('abort', onAbort));
    }
    const resHeaders = res.headers as Record<string, HeaderValue>;
    trace?.({
      kind: 'response',
      method: req.method,
      url: redactUrl(req.url),
      status: res.status,
      headers: traceHeaders(resHeaders),
      ms: Date.now() - started,
    });
    const url = req.url;
    const traceBody = (buf: Buffer) => {
      if (!trace || buf.length === 0 || buf.length > TRACE_BODY_LIMIT) return;
      const type = firstHeader(resHeaders, 'content-type') ?? '';
      // Blobs and other data are not worth a line; JSON answers and error answers are.
      if (!/json/.test(type) && res.status < 400) return;
      let json: unknown;
      try {
        json = JSON.parse(buf.toString('utf8'));
      } catch {
        // Only JSON can be redacted key by key; anything else stays out, whoever sent it: a
        // token endpoint's odd answer may hold the token, S3's SignatureDoesNotMatch page
        // quotes the signature it was given.
        trace({
          kind: 'note',
          text: `a ${buf.length}-byte body that is not JSON, not shown (it may hold secrets)`,
        });
        return;
      }
      trace({ kind: 'body', url: redactUrl(url), text: stringifyServerJson(redactJson(json), 2) });
    };
    return {
      status: res.status,
      method: req.method,
      url,
      headers: resHeaders,
      header: (name) => firstHeader(resHeaders, name),
      headerValues: (name) => {
        const v = resHeaders[name.toLowerCase()];
        return v === undefined ? [] : Array.isArray(v) ? v : [v];
      },
      body: res.body,
      bytes: async (limit) => {
        const buf = await readLimited(res.body, limit, url);
        traceBody(buf);
        return buf;
      },
      text: async (limit) => {
        const buf = await readLimited(res.body, limit, url);
        traceBody(buf);
        return buf.toString('utf8');
      },
      dump: () => drain(res.body),
    };
  };

  const withRetries = async (req: HttpRequest): Promise<HttpResponse> => {
    const replayable = isReplayable(req.body);
    // Back-offs and Retry-After waits end at once on abort; nothing is sent again after one.
    const wait = (ms: number) =>
      raceSignal(sleep(ms, req.signal), req.signal, `${req.method} ${redactUrl(req.url)}`);
    for (let attempt = 0; ; attempt++) {
      if (req.signal?.aborted) throw aborted(req);
      const canRetry = replayable && attempt < (req.retries ?? maxRetries);
      const backoff = Math.min(MAX_BACKOFF_MS, backoffMs * 2 ** attempt) * (0.8 + Math.random() * 0.4);
      let res: HttpResponse;
      try {
        res = await once(req);
      } catch (err) {
        if (req.signal?.aborted) throw aborted(req);
        const code = (err as { code?: string }).code ?? '';
        if (canRetry && RETRY_ERROR_CODES.has(code)) {
          trace?.({
            kind: 'retry',
            url: redactUrl(req.url),
            attempt: attempt + 1,
            waitMs: Math.round(backoff),
            reason: code,
          });
          await wait(backoff);
          continue;
        }
        if (err instanceof RegauthError) throw err;
        throw networkError(err, req);
      }
      if (!canRetry || !RETRY_STATUSES.has(res.status)) return res;
      if (isQuotaExhausted(res)) return res;
      const retryAfter = parseRetryAfter(res.header('retry-after'));
      if (retryAfter !== undefined && retryAfter > MAX_RETRY_AFTER_S) return res;
      const waitMs = retryAfter === undefined ? backoff : retryAfter * 1000;
      await res.dump();
      trace?.({
        kind: 'retry',
        url: redactUrl(req.url),
        attempt: attempt + 1,
        waitMs: Math.round(waitMs),
        reason: `HTTP ${res.status}`,
      });
      await wait(waitMs);
    }
  };

  const send: Send = async (req) => {
    let current = req;
    for (let hop = 0; ; hop++) {
      // An aborted signal sends nothing, and stops a chain of redirects where it is.
      if (current.signal?.aborted) throw aborted(current);
      const res = await withRetries(current);
      const follow =
        (current.followRedirects ?? true) && (current.method === 'GET' || current.method === 'HEAD');
      if (!follow || !REDIRECT_STATUSES.has(res.status)) return res;
      const location = res.header('location');
      if (location === undefined) return res;
      await res.dump();
      if (hop >= MAX_REDIRECTS) {
        throw new RegauthError(
          'ERR_REDIRECT',
          `${req.method} ${redactUrl(req.url)}: more than ${MAX_REDIRECTS} redirects`,
          httpErrorFacts(res, current.method),
        );
      }
      const next = new URL(location, current.url);
      if (next.protocol !== 'https:' && next.protocol !== 'http:') {
        throw new RegauthError('ERR_REDIRECT', `refusing a redirect to a ${next.protocol} URL`);
      }
      let headers = current.headers ?? {};
      // Blob GETs redirect to storage hosts (S3, CDNs): credentials stay with the origin that was asked.
      if (next.origin !== current.url.origin) {
        headers = Object.fromEntries(
          Object.entries(headers).filter(
            ([k]) => !['authorization', 'cookie', 'proxy-authorization'].includes(k.toLowerCase()),
          ),
        );
      }
      current = { ...current, url: next, headers };
    }
  };
  return Object.assign(send, {
    preconnect(origin: URL): void {
      exchange.preconnect?.(origin);
    },
  });
}
