import type { RateLimit } from '../registry/rate-limit.js';
import { terminalSession } from './terminal-session.js';

/** Below this share of the quota left, the CLI says so on stderr (Docker Hub: 100 pulls / 6 h anonymously). */
const RATE_LIMIT_WARN_SHARE = 0.1;

export function warnRateLimit(registry: string, rateLimit: RateLimit | undefined): void {
  if (!rateLimit || rateLimit.remaining > rateLimit.limit * RATE_LIMIT_WARN_SHARE) return;
  const window =
    rateLimit.windowSeconds === undefined ? '' : ` per ${Math.round(rateLimit.windowSeconds / 3600)} h`;
  terminalSession().log(
    `regauth: warning: ${registry} rate limit: ${rateLimit.remaining} of ${rateLimit.limit} pulls left${window}; logging in raises it`,
  );
}
