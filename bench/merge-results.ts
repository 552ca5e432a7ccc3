import type { Stats } from './measure.js';

/** RESULTS.md: a scenario's summary row and section, and merging one run's into an earlier file. */

export const fmtMs = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);

export interface Row {
  readonly name: string;
  readonly command: string;
  readonly ms: Stats;
  readonly requests: number;
  readonly rssMb: number;
  readonly bytesUp: number;
  /** TCP connections opened per run (median), where the scenario counts them. */
  readonly connections?: number;
  readonly extra?: string;
}

export interface ScenarioResult {
  readonly id: number;
  readonly title: string;
  readonly target: string;
  readonly rows: Row[];
  readonly verdict: string;
  /** Whether every judged target was met (on every runtime in `metBy`). */
  readonly met: boolean;
  /** Per runtime (`Node 24.21.0`), where a scenario is judged on each one apart. */
  readonly metBy?: readonly { readonly runtime: string; readonly met: boolean }[];
  notes?: string;
}

const yesNo = (met: boolean) => (met ? 'yes' : '**no**');

export const summaryRow = (r: ScenarioResult) =>
  `| ${r.id} | ${r.title} | ${r.target} | ${r.verdict} | ${
    r.metBy === undefined ? yesNo(r.met) : r.metBy.map((m) => `${yesNo(m.met)} (${m.runtime})`).join(', ')
  } |`;

export function sectionLines(r: ScenarioResult): string[] {
  const lines = [`## ${r.id}. ${r.title}`, '', `Target: ${r.target}. Result: ${r.verdict}.`, ''];
  lines.push(
    '| tool | median | min | max | requests/op | peak RSS | bytes up | notes |',
    '|---|---|---|---|---|---|---|---|',
  );
  for (const row of r.rows) {
    const notes = [row.connections === undefined ? '' : `${row.connections} connection(s)`, row.extra ?? '']
      .filter(Boolean)
      .join('; ');
    lines.push(
      `| ${row.name} | ${fmtMs(row.ms.median)} | ${fmtMs(row.ms.min)} | ${fmtMs(row.ms.max)} | ${row.requests || '–'} | ${row.rssMb ? `${row.rssMb.toFixed(0)} MB` : '–'} | ${row.bytesUp ? `${(row.bytesUp / 1048576).toFixed(1)} MiB` : '–'} | ${notes} |`,
    );
  }
  lines.push('', 'Commands:', '', ...r.rows.map((row) => `- ${row.name}: \`${row.command}\``), '');
  if (r.notes) lines.push(r.notes, '');
  return lines;
}

/**
 * RESULTS.md with the scenarios of an `--only` run put in place of their earlier rows and
 * sections (or added, in order of number), the rest as the last run wrote it, and a line in the
 * header saying when these were measured on their own.
 */
export function mergeResults(
  old: string,
  fresh: readonly ScenarioResult[],
  run: { readonly measuredOn: string; readonly command: string },
): string {
  const parts = old.split(/\n(?=## )/);
  const ids = fresh.map((r) => r.id);
  const note = `- Scenario ${ids.join(', ')}: measured on its own by \`${run.command}\` on ${run.measuredOn} UTC and merged into this file.`;
  const preamble = (parts[0] ?? '')
    .split('\n')
    .filter((l) => !l.startsWith(`- Scenario ${ids.join(', ')}: measured on its own`));
  const firstBlank = preamble.findIndex((l, i) => i > 0 && l === '' && preamble[i - 1]?.startsWith('- '));
  preamble.splice(firstBlank < 0 ? preamble.length : firstBlank, 0, note);
  const summary =
    parts.find((p) => p.startsWith('## Summary')) ??
    '## Summary\n\n| # | scenario | target | result | met |\n|---|---|---|---|---|\n';
  const rowId = (l: string) => Number(/^\| (\d+) \|/.exec(l)?.[1] ?? Number.NaN);
  const rows = new Map<number, string>();
  for (const l of summary.split('\n')) if (!Number.isNaN(rowId(l))) rows.set(rowId(l), l);
  for (const r of fresh) rows.set(r.id, summaryRow(r));
  const summaryHead = summary.split('\n').filter((l) => l !== '' && Number.isNaN(rowId(l)));
  const sections = new Map<number, string>();
  for (const p of parts) {
    const id = /^## (\d+)\./.exec(p)?.[1];
    if (id !== undefined) sections.set(Number(id), p.replace(/\n+$/, ''));
  }
  for (const r of fresh) sections.set(r.id, sectionLines(r).join('\n').replace(/\n+$/, ''));
  const byId = <T>(m: Map<number, T>) => [...m.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => v);
  return `${[
    preamble.join('\n').replace(/\n+$/, ''),
    [summaryHead[0] ?? '## Summary', '', ...summaryHead.slice(1), ...byId(rows)].join('\n'),
    ...byId(sections),
  ].join('\n\n')}\n\n`; // as a whole run ends it: a blank line after the last section
}
