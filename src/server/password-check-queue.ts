/** The bounds of a PasswordCheckQueue; serve.yml's `limits` sets them. */
export interface PasswordCheckQueueOptions {
  /** Checks that run at once. */
  readonly concurrency: number;
  /** Checks that may wait for a turn; past this a new one is refused as `busy`. */
  readonly maxWaiting: number;
  /** Checks one address may have running or waiting; past this it is refused as `address`. */
  readonly perAddress: number;
}

/** A check let in (its result to come) or refused at once, and why. */
export type Admission<T> =
  | { readonly refused: 'busy' | 'address' }
  | { readonly refused?: undefined; readonly result: Promise<T> };

/** What the password check queue holds now and has refused since start. */
export interface PasswordCheckQueueStats {
  readonly running: number;
  readonly waiting: number;
  /** Checks refused since start, for being too many (`busy`) or too many from one address. */
  readonly refusedBusy: number;
  readonly refusedAddress: number;
}

interface Waiter {
  readonly start: () => void;
}

/**
 * Bounds the bcrypt work that clients can make the server do. Without a bound every request is
 * a bcrypt check handed to libuv's thread pool, whose queue has no limit and no order a server
 * can influence: a flood of unknown names makes a real user's login wait seconds behind it. Here
 * at most `concurrency` run, at most `maxWaiting` wait, and a full queue is refused at once so
 * the client can come back (RFC 9110 §15.6.4: 503 with Retry-After).
 *
 * Preferred checks (from addresses with a recent successful login) go first and may wait in a
 * second `maxWaiting` of their own: strangers filling the queue do not lock out the users who
 * were working before they came.
 */
export class PasswordCheckQueue {
  #options: PasswordCheckQueueOptions;
  readonly #preferred: Waiter[] = [];
  readonly #others: Waiter[] = [];
  readonly #perAddress = new Map<string, number>();
  #running = 0;
  #refusedBusy = 0;
  #refusedAddress = 0;

  constructor(options: PasswordCheckQueueOptions) {
    this.#options = options;
  }

  stats(): PasswordCheckQueueStats {
    return {
      running: this.#running,
      waiting: this.#preferred.length + this.#others.length,
      refusedBusy: this.#refusedBusy,
      refusedAddress: this.#refusedAddress,
    };
  }

  /** Runs `task` now or later, or refuses it at once. */
  run<T>(addressKey: string, preferred: boolean, task: () => Promise<T>): Admission<T> {
    const held = this.#perAddress.get(addressKey) ?? 0;
    if (held >= this.#options.perAddress) {
      this.#refusedAddress++;
      return { refused: 'address' };
    }
    const free = this.#running < this.#options.concurrency;
    const line = preferred ? this.#preferred : this.#others;
    if (!free && line.length >= this.#options.maxWaiting) {
      this.#refusedBusy++;
      return { refused: 'busy' };
    }
    this.#perAddress.set(addressKey, held + 1);
    const result = new Promise<T>((resolve, reject) => {
      const start = () => {
        this.#running++;
        Promise.resolve()
          .then(task)
          .then(resolve, reject)
          .finally(() => {
            this.#running--;
            const left = (this.#perAddress.get(addressKey) ?? 1) - 1;
            if (left <= 0) this.#perAddress.delete(addressKey);
            else this.#perAddress.set(addressKey, left);
            this.#next();
          });
      };
      if (free) start();
      else line.push({ start });
    });
    return { result };
  }

  /**
   * New bounds (a config reload). Checks already running or waiting keep their place; more
   * concurrency starts waiting ones now.
   */
  setLimits(options: PasswordCheckQueueOptions): void {
    this.#options = options;
    while (this.#running < this.#options.concurrency && this.#preferred.length + this.#others.length > 0) {
      this.#next();
    }
  }

  #next(): void {
    if (this.#running >= this.#options.concurrency) return;
    const waiter = this.#preferred.shift() ?? this.#others.shift();
    waiter?.start();
  }
}
