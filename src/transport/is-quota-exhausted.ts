import type { HttpResponse } from './http-types.js';

/**
 * Whether a 429 is a spent quota rather than a burst: `ratelimit-remaining: 0` (Docker Hub's
 * pull limit, `0;w=21600`) and no `Retry-After`. Docker Hub's window is hours long, so waiting
 * seconds and asking again only spends more of the caller's time (and, for Docker Hub, counts
 * against nothing but patience): the answer goes straight to the caller, who says when the
 * window ends (https://docs.docker.com/docker-hub/usage/pulls/).
 */
export function isQuotaExhausted(res: HttpResponse): boolean {
  if (res.status !== 429 || res.header('retry-after') !== undefined) return false;
  const remaining = res.header('ratelimit-remaining');
  return remaining !== undefined && /^\s*0\s*(?:[;,]|$)/.test(remaining);
}
