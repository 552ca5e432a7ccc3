import { Readable } from 'node:stream';

/** A request body the transport can send again on a retry or redirect; a stream cannot be. */
export type ReplayableBody = string | Uint8Array;
/** A request body: bytes or text (sent again on a retry or redirect), or a stream (sent once). */
export type RequestBody = ReplayableBody | Readable;

/** One request as the layers above the transport describe it. */
export interface HttpRequest {
  readonly method: string;
  readonly url: URL;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: RequestBody;
  /** Follow redirects (GET and HEAD only). Left out: true. */
  readonly followRedirects?: boolean;
  readonly signal?: AbortSignal;
  /** How many times a failed attempt may be retried. Left out: the transport's setting. */
  readonly retries?: number;
  /**
   * The answer's body is large (a blob) and will be read to its end: over plain HTTP it is read
   * straight off a connection of its own into one reused buffer (rawHttpGet), and pumpBody hands
   * it on from there. GET only. Left out: node:http reads it.
   */
  readonly bulkBody?: boolean;
}

/** A response header as Node reads it: repeated headers such as Set-Cookie are arrays. */
export type HeaderValue = string | string[] | undefined;

/** A response as the transport hands it up: status, headers, and the body as a stream read at most once. */
export interface HttpResponse {
  readonly status: number;
  /** The method of the request answered; set by regauth's transport, may be missing from a caller's own send. */
  readonly method?: string;
  /** The URL that answered, after redirects. */
  readonly url: URL;
  readonly headers: Readonly<Record<string, HeaderValue>>;
  /** A header's value; repeated headers joined with ", " (RFC 9110 §5.3). */
  header(name: string): string | undefined;
  /** Every value of a header that may repeat (WWW-Authenticate, Link). */
  headerValues(name: string): string[];
  readonly body: Readable;
  /** The whole body, refused with ERR_TOO_LARGE past `limit` bytes. */
  bytes(limit: number): Promise<Buffer>;
  /** The whole body as UTF-8 text, refused with ERR_TOO_LARGE past `limit` bytes. */
  text(limit: number): Promise<string>;
  /** Reads and drops the body so the connection can be reused. */
  dump(): Promise<void>;
}

/** The one narrow interface every layer above the transport speaks. */
export type Send = (request: HttpRequest) => Promise<HttpResponse>;

/** createTransport's send: it can also open a connection before the first request needs it. */
export interface Transport extends Send {
  /**
   * Opens a connection to `origin` (scheme, host and port) now, for the first request there to
   * use instead of waiting for TCP and TLS handshakes: call it as soon as the origin is known,
   * before slower work (reading credentials, deriving the token cache's key). At most one per
   * origin, and none once a request went there; one not used within 10 s is closed. For the
   * first HTTPS origin, TCP's handshake starts before TLS is loaded and its trust built, and its
   * round trip passes meanwhile. Through a proxy it does nothing.
   */
  preconnect(origin: URL): void;
}

/** A response whose body was already read into `bytes`: it can be handed on and read again. */
export function bufferedResponse(res: HttpResponse, bytes: Buffer): HttpResponse {
  return {
    ...res,
    body: Readable.from([bytes]),
    bytes: async () => bytes,
    text: async () => bytes.toString('utf8'),
    dump: async () => {},
  };
}
