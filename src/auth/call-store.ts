/** A value, or a promise of it: a store may answer at once (memory, a file) or later (Redis, a database). */
export type MaybePromise<T> = T | Promise<T>;

/** The store method that failed, as `onStoreError` is told. */
export type StoreOperation =
  | 'keySalt'
  | 'hasTokens'
  | 'loadToken'
  | 'saveToken'
  | 'loadChallenge'
  | 'saveChallenge'
  | 'forgetChallenge'
  | 'loadScopeNames'
  | 'saveScopeNames'
  | 'loadLoopbackScheme'
  | 'saveLoopbackScheme';

/**
 * Told when a token or challenge store throws or rejects. The request goes on without the store
 * (a failed read is a miss, a failed write is not kept): a cache must never fail a request that
 * can do without it. The error is the store's own and may say anything, so it is handed over
 * as it is, never written to a trace.
 */
export type OnStoreError = (error: unknown, operation: StoreOperation) => void;

/**
 * Calls a store method and settles with its answer, or with undefined once it threw or rejected
 * (then `onError` is told). Never rejects.
 */
export async function callStore<T>(
  operation: StoreOperation,
  call: () => MaybePromise<T>,
  onError: OnStoreError | undefined,
): Promise<T | undefined> {
  try {
    return await call();
  } catch (error) {
    try {
      onError?.(error, operation);
    } catch {
      // A handler that throws must not turn a cache miss into a failed request either.
    }
    return undefined;
  }
}
