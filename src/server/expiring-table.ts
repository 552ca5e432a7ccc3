/**
 * A Map whose entries expire, with a hard cap on their number. Keys are meant to be fixed-size
 * digests (KeyedDigest) and values small fixed shapes, so the cap on entries is a cap on bytes.
 *
 * Map iteration order is insertion order, and `set` re-inserts: the first entry is always the
 * one written longest ago. When the table is full, that one goes (O(1)); expired entries are
 * dropped when read and by `sweep()`, which the server runs on a timer. Never sweeping on insert
 * keeps a flood of new keys from costing a full scan each.
 */
export class ExpiringTable<V> {
  readonly #entries = new Map<string, { value: V; expires: number }>();
  readonly #maxEntries: number;
  readonly #now: () => number;

  constructor(maxEntries: number, now: () => number = Date.now) {
    this.#maxEntries = Math.max(1, maxEntries);
    this.#now = now;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: string): V | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expires <= this.#now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  /** Stores `value` until `expires` (ms since the epoch), as the newest entry. */
  set(key: string, value: V, expires: number): void {
    if (!this.#entries.delete(key) && this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, { value, expires });
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  /** Drops every expired entry; returns how many went. */
  sweep(): number {
    const now = this.#now();
    let dropped = 0;
    for (const [key, entry] of this.#entries) {
      if (entry.expires <= now) {
        this.#entries.delete(key);
        dropped++;
      }
    }
    return dropped;
  }

  clear(): void {
    this.#entries.clear();
  }
}
