/**
 * Revocations kept at most this many accounts at once. An entry is an account name (at most
 * MAX_USER_NAME_BYTES) and a number: some 30 MB at worst. Only an admin holding the bearer
 * secret adds entries, so the cap is there for a runaway script, not for strangers.
 */
export const MAX_REVOCATIONS = 100_000;

/** One account's revocation epoch: what is issued to or verified for it before `beforeMs` is refused. */
export interface Revocation {
  readonly account: string;
  /** Milliseconds since the epoch. */
  readonly beforeMs: number;
  /** When the entry is forgotten (ms): no refresh token issued before `beforeMs` lives past it. */
  readonly untilMs: number;
}

/**
 * Where the server keeps revocation epochs. Reads are synchronous: every token request asks,
 * so a shared implementation (a Redis one) keeps a local mirror current (pub/sub) and answers
 * from it; only recording one may wait on the network.
 */
export interface RevocationStore {
  /**
   * Records that refresh tokens, verified logins and reusable access tokens of `account` from
   * before `beforeMs` are no longer honoured. An epoch already recorded that is later stays:
   * a revocation never brings a token back. Resolves to the revocation now in force.
   */
  revoke(account: string, beforeMs: number): Promise<Revocation>;
  /** The epoch in force for `account` (ms since the epoch), or undefined when none is. */
  revokedBefore(account: string): number | undefined;
  /** The revocations in force, oldest recorded first. */
  list(): readonly Revocation[];
  /** Releases connections and timers. */
  close(): Promise<void>;
}

/** Options of createMemoryRevocationStore. */
export interface MemoryRevocationStoreOptions {
  /**
   * How long an entry is kept after its epoch, in ms: the refresh tokens' lifetime. Verified
   * logins and reusable tokens live far shorter, so nothing older than this can still be alive.
   * A function is asked at each use: a reload may lengthen the lifetime (it must never shrink
   * what tokens already issued can live).
   */
  readonly keepMs: number | (() => number);
  /** Left out: MAX_REVOCATIONS. */
  readonly maxEntries?: number;
  /** The clock, in milliseconds since the epoch. Left out: Date.now. */
  readonly now?: () => number;
}

/**
 * Revocations in this process's memory: one server, or replicas that need not share them.
 * When the table is full the entry recorded longest ago leaves, and its epoch becomes a floor
 * for every account: forgetting a revocation must never bring a token back, so the table
 * errs towards refusing more (those users log in again) rather than less.
 */
export function createMemoryRevocationStore(options: MemoryRevocationStoreOptions): RevocationStore {
  const now = options.now ?? Date.now;
  const maxEntries = Math.max(1, options.maxEntries ?? MAX_REVOCATIONS);
  const entries = new Map<string, number>();
  /** The latest epoch of an entry pushed out of a full table: it applies to every account. */
  let floor = Number.NEGATIVE_INFINITY;

  const keepMs = typeof options.keepMs === 'function' ? options.keepMs : () => options.keepMs as number;
  const live = (beforeMs: number, at: number) => beforeMs + keepMs() > at;
  const sweep = (at: number) => {
    for (const [account, beforeMs] of entries) if (!live(beforeMs, at)) entries.delete(account);
    if (!live(floor, at)) floor = Number.NEGATIVE_INFINITY;
  };
  const revokedBefore = (account: string): number | undefined => {
    const at = now();
    let epoch = entries.get(account);
    if (epoch !== undefined && !live(epoch, at)) {
      entries.delete(account);
      epoch = undefined;
    }
    const floorNow = live(floor, at) ? floor : undefined;
    if (epoch === undefined) return floorNow;
    return floorNow === undefined ? epoch : Math.max(epoch, floorNow);
  };

  return {
    async revoke(account, beforeMs) {
      const at = now();
      // Revocations are rare and come from an admin: a full scan each keeps the table exact.
      sweep(at);
      const epoch = Math.max(beforeMs, revokedBefore(account) ?? Number.NEGATIVE_INFINITY);
      entries.delete(account);
      while (entries.size >= maxEntries) {
        const oldest = entries.entries().next();
        if (oldest.done) break;
        entries.delete(oldest.value[0]);
        floor = Math.max(floor, oldest.value[1]);
      }
      if (live(epoch, at)) entries.set(account, epoch);
      return { account, beforeMs: epoch, untilMs: epoch + keepMs() };
    },
    revokedBefore,
    list() {
      sweep(now());
      return [...entries].map(([account, beforeMs]) => ({
        account,
        beforeMs,
        untilMs: beforeMs + keepMs(),
      }));
    },
    async close() {
      entries.clear();
    },
  };
}
