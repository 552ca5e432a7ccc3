/**
 * Counts failed logins per (user, client address) in a sliding window; past the limit the pair
 * is locked until its oldest failure leaves the window. Only failures count: real clients send
 * bursts of parallel token requests and retries that must never lock a valid user out
 * (PROTOCOL.md §6).
 */
export class LoginLimiter {
  readonly #failures = new Map<string, number[]>();
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  readonly #maxKeys: number;

  constructor(limit: number, windowSeconds: number, now: () => number = Date.now, maxKeys = 100_000) {
    this.#limit = limit;
    this.#windowMs = windowSeconds * 1000;
    this.#now = now;
    this.#maxKeys = maxKeys;
  }

  #key(user: string, address: string): string {
    return `${address}\u0000${user}`;
  }

  #recent(key: string): number[] {
    const cutoff = this.#now() - this.#windowMs;
    const times = (this.#failures.get(key) ?? []).filter((t) => t > cutoff);
    if (times.length === 0) this.#failures.delete(key);
    else this.#failures.set(key, times);
    return times;
  }

  /** Seconds until the pair may try again, or 0 when it is not locked. */
  retryAfter(user: string, address: string): number {
    if (this.#limit <= 0) return 0;
    const times = this.#recent(this.#key(user, address));
    if (times.length < this.#limit) return 0;
    const oldest = times[times.length - this.#limit] as number;
    return Math.max(1, Math.ceil((oldest + this.#windowMs - this.#now()) / 1000));
  }

  recordFailure(user: string, address: string): void {
    if (this.#limit <= 0) return;
    const key = this.#key(user, address);
    const times = this.#recent(key);
    if (!this.#failures.has(key) && this.#failures.size >= this.#maxKeys) this.#sweep();
    times.push(this.#now());
    // Keep no more history than the limit needs.
    this.#failures.set(key, times.slice(-this.#limit));
  }

  recordSuccess(user: string, address: string): void {
    this.#failures.delete(this.#key(user, address));
  }

  #sweep(): void {
    for (const key of [...this.#failures.keys()]) this.#recent(key);
    // Still full of live entries: drop the oldest keys rather than grow without bound.
    for (const key of this.#failures.keys()) {
      if (this.#failures.size < this.#maxKeys) break;
      this.#failures.delete(key);
    }
  }
}
