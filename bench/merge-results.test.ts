import { describe, expect, it } from 'vitest';
import { mergeResults, type ScenarioResult, sectionLines, summaryRow } from './merge-results.js';

const scenario = (id: number, verdict: string): ScenarioResult => ({
  id,
  title: `scenario ${id}`,
  target: 'a target',
  verdict,
  met: true,
  rows: [
    {
      name: 'regauth',
      command: 'regauth x',
      ms: { median: 2, min: 1, max: 3, n: 3 },
      requests: 1,
      rssMb: 0,
      bytesUp: 0,
    },
  ],
  notes: `notes of ${id}`,
});

/** A file as a whole run writes it. */
function fullRun(results: readonly ScenarioResult[]): string {
  return `${[
    '# Benchmark results',
    '',
    'Measured by `npm run bench` on 2026-11-26 21:40 UTC, one run on one machine:',
    '- CPU: test',
    '- The machine is shared and noisy: read the ratios, not the absolute times.',
    '',
    '## Summary',
    '',
    '| # | scenario | target | result | met |',
    '|---|---|---|---|---|',
    ...results.map(summaryRow),
    '',
    ...results.flatMap(sectionLines),
  ].join('\n')}\n`;
}

const run = { measuredOn: '2026-11-30 16:00', command: 'npm run bench -- --only=10' };

describe('mergeResults', () => {
  it('adds a new scenario after the others and keeps their rows and sections as they were', () => {
    const old = fullRun([scenario(1, 'old one'), scenario(9, 'old nine')]);
    const merged = mergeResults(old, [scenario(10, 'new ten')], run);
    const rows = merged.split('\n').filter((l) => /^\| \d+ \|/.test(l));
    expect(rows).toEqual([
      summaryRow(scenario(1, 'old one')),
      summaryRow(scenario(9, 'old nine')),
      summaryRow(scenario(10, 'new ten')),
    ]);
    expect(merged.indexOf('## 1. ')).toBeLessThan(merged.indexOf('## 9. '));
    expect(merged.indexOf('## 9. ')).toBeLessThan(merged.indexOf('## 10. '));
    expect(merged).toContain(sectionLines(scenario(1, 'old one')).join('\n').trimEnd());
    expect(merged).toContain('notes of 10');
    // A whole run with the same scenarios reads the same, but for the note in the header.
    expect(merged.replace(/^- Scenario 10: .*\n/m, '')).toBe(
      fullRun([scenario(1, 'old one'), scenario(9, 'old nine'), scenario(10, 'new ten')]),
    );
  });

  it('replaces a scenario measured again, and says so once in the header however often it runs', () => {
    const old = fullRun([scenario(1, 'old one'), scenario(2, 'old two'), scenario(3, 'old three')]);
    const once = mergeResults(old, [scenario(2, 'new two')], {
      ...run,
      command: 'npm run bench -- --only=2',
    });
    const twice = mergeResults(once, [scenario(2, 'newer two')], {
      measuredOn: '2026-11-30 16:30',
      command: 'npm run bench -- --only=2',
    });
    expect(twice).not.toContain('old two');
    expect(twice).not.toContain('new two |');
    expect(twice.match(/newer two/g)).toHaveLength(2); // the summary row and the section's result
    expect(twice).toContain('old one');
    expect(twice).toContain('old three');
    const notes = twice.split('\n').filter((l) => l.startsWith('- Scenario 2:'));
    expect(notes).toEqual([
      '- Scenario 2: measured on its own by `npm run bench -- --only=2` on 2026-11-30 16:30 UTC and merged into this file.',
    ]);
    // The note closes the header's list, before the summary.
    const lines = twice.split('\n');
    expect(lines.indexOf(notes[0] as string)).toBe(lines.indexOf('## Summary') - 2);
  });

  it('writes a whole file when there was none', () => {
    const merged = mergeResults('', [scenario(10, 'new ten')], run);
    expect(merged).toContain(summaryRow(scenario(10, 'new ten')));
    expect(merged).toContain('## 10. scenario 10');
  });
});

describe('summaryRow', () => {
  it('says met per runtime when the scenario is judged on each one', () => {
    const r = {
      ...scenario(3, 'Node 20.20.2: 1.02×; Node 24.21.0: 0.61×'),
      met: false,
      metBy: [
        { runtime: 'Node 20.20.2', met: false },
        { runtime: 'Node 24.21.0', met: true },
      ],
    };
    expect(summaryRow(r)).toBe(
      '| 3 | scenario 3 | a target | Node 20.20.2: 1.02×; Node 24.21.0: 0.61× | **no** (Node 20.20.2), yes (Node 24.21.0) |',
    );
    expect(summaryRow({ ...scenario(4, 'v'), met: false })).toBe(
      '| 4 | scenario 4 | a target | v | **no** |',
    );
  });
});

describe('sectionLines', () => {
  it("puts a row's connections in its notes, before its extra text", () => {
    const base = scenario(11, 'v');
    const row = base.rows[0];
    if (row === undefined) throw new Error('no row');
    const lines = sectionLines({ ...base, rows: [{ ...row, connections: 2, extra: 'x' }, row] });
    expect(lines).toContain('| regauth | 2.0 ms | 1.0 ms | 3.0 ms | 1 | – | – | 2 connection(s); x |');
    expect(lines).toContain('| regauth | 2.0 ms | 1.0 ms | 3.0 ms | 1 | – | – |  |');
  });
});
