import { describe, expect, it } from 'vitest';
import { AddressBudget } from './address-budget.js';

function setup(failures = 10, windowSeconds = 100) {
  const clock = { now: 1_700_000_000_000 };
  const budget = new AddressBudget({ failures, windowSeconds, maxEntries: 1000, now: () => clock.now });
  return { clock, budget };
}

describe('AddressBudget', () => {
  it('lets an address fail its budget, then makes it wait for one failure to drain', () => {
    const { clock, budget } = setup();
    for (let i = 0; i < 9; i++) budget.charge('192.0.2.1');
    expect(budget.retryAfter('192.0.2.1')).toBe(0);
    budget.charge('192.0.2.1');
    // 10 failures per 100 s drain one every 10 s.
    expect(budget.retryAfter('192.0.2.1')).toBe(10);
    expect(budget.retryAfter('192.0.2.2')).toBe(0);
    clock.now += 10_000;
    expect(budget.retryAfter('192.0.2.1')).toBe(0);
    budget.charge('192.0.2.1');
    expect(budget.retryAfter('192.0.2.1')).toBe(10);
  });

  it('refills completely within the window and then forgets the address', () => {
    const { clock, budget } = setup();
    for (let i = 0; i < 30; i++) budget.charge('192.0.2.1');
    clock.now += 100_000;
    budget.sweep();
    expect(budget.size).toBe(0);
    for (let i = 0; i < 9; i++) budget.charge('192.0.2.1');
    expect(budget.retryAfter('192.0.2.1')).toBe(0);
  });

  it('does nothing with a budget of 0', () => {
    const { budget } = setup(0);
    for (let i = 0; i < 100; i++) budget.charge('192.0.2.1');
    expect(budget.retryAfter('192.0.2.1')).toBe(0);
    expect(budget.size).toBe(0);
  });

  it('after a reload lowers the budget, a fuller bucket counts as the new full budget', () => {
    const { clock, budget } = setup(100, 3600);
    for (let i = 0; i < 100; i++) budget.charge('192.0.2.1');
    budget.setLimits({ failures: 2, windowSeconds: 3600 });
    // 2 failures per hour drain one every 1800 s: one to wait for, not 99 (49.5 hours).
    // (1800 or 1801: 2 / 3_600_000 is not exact in floating point.)
    expect(budget.retryAfter('192.0.2.1')).toBeGreaterThanOrEqual(1800);
    expect(budget.retryAfter('192.0.2.1')).toBeLessThanOrEqual(1801);
    clock.now += 1_801_000;
    expect(budget.retryAfter('192.0.2.1')).toBe(0);
    budget.charge('192.0.2.1');
    expect(budget.retryAfter('192.0.2.1')).toBeLessThanOrEqual(1801);
  });
});
