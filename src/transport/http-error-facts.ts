import type { RegauthErrorOptions, RegauthErrorRequest } from '../errors/regauth-error.js';
import type { HttpResponse } from './http-types.js';
import { redactUrl } from './redact.js';

/**
 * A request as an error may carry it: the URL without user info (a password or token may sit
 * there) and with the transport's redaction of query values, fragments and JWTs, as the trace
 * shows it.
 */
export function errorRequest(method: string, url: URL): RegauthErrorRequest {
  const bare = new URL(url.href);
  bare.username = '';
  bare.password = '';
  return { method, url: redactUrl(bare) };
}

/**
 * What an error built from a server's answer carries about it: the status, and the request
 * that got it. `method` stands in when the response does not say (a caller's own send).
 */
export function httpErrorFacts(
  res: Pick<HttpResponse, 'status' | 'url' | 'method'>,
  method?: string,
): Pick<RegauthErrorOptions, 'status' | 'request'> {
  const used = res.method ?? method;
  return {
    status: res.status,
    ...(used === undefined ? {} : { request: errorRequest(used, res.url) }),
  };
}
