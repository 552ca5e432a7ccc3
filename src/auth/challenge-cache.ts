import type { Challenge } from './parse-challenge.js';

/** Where challenges learned from registries are kept between processes, by registry origin. */
export interface ChallengeStore {
  loadChallenge(origin: string): Challenge | undefined;
  saveChallenge(origin: string, challenge: Challenge): void;
  /** Drops the challenge kept for an origin: it no longer passes the realm check, or the user logged out. */
  forgetChallenge(origin: string): void;
}

/** Challenge parameters that describe one request, not the registry: never reuse them. */
const PER_REQUEST_PARAMS = new Set(['scope', 'error', 'error_description']);

/**
 * The challenges registries answered with, by origin, in memory and in an optional store; and
 * the requests that are finding one out right now. Callers store only challenges they checked
 * (see checkRealm): what is kept here decides where credentials go.
 */
export class ChallengeCache {
  readonly #memory = new Map<string, Challenge>();
  readonly #discovering = new Map<string, Promise<void>>();
  readonly #store: ChallengeStore | undefined;

  constructor(store?: ChallengeStore) {
    this.#store = store;
  }

  get(origin: string): Challenge | undefined {
    let challenge = this.#memory.get(origin);
    if (!challenge) {
      challenge = this.#store?.loadChallenge(origin);
      if (challenge) this.#memory.set(origin, challenge);
    }
    return challenge;
  }

  /** Keeps what a challenge says about the registry (scheme, realm, service), not its per-request scope or error. */
  learn(origin: string, challenge: Challenge): Challenge {
    const learned: Challenge = {
      scheme: challenge.scheme,
      params: Object.fromEntries(
        Object.entries(challenge.params).filter(([k]) => !PER_REQUEST_PARAMS.has(k)),
      ),
    };
    this.#memory.set(origin, learned);
    this.#store?.saveChallenge(origin, learned);
    return learned;
  }

  forget(origin: string): void {
    this.#memory.delete(origin);
    this.#store?.forgetChallenge(origin);
  }

  /**
   * Requests that start together at a registry not met yet wait for the first one's answer
   * instead of each collecting its own 401: one challenge round trip, then one token fetch.
   * The promise of the request finding out this origin's challenge now, if there is one.
   */
  pending(origin: string): Promise<void> | undefined {
    return this.#discovering.get(origin);
  }

  /**
   * Marks a request as the one finding out an origin's challenge. Returns the function that ends
   * the mark (call it once the answer is in, or the request failed), or undefined when another
   * request holds it already.
   */
  discover(origin: string): (() => void) | undefined {
    if (this.#discovering.has(origin)) return undefined;
    let release: () => void = () => {};
    const pending = new Promise<void>((resolve) => {
      release = () => {
        if (this.#discovering.get(origin) === pending) this.#discovering.delete(origin);
        resolve();
      };
    });
    this.#discovering.set(origin, pending);
    return release;
  }
}
