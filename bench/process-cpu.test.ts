import { describe, expect, it } from 'vitest';
import { parseProcStatCpu, processCpuSeconds } from './process-cpu.js';

describe('parseProcStatCpu', () => {
  it('reads utime and stime after a command name holding spaces and parentheses', () => {
    const line =
      '4242 (node (x) y) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 11 0 999 1000000 5000 18446744073709551615\n';
    expect(parseProcStatCpu(line, 100)).toEqual({ user: 2.5, system: 0.75 });
  });

  it('refuses text that is no stat line', () => {
    expect(() => parseProcStatCpu('nothing here', 100)).toThrow(/not a \/proc/);
  });
});

describe('processCpuSeconds', () => {
  it('grows by about the CPU time this process spends', () => {
    const before = processCpuSeconds(process.pid);
    const started = process.cpuUsage();
    let x = 0;
    while ((process.cpuUsage(started).user + process.cpuUsage(started).system) / 1e6 < 0.3)
      x += Math.sqrt(x + 1);
    const spent = processCpuSeconds(process.pid) - before;
    // Clock ticks are 10 ms: generous bounds around the 0.3 s spent.
    expect(spent).toBeGreaterThan(0.2);
    expect(spent).toBeLessThan(5);
    expect(x).toBeGreaterThan(0);
  });
});
