import { describe, expect, it } from 'vitest';
import { UserBackoff } from './user-backoff.js';

function setup(options: Partial<{ freeFailures: number; maxSeconds: number; maxEntries: number }> = {}) {
  const clock = { now: 1_700_000_000_000 };
  const backoff = new UserBackoff({
    freeFailures: options.freeFailures ?? 3,
    quietSeconds: 300,
    maxSeconds: options.maxSeconds ?? 60,
    maxEntries: options.maxEntries ?? 1000,
    now: () => clock.now,
  });
  return { clock, backoff };
}

describe('UserBackoff', () => {
  it('lets the free failures pass, then doubles the wait from 1 s up to the cap', () => {
    const { clock, backoff } = setup();
    const waits: number[] = [];
    for (let i = 0; i < 10; i++) {
      backoff.recordFailure('alice');
      waits.push(backoff.retryAfter('alice'));
      clock.now += backoff.retryAfter('alice') * 1000;
    }
    expect(waits).toEqual([0, 0, 0, 1, 2, 4, 8, 16, 32, 60]);
  });

  it('counts Retry-After down and ends the back-off on time', () => {
    const { clock, backoff } = setup({ freeFailures: 1 });
    for (let i = 0; i < 4; i++) backoff.recordFailure('alice');
    expect(backoff.retryAfter('alice')).toBe(4);
    clock.now += 2500;
    expect(backoff.retryAfter('alice')).toBe(2);
    clock.now += 1500;
    expect(backoff.retryAfter('alice')).toBe(0);
  });

  it('keeps users apart and forgets a user after the quiet time', () => {
    const { clock, backoff } = setup({ freeFailures: 1 });
    backoff.recordFailure('alice');
    backoff.recordFailure('alice');
    expect(backoff.retryAfter('alice')).toBe(1);
    expect(backoff.retryAfter('bob')).toBe(0);
    clock.now += 1000 + 300_000;
    expect(backoff.retryAfter('alice')).toBe(0);
    backoff.sweep();
    expect(backoff.size).toBe(0);
    // The count started over: one free failure again.
    backoff.recordFailure('alice');
    expect(backoff.retryAfter('alice')).toBe(0);
  });

  it('does nothing with 0 free failures', () => {
    const { backoff } = setup({ freeFailures: 0 });
    for (let i = 0; i < 20; i++) backoff.recordFailure('alice');
    expect(backoff.retryAfter('alice')).toBe(0);
    expect(backoff.size).toBe(0);
  });

  it('holds no more users than its cap under a flood of names', () => {
    const { backoff } = setup({ maxEntries: 100 });
    for (let i = 0; i < 5000; i++) backoff.recordFailure(`name-${i}`);
    expect(backoff.size).toBe(100);
  });

  it('after a reload lowers the cap, a back-off in progress waits no longer than the new cap', () => {
    const { clock, backoff } = setup({ freeFailures: 1, maxSeconds: 3600 });
    for (let i = 0; i < 20; i++) backoff.recordFailure('alice');
    expect(backoff.retryAfter('alice')).toBe(3600);
    backoff.setLimits({ freeFailures: 1, quietSeconds: 300, maxSeconds: 60 });
    expect(backoff.retryAfter('alice')).toBe(60);
    clock.now += 60_000;
    expect(backoff.retryAfter('alice')).toBe(0);
  });
});
