import type { HttpResponse } from '../transport/http-types.js';

/** Docker Hub's pull quota as its `ratelimit-limit`/`ratelimit-remaining` headers state it. */
export interface RateLimit {
  readonly limit: number;
  readonly remaining: number;
  /** The window in seconds (`;w=21600`), when stated. */
  readonly windowSeconds?: number;
}

/** Reads `ratelimit-limit: 100;w=21600` and `ratelimit-remaining: 76;w=21600`; undefined when absent. */
export function parseRateLimit(res: HttpResponse): RateLimit | undefined {
  const limit = res.header('ratelimit-limit');
  const remaining = res.header('ratelimit-remaining');
  if (limit === undefined || remaining === undefined) return undefined;
  const number = (v: string) => Number.parseInt(v, 10);
  const l = number(limit);
  const r = number(remaining);
  if (!Number.isFinite(l) || !Number.isFinite(r)) return undefined;
  const w = /;\s*w=(\d+)/.exec(limit)?.[1] ?? /;\s*w=(\d+)/.exec(remaining)?.[1];
  return w === undefined ? { limit: l, remaining: r } : { limit: l, remaining: r, windowSeconds: Number(w) };
}
