import { describe, expect, it } from 'vitest';
import type { StartUpTiming } from '../src/cli/start-up-timing.js';
import {
  breakdownOf,
  floorBreakdownOf,
  formatBreakdown,
  type OwnCostBreakdown,
  parseTimingLine,
  type TimedRun,
} from './own-cost.js';

function run(totalMs: number, floorMs: number, loads: Record<string, number>, idleMs: number): TimedRun {
  const timing: StartUpTiming = { node: 'v20.20.2', binStartMs: 30, loads, idleMs, exitMs: totalMs - 5 };
  return { totalMs, floorMs, timing };
}

describe('breakdownOf', () => {
  it('takes each difference run by run, then the median', () => {
    const b = breakdownOf([
      run(100, 40, { 'main.cjs': 2, 'program.cjs': 6, 'commands/manifest.cjs': 10 }, 22),
      run(130, 60, { 'main.cjs': 3, 'program.cjs': 7, 'commands/manifest.cjs': 12 }, 25),
      run(90, 42, { 'main.cjs': 1, 'program.cjs': 5, 'commands/manifest.cjs': 8 }, 20),
    ]);
    expect(b).toEqual({
      runs: 3,
      totalMs: 100,
      totalsMs: [100, 130, 90],
      floorMs: 42,
      // 60, 70, 48
      aboveFloorMs: 60,
      // 18, 22, 14
      loadMs: 18,
      loads: { 'main.cjs': 2, 'program.cjs': 6, 'commands/manifest.cjs': 10 },
      waitMs: 22,
      // 60-18-22=20, 70-22-25=23, 48-14-20=14
      restMs: 20,
      // 38, 45, 28
      ownMs: 38,
    });
  });

  it('counts a bundle missing from a run as 0 ms there', () => {
    const b = breakdownOf([
      run(50, 40, { 'main.cjs': 2 }, 0),
      run(80, 40, { 'main.cjs': 2, 'program.cjs': 8 }, 0),
    ]);
    expect(b.loads).toEqual({ 'main.cjs': 2, 'program.cjs': 4 });
    expect(b.loadMs).toBe(6);
  });
});

describe('floorBreakdownOf', () => {
  it('takes the time above node -e 0 run by run, then the median', () => {
    const b = floorBreakdownOf([
      { totalMs: 130, floorMs: 100 },
      { totalMs: 150, floorMs: 80 },
      { totalMs: 120, floorMs: 90 },
    ]);
    // 30, 70, 30: the median of the differences, not 130 − 90 (the difference of the medians).
    expect(b).toEqual({ runs: 3, totalMs: 130, totalsMs: [130, 150, 120], floorMs: 90, aboveFloorMs: 30 });
  });
});

describe('parseTimingLine', () => {
  it("finds the CLI's line among the others on stderr", () => {
    const stderr =
      'regauth: warning: something\nregauth-timing {"node":"v24.1.0","binStartMs":20,"loads":{"main.cjs":1.5},"idleMs":3,"exitMs":40}\n';
    expect(parseTimingLine(stderr)).toEqual({
      node: 'v24.1.0',
      binStartMs: 20,
      loads: { 'main.cjs': 1.5 },
      idleMs: 3,
      exitMs: 40,
    });
  });

  it('says so when the line is missing', () => {
    expect(() => parseTimingLine('regauth: error: x\n')).toThrow(/no regauth-timing line/);
  });
});

describe('formatBreakdown', () => {
  const path = (own: number) => ({
    runs: 5,
    totalMs: 100,
    totalsMs: [100],
    floorMs: 40,
    aboveFloorMs: 60,
    loadMs: 18.25,
    loads: { 'main.cjs': 2, 'commands/manifest.cjs': 10 },
    waitMs: 22,
    restMs: 20,
    ownMs: own,
  });
  const b: OwnCostBreakdown = { node: 'v20.20.2', cold: path(38), warm: path(12.04) };

  it('gives a markdown row per path and a line per bundle set', () => {
    const lines = formatBreakdown([b, { ...b, node: 'v24.11.0' }]);
    expect(lines.slice(0, 2)).toEqual([
      '| runtime | regauth manifest | total | node -e 0 | above it | loading code | waiting (network, disk) | the rest | own cost |',
      '|---|---|---|---|---|---|---|---|---|',
    ]);
    expect(lines[2]).toBe(
      '| Node v20.20.2 | nothing cached | 100.0 ms | 40.0 ms | 60.0 ms | 18.3 ms | 22.0 ms | 20.0 ms | 38.0 ms |',
    );
    expect(lines[3]).toBe(
      '| Node v20.20.2 | token cached | 100.0 ms | 40.0 ms | 60.0 ms | 18.3 ms | 22.0 ms | 20.0 ms | 12.0 ms |',
    );
    expect(lines[5]).toMatch(/^\| Node v24\.11\.0 \| token cached \|/);
    expect(lines).toContain(
      '- Node v24.11.0, nothing cached: loading code is main.cjs 2.0 ms, commands/manifest.cjs 10.0 ms.',
    );
  });

  it('takes one breakdown alone', () => {
    expect(formatBreakdown(b).filter((l) => l.startsWith('| Node'))).toHaveLength(2);
  });
});
