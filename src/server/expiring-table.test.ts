import { describe, expect, it } from 'vitest';
import { ExpiringTable } from './expiring-table.js';

describe('ExpiringTable', () => {
  it('returns a value until it expires, and then drops it', () => {
    let now = 0;
    const table = new ExpiringTable<number>(10, () => now);
    table.set('a', 1, 100);
    now = 99;
    expect(table.get('a')).toBe(1);
    now = 100;
    expect(table.get('a')).toBeUndefined();
    expect(table.size).toBe(0);
  });

  it('never holds more than its cap, dropping the entry written longest ago', () => {
    const table = new ExpiringTable<number>(3, () => 0);
    table.set('a', 1, 1000);
    table.set('b', 2, 1000);
    table.set('c', 3, 1000);
    // Writing `a` again makes it the newest: `b` goes next.
    table.set('a', 11, 1000);
    table.set('d', 4, 1000);
    expect(table.size).toBe(3);
    expect(table.get('b')).toBeUndefined();
    expect([table.get('a'), table.get('c'), table.get('d')]).toEqual([11, 3, 4]);
    for (let i = 0; i < 10_000; i++) table.set(`k${i}`, i, 1000);
    expect(table.size).toBe(3);
  });

  it('drops every expired entry on sweep(), whatever its position', () => {
    let now = 0;
    const table = new ExpiringTable<number>(10, () => now);
    table.set('late', 1, 500);
    table.set('early', 2, 100);
    table.set('never', 3, 10_000);
    now = 600;
    expect(table.sweep()).toBe(2);
    expect(table.size).toBe(1);
    expect(table.get('never')).toBe(3);
  });
});
