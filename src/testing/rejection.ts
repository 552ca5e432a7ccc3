import { expect } from 'vitest';
import { RegauthError } from '../errors/regauth-error.js';

/** Test-only: the RegauthError a promise rejects with; fails the test if it resolves or throws anything else. */
export async function rejection(promise: Promise<unknown>): Promise<RegauthError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(RegauthError);
    return err as RegauthError;
  }
  throw new Error('expected a RegauthError, but the promise resolved');
}
