import { isIP } from 'node:net';
import type { SecureContext, TLSSocket } from 'node:tls';
import { isPlainHttpAnswer } from './is-plain-http-answer.js';

/** What probeTls found: the server finished a TLS handshake, or answered it with plain HTTP. */
export type TlsProbeAnswer = 'tls' | 'plain';

/**
 * Longest a probe waits for its answer: on loopback a server answers in milliseconds, and one
 * that does not is left to the ping, which waits as long as the transport does.
 */
export const TLS_PROBE_TIMEOUT_MS = 500;

/** A context that trusts no certificate: building one costs no parsing of a CA store. */
let EMPTY_TRUST: SecureContext | undefined;

/**
 * Whether the server at `host` (`host[:port]`, port 443 when left out) speaks TLS, asked the
 * cheapest way: a TLS handshake whose context trusts nothing, so that building it parses no CA
 * store (Node 20 parses its bundled roots for the first context that trusts them: 30 ms on a
 * small machine). Its certificate is not checked, nothing is sent over it, and it is closed at
 * once: the answer only says which scheme to speak. Resolves `plain` when the server answered
 * the ClientHello with plain HTTP (isPlainHttpAnswer, the sign containerd falls back to HTTP
 * on), `tls` when the handshake finished, and undefined for anything else (refused, reset, a TLS
 * alert, silence past `timeoutMs`): the caller then asks the usual way, with every check.
 */
export async function probeTls(
  host: string,
  timeoutMs = TLS_PROBE_TIMEOUT_MS,
): Promise<TlsProbeAnswer | undefined> {
  let url: URL;
  try {
    url = new URL(`https://${host}/`);
  } catch {
    return undefined;
  }
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port === '' ? 443 : Number(url.port);
  const tls = await import('node:tls');
  EMPTY_TRUST ??= tls.createSecureContext({ ca: [] });
  const secureContext = EMPTY_TRUST;
  return new Promise((resolve) => {
    let socket: TLSSocket | undefined;
    const done = (answer: TlsProbeAnswer | undefined) => {
      clearTimeout(timer);
      socket?.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    try {
      socket = tls.connect({
        host: hostname,
        port,
        secureContext,
        // Nothing is sent over it and its certificate decides nothing: the scheme is all it asks.
        rejectUnauthorized: false,
        ...(isIP(hostname) === 0 ? { servername: hostname } : {}),
      });
    } catch {
      done(undefined);
      return;
    }
    socket.once('secureConnect', () => done('tls'));
    socket.once('error', (err) => done(isPlainHttpAnswer(err) ? 'plain' : undefined));
    socket.once('close', () => done(undefined));
  });
}
