import { describe, expect, it } from 'vitest';
import { LoginLimiter } from './login-limiter.js';

/** A clock the test moves by hand, in milliseconds. */
function fakeClock(start = 1_700_000_000_000) {
  const clock = {
    now: start,
    advance(ms: number): void {
      clock.now += ms;
    },
  };
  return { clock, now: () => clock.now };
}

function fail(limiter: LoginLimiter, times: number, user = 'alice', address = '10.0.0.1'): void {
  for (let i = 0; i < times; i++) limiter.recordFailure(user, address);
}

describe('LoginLimiter', () => {
  it('locks a user and address pair after the limit of failures, not before', () => {
    const { now } = fakeClock();
    const limiter = new LoginLimiter(3, 60, now);
    fail(limiter, 2);
    expect(limiter.retryAfter('alice', '10.0.0.1')).toBe(0);
    fail(limiter, 1);
    expect(limiter.retryAfter('alice', '10.0.0.1')).toBe(60);
  });

  it('leaves other addresses and other users alone', () => {
    const { now } = fakeClock();
    const limiter = new LoginLimiter(3, 60, now);
    fail(limiter, 3);
    expect(limiter.retryAfter('alice', '10.0.0.2')).toBe(0);
    expect(limiter.retryAfter('bob', '10.0.0.1')).toBe(0);
    expect(limiter.retryAfter('alice', '10.0.0.1')).toBeGreaterThan(0);
  });

  it('does not mix up pairs whose user and address run together', () => {
    const { now } = fakeClock();
    const limiter = new LoginLimiter(1, 60, now);
    limiter.recordFailure('b', 'a');
    expect(limiter.retryAfter('', 'ab')).toBe(0);
    expect(limiter.retryAfter('ab', '')).toBe(0);
  });

  it('counts Retry-After down and unlocks when the window has passed', () => {
    const { clock, now } = fakeClock();
    const limiter = new LoginLimiter(2, 60, now);
    fail(limiter, 2);
    expect(limiter.retryAfter('alice', '10.0.0.1')).toBe(60);
    clock.advance(20_000);
    expect(limiter.retryAfter('alice', '10.0.0.1')).toBe(40);
    clock.advance(500);
    // Rounded up: never tell a client to come back before it may.
    expect(limiter.retryAfter('alice', '10.0.0.1')).toBe(40);
    clock.advance(39_000);
    expect(limiter.retryAfter('alice', '10.0.0.1')).toBe(1);
    clock.advance(499);
    expect(limiter.retryAfter('alice', '10.0.0.1')).toBe(1);
    clock.advance(1);
    expect(limiter.retryAfter('alice', '10.0.0.1')).toBe(0);
  });

  it('keeps the lock until the oldest of the last failures leaves the window', () => {
    const { clock, now } = fakeClock();
    const limiter = new LoginLimiter(2, 60, now);
    fail(limiter, 1);
    clock.advance(30_000);
    fail(limiter, 1);
    expect(limiter.retryAfter('alice', '10.0.0.1')).toBe(30);
    clock.advance(30_000);
    // The first failure has left the window; one failure is below the limit.
    expect(limiter.retryAfter('alice', '10.0.0.1')).toBe(0);
    fail(limiter, 1);
    expect(limiter.retryAfter('alice', '10.0.0.1')).toBe(30);
  });

  it('forgets failures older than the window', () => {
    const { clock, now } = fakeClock();
    const limiter = new LoginLimiter(3, 60, now);
    fail(limiter, 2);
    clock.advance(60_000);
    fail(limiter, 2);
    expect(limiter.retryAfter('alice', '10.0.0.1')).toBe(0);
  });

  it('measures a lock from the latest failures when failures keep coming', () => {
    const { clock, now } = fakeClock();
    const limiter = new LoginLimiter(2, 60, now);
    fail(limiter, 2);
    clock.advance(50_000);
    fail(limiter, 2);
    expect(limiter.retryAfter('alice', '10.0.0.1')).toBe(60);
  });

  it('clears the failures of a pair on success', () => {
    const { now } = fakeClock();
    const limiter = new LoginLimiter(3, 60, now);
    fail(limiter, 2);
    fail(limiter, 2, 'alice', '10.0.0.2');
    limiter.recordSuccess('alice', '10.0.0.1');
    fail(limiter, 2);
    expect(limiter.retryAfter('alice', '10.0.0.1')).toBe(0);
    fail(limiter, 1);
    expect(limiter.retryAfter('alice', '10.0.0.1')).toBe(60);
    // A success from one address says nothing about another.
    fail(limiter, 1, 'alice', '10.0.0.2');
    expect(limiter.retryAfter('alice', '10.0.0.2')).toBe(60);
  });

  it('never locks anyone when the limit is 0', () => {
    const { now } = fakeClock();
    const limiter = new LoginLimiter(0, 60, now);
    fail(limiter, 100);
    expect(limiter.retryAfter('alice', '10.0.0.1')).toBe(0);
  });

  it('holds at most maxKeys pairs, dropping the oldest when full', () => {
    const { now } = fakeClock();
    const limiter = new LoginLimiter(1, 60, now, 2);
    limiter.recordFailure('a', '10.0.0.1');
    limiter.recordFailure('b', '10.0.0.1');
    limiter.recordFailure('c', '10.0.0.1');
    expect(limiter.retryAfter('a', '10.0.0.1')).toBe(0);
    expect(limiter.retryAfter('b', '10.0.0.1')).toBe(60);
    expect(limiter.retryAfter('c', '10.0.0.1')).toBe(60);
  });

  it('makes room by dropping expired pairs before live ones', () => {
    const { clock, now } = fakeClock();
    const limiter = new LoginLimiter(1, 60, now, 2);
    limiter.recordFailure('b', '10.0.0.1');
    clock.advance(1);
    limiter.recordFailure('a', '10.0.0.1');
    clock.advance(39_999);
    limiter.recordFailure('b', '10.0.0.1');
    clock.advance(21_000);
    // a has expired, b (the older key) is still locked: c takes a's place, not b's.
    limiter.recordFailure('c', '10.0.0.1');
    expect(limiter.retryAfter('b', '10.0.0.1')).toBe(39);
    expect(limiter.retryAfter('c', '10.0.0.1')).toBe(60);
  });

  it('lets a pair already counted fail again when the table is full', () => {
    const { now } = fakeClock();
    const limiter = new LoginLimiter(2, 60, now, 2);
    fail(limiter, 1, 'a');
    fail(limiter, 1, 'b');
    fail(limiter, 1, 'a');
    expect(limiter.retryAfter('a', '10.0.0.1')).toBe(60);
    fail(limiter, 1, 'b');
    expect(limiter.retryAfter('b', '10.0.0.1')).toBe(60);
  });
});
