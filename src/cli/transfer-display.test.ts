import { describe, expect, it } from 'vitest';
import { TransferDisplay } from './transfer-display.js';

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;
const C = `sha256:${'c'.repeat(64)}`;
const D = `sha256:${'d'.repeat(64)}`;
const MiB = 1024 * 1024;

/** Feeds `bytes` to a blob in 100 ms steps at `perSecond`, from `from` (ms); returns the end. */
function flow(display: TransferDisplay, digest: string, perSecond: number, from: number, ms: number): number {
  for (let t = from + 100; t <= from + ms; t += 100) {
    display.apply({ kind: 'blob-bytes', digest, bytes: perSecond / 10 }, t);
  }
  return from + ms;
}

describe('TransferDisplay', () => {
  it("gives each blob its own rate and ETA from its own bytes, and the total's ETA from the bytes left", () => {
    const d = new TransferDisplay(0);
    d.apply({ kind: 'blob-start', digest: A, size: 40 * MiB }, 0);
    d.apply({ kind: 'blob-start', digest: B, size: 40 * MiB }, 0);
    for (let t = 100; t <= 4000; t += 100) {
      d.apply({ kind: 'blob-bytes', digest: A, bytes: MiB / 10 }, t); // 1 MiB/s
      d.apply({ kind: 'blob-bytes', digest: B, bytes: (4 * MiB) / 10 }, t); // 4 MiB/s
    }
    // A: 4 of 40 MiB at 1 MiB/s → 36 s left; B: 16 of 40 MiB at 4 MiB/s → 6 s left.
    expect(d.blobLine(A, 4000, 120)).toMatch(/ 4\.0\/40\.0 MiB +1\.0 MiB\/s +ETA 0:36$/);
    expect(d.blobLine(B, 4000, 120)).toMatch(/ 16\.0\/40\.0 MiB +4\.0 MiB\/s +ETA 0:06$/);
    // Total: 20 of 80 MiB moved at 5 MiB/s → 60 MiB left, 12 s (not the slower blob's 36 s).
    expect(d.totalLine(4000, 120)).toMatch(/^ total +█+░+ +25% +20\.0\/80\.0 MiB +5\.0 MiB\/s +ETA 0:12$/);
  });

  it('counts the bytes a resumed download had on disk as done, but not in its rate', () => {
    const d = new TransferDisplay(0);
    d.apply({ kind: 'blob-start', digest: A, size: 10 * MiB }, 0);
    d.apply({ kind: 'blob-resume', digest: A, offset: 6 * MiB, reason: 'continuing a partial download' }, 0);
    const end = flow(d, A, MiB, 0, 2000);
    // 6 MiB from disk + 2 MiB at 1 MiB/s: 8 of 10 MiB, 2 s left; no "retrying" for a disk resume.
    expect(d.blobLine(A, end, 100)).toMatch(/ 80% +8\.0\/10\.0 MiB +1\.0 MiB\/s +ETA 0:02$/);
    expect(d.totalLine(end, 100)).toMatch(/ 80% +8\.0\/10\.0 MiB +1\.0 MiB\/s +ETA 0:02$/);
  });

  it('counts nothing of a download that starts over because its partial file proved wrong', () => {
    const d = new TransferDisplay(0);
    d.apply({ kind: 'blob-start', digest: A, size: 10 * MiB }, 0);
    d.apply({ kind: 'blob-resume', digest: A, offset: 6 * MiB, reason: 'continuing a partial download' }, 0);
    let end = flow(d, A, MiB, 0, 4000); // 6 held + 4 received: the whole size, but the digest is wrong
    d.apply({ kind: 'blob-resume', digest: A, offset: 0, reason: 'starting over', waitMs: 0 }, end);
    end = flow(d, A, MiB, end, 3000);
    expect(d.blobLine(A, end, 100)).toMatch(/ (29|30)% +3\.0\/10\.0 MiB /);
    expect(d.totalLine(end, 100)).toMatch(/ (29|30)% +3\.0\/10\.0 MiB /);
  });

  it('a stalled blob shows no rate instead of an old one', () => {
    const d = new TransferDisplay(0);
    d.apply({ kind: 'blob-start', digest: A, size: 10 * MiB }, 0);
    const end = flow(d, A, MiB, 0, 2000);
    expect(d.blobLine(A, end, 100)).toMatch(/1\.0 MiB\/s/);
    expect(d.blobLine(A, end + 10_000, 100)).toMatch(/2\.0\/10\.0 MiB +ETA -$/);
  });

  it('shows "retrying in N s (reason)" on the blob\'s line, counting down, until bytes flow again', () => {
    const d = new TransferDisplay(0);
    d.apply({ kind: 'blob-start', digest: A, size: 4 * MiB }, 0);
    const end = flow(d, A, MiB, 0, 1000);
    d.apply(
      {
        kind: 'blob-resume',
        digest: A,
        offset: MiB,
        reason: 'the connection broke (ECONNRESET)',
        waitMs: 3200,
      },
      end,
    );
    expect(d.blobLine(A, end, 100)).toBe(
      ' aaaaaaaaaaaa retrying in 4 s (the connection broke (ECONNRESET)) at 1.0/4.0 MiB',
    );
    expect(d.blobLine(A, end + 1500, 80)).toMatch(/retrying in 2 s \(/);
    expect(d.blobLine(A, end + 4000, 80)).toMatch(/retrying now \(/);
    d.apply({ kind: 'blob-bytes', digest: A, bytes: 1000 }, end + 4100);
    expect(d.blobLine(A, end + 4100, 80)).not.toMatch(/retrying/);
  });

  it('keeps the status column aligned across done, skipped, mounted and running rows', () => {
    const d = new TransferDisplay(0);
    d.apply({ kind: 'blob-start', digest: A, size: 2 * MiB }, 0);
    d.apply({ kind: 'blob-start', digest: B, size: 3 * MiB }, 0);
    d.apply({ kind: 'blob-start', digest: C, size: 5 * MiB }, 0);
    flow(d, A, 2 * MiB, 0, 1000);
    flow(d, C, MiB, 0, 1000);
    d.apply({ kind: 'blob-done', digest: A, size: 2 * MiB, how: 'sent' }, 1000);
    d.apply({ kind: 'blob-done', digest: B, size: 3 * MiB, how: 'mounted' }, 1000);
    d.apply({ kind: 'blob-done', digest: D, size: 700, how: 'skipped' }, 1000);
    const lines = d.lines(1000, 80);
    expect(lines).toHaveLength(5);
    const statusColumn = (line: string, word: string) => line.lastIndexOf(word);
    const done = lines.find((l) => l.startsWith(' aaaa')) ?? '';
    const mounted = lines.find((l) => l.startsWith(' bbbb')) ?? '';
    const running = lines.find((l) => l.startsWith(' cccc')) ?? '';
    const skipped = lines.find((l) => l.startsWith(' dddd')) ?? '';
    expect(done).toMatch(/100% +2\.0 MiB +2\.0 MiB\/s +done$/);
    expect(mounted).toMatch(/^ bbbbbbbbbbbb +3\.0 MiB +mounted$/);
    expect(skipped).toMatch(/^ dddddddddddd +700 B +skipped$/);
    const at = statusColumn(done, 'done');
    expect(statusColumn(mounted, 'mounted')).toBe(at);
    expect(statusColumn(skipped, 'skipped')).toBe(at);
    expect(statusColumn(running, 'ETA')).toBe(at);
    // The mounted blob was announced but moved nothing: the total is what was really sent.
    expect(d.totalLine(1000, 80)).toMatch(/ 3\.0\/7\.0 MiB /);
  });

  it.each([40, 60, 80, 100, 200])('fits every line into %i columns', (columns) => {
    const d = new TransferDisplay(0);
    d.apply({ kind: 'blob-start', digest: A, size: 1023 * 1024 * MiB }, 0);
    d.apply({ kind: 'blob-start', digest: B, size: 3 * MiB }, 0);
    flow(d, A, 900 * MiB, 0, 3000);
    d.apply(
      {
        kind: 'blob-resume',
        digest: B,
        offset: 0,
        reason: `the body ended at 0 of ${3 * MiB} bytes`,
        waitMs: 800,
      },
      3000,
    );
    d.apply({ kind: 'blob-done', digest: C, size: 5, how: 'skipped' }, 3000);
    for (const line of d.lines(3000, columns)) expect(line.length).toBeLessThanOrEqual(columns - 1);
  });
});

describe('TransferDisplay.visibleDigests', () => {
  it('makes room by dropping the oldest finished blobs, keeping every blob still moving', () => {
    const d = new TransferDisplay(0);
    const digests = Array.from({ length: 8 }, (_, i) => `sha256:${String(i).repeat(64)}`);
    for (const digest of digests) d.apply({ kind: 'blob-start', digest, size: 10 }, 0);
    for (const digest of digests.slice(0, 5))
      d.apply({ kind: 'blob-done', digest, size: 10, how: 'sent' }, 1);
    expect(d.visibleDigests(20)).toEqual(digests);
    expect(d.visibleDigests(4)).toEqual([digests[4], digests[5], digests[6], digests[7]]);
    expect(d.visibleDigests(2)).toEqual([digests[5], digests[6]]);
  });
});
