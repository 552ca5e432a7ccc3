/**
 * How long a replaced generation may keep serving the requests that began on it before its
 * resources (directory connections, OIDC key caches, ext_auth programs) are closed anyway: past
 * the server's whole-request timeout (REQUEST_TIMEOUT_MS, 30 s), plus a check that started late.
 */
export const RETIRE_GRACE_MS = 60_000;

/**
 * The current generation of something a reload replaces as a whole, and the requests still
 * using each one. A request `enter`s the generation current when it arrives and `leave`s it when
 * it is answered; `swap` makes a new one current at once, and `drained` says when the old one
 * has no request left, so it can be closed without cutting one off.
 */
export class Generations<T extends object> {
  #current: T;
  readonly #active = new Map<T, number>();
  readonly #waiting = new Map<T, () => void>();

  constructor(first: T) {
    this.#current = first;
  }

  get current(): T {
    return this.#current;
  }

  /** The current generation, held until `leave` is called (exactly once). */
  enter(): { readonly generation: T; readonly leave: () => void } {
    const generation = this.#current;
    this.#active.set(generation, (this.#active.get(generation) ?? 0) + 1);
    let left = false;
    return {
      generation,
      leave: () => {
        if (left) return;
        left = true;
        const n = (this.#active.get(generation) ?? 1) - 1;
        if (n > 0) {
          this.#active.set(generation, n);
          return;
        }
        this.#active.delete(generation);
        const wake = this.#waiting.get(generation);
        if (wake !== undefined) {
          this.#waiting.delete(generation);
          wake();
        }
      },
    };
  }

  /** Requests in `generation` now. */
  active(generation: T): number {
    return this.#active.get(generation) ?? 0;
  }

  /** Makes `next` current for every request from now on; returns the one it replaced. */
  swap(next: T): T {
    const old = this.#current;
    this.#current = next;
    return old;
  }

  /**
   * Resolves once no request uses `generation` any more, or after `graceMs` at the latest
   * (true: drained, false: the grace ran out).
   */
  drained(generation: T, graceMs: number = RETIRE_GRACE_MS): Promise<boolean> {
    if (this.active(generation) === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(generation);
        resolve(false);
      }, graceMs);
      timer.unref();
      this.#waiting.set(generation, () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }
}
