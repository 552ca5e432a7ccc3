import { describe, expect, expectTypeOf, it, vi } from 'vitest';
import { isRegauthError, RegauthError, type RegauthErrorCode } from './regauth-error.js';

describe('RegauthError', () => {
  it('is recognised by instanceof and isRegauthError even when made by another copy of the module', async () => {
    // A second, independent copy of the module, as the CLI's separate command bundles hold.
    vi.resetModules();
    const copy = await import('./regauth-error.js');
    expect(copy.RegauthError).not.toBe(RegauthError);
    const foreign = new copy.RegauthError('ERR_USAGE', 'bad flag');
    expect(foreign instanceof RegauthError).toBe(true);
    expect(isRegauthError(foreign, 'ERR_USAGE')).toBe(true);
    expect(isRegauthError(foreign, 'ERR_DENIED')).toBe(false);
  });

  it('is not claimed by plain errors or look-alikes without the mark', () => {
    const lookalike = Object.assign(new Error('x'), { name: 'RegauthError', code: 'ERR_USAGE' });
    expect(lookalike instanceof RegauthError).toBe(false);
    expect(isRegauthError(lookalike)).toBe(false);
    expect(isRegauthError(null)).toBe(false);
  });

  it('keeps the status and the registry errors it was given', () => {
    const err = new RegauthError('ERR_DENIED', 'no', { status: 401, registryErrors: [{ code: 'DENIED' }] });
    expect(err.status).toBe(401);
    expect(err.registryErrors).toEqual([{ code: 'DENIED' }]);
    expect(err.code).toBe('ERR_DENIED');
  });

  it('shows control characters in its message as visible escapes, keeping newlines', () => {
    const err = new RegauthError('ERR_REGISTRY', 'registry said: \u001b]0;title\u0007\r\u009b2K\nnext');
    expect(err.message).toBe('registry said: \\x1b]0;title\\x07\\r\\x9b2K\nnext');
  });
});

describe('isRegauthError narrowing', () => {
  it('narrows the code to the one asked for', () => {
    const caught: unknown = new RegauthError('ERR_DENIED', 'no', { status: 403 });
    if (isRegauthError(caught, 'ERR_DENIED')) {
      expectTypeOf(caught).toEqualTypeOf<RegauthError<'ERR_DENIED'>>();
      expectTypeOf(caught.code).toEqualTypeOf<'ERR_DENIED'>();
      expect(caught.code).toBe('ERR_DENIED');
    } else {
      expect.unreachable('a RegauthError with that code');
    }
    const other: unknown = new RegauthError('ERR_USAGE', 'x');
    if (isRegauthError(other)) {
      expectTypeOf(other.code).toEqualTypeOf<RegauthErrorCode>();
    }
    expect(isRegauthError(caught, 'ERR_UNAUTHORIZED')).toBe(false);
  });

  it('takes only codes of the closed union', () => {
    // @ts-expect-error not a regauth code
    isRegauthError(new Error('x'), 'ERR_NOT_A_CODE');
    // @ts-expect-error not a regauth code
    new RegauthError('ERR_NOT_A_CODE', 'x');
    expectTypeOf(new RegauthError('ERR_USAGE', 'x').code).toEqualTypeOf<'ERR_USAGE'>();
    expectTypeOf<RegauthError['code']>().toEqualTypeOf<RegauthErrorCode>();
  });
});
