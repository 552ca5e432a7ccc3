/**
 * Whether a failed HTTPS request met a server that speaks plain HTTP: it answered the TLS
 * ClientHello with an HTTP status line, which OpenSSL reads as a record of a wrong version (or
 * an impossible length). containerd falls back to HTTP on exactly this sign (a TLS record
 * header of "HTTP/": remotes/docker/resolver.go isTLSError); a certificate the client does not
 * trust, a reset or a timeout is not it, so none of those ever downgrades a connection.
 */
export function isPlainHttpAnswer(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (
      (code === 'EPROTO' || (typeof code === 'string' && code.startsWith('ERR_SSL_'))) &&
      /wrong version number|packet length too long|http request/i.test(e.message)
    ) {
      return true;
    }
  }
  return false;
}
