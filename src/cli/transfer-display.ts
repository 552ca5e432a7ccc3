import type { TransferEvent } from '../image/transfer-events.js';

/**
 * How far back a rate looks: long enough to smooth the bursts of a network read, short enough
 * that a stall or a speed-up shows within seconds (wget and curl average over a few seconds too).
 */
export const RATE_WINDOW_MS = 5000;
/** The bar's width when the terminal has room; the other columns are fixed. */
export const MAX_BAR_WIDTH = 40;

const NAME_WIDTH = 12;
const PERCENT_WIDTH = 4;
const SIZE_WIDTH = 17;
const RATE_WIDTH = 12;
const STATUS_WIDTH = 11;
/** Every column but the bar, with the spaces between them and one leading space. */
const FIXED_WIDTH =
  1 + NAME_WIDTH + 1 + 1 + PERCENT_WIDTH + 1 + SIZE_WIDTH + 2 + RATE_WIDTH + 2 + STATUS_WIDTH;

type RowState = 'active' | 'retrying' | 'sent' | 'skipped' | 'mounted';

/** Samples closer together than this are merged: a fast link delivers thousands a second. */
const SAMPLE_SPACING_MS = 100;

/** Bytes over time, for a rate over the last {@link RATE_WINDOW_MS}. */
class Meter {
  private readonly samples: { at: number; bytes: number }[];
  bytes = 0;

  constructor(readonly startedAt: number) {
    this.samples = [{ at: startedAt, bytes: 0 }];
  }

  add(bytes: number, now: number): void {
    this.bytes += bytes;
    const last = this.samples[this.samples.length - 1] as { at: number; bytes: number };
    if (now - last.at < SAMPLE_SPACING_MS && this.samples.length > 1) last.bytes = this.bytes;
    else this.samples.push({ at: now, bytes: this.bytes });
    // Keep one sample from before the window, as the window's baseline.
    while (this.samples.length > 2 && (this.samples[1] as { at: number }).at <= now - RATE_WINDOW_MS) {
      this.samples.shift();
    }
  }

  /** Bytes per second since the window's baseline; 0 when too little time has passed. */
  rate(now: number): number {
    let base = this.samples[0] as { at: number; bytes: number };
    for (const s of this.samples) if (s.at <= now - RATE_WINDOW_MS) base = s;
    const seconds = (now - base.at) / 1000;
    return seconds < 0.2 ? 0 : (this.bytes - base.bytes) / seconds;
  }
}

interface Row {
  readonly digest: string;
  readonly size: number;
  readonly meter: Meter;
  /** Bytes a resumed download already had on disk: done, but no part of the rate. */
  held: number;
  /** Bytes that arrived before the download started over (a partial file proved wrong). */
  discarded: number;
  state: RowState;
  finishedAt?: number;
  retryAt?: number;
  reason?: string;
}

function newRow(digest: string, size: number, now: number): Row {
  return { digest, size, meter: new Meter(now), held: 0, discarded: 0, state: 'active' };
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

function unitOf(n: number): number {
  let u = 0;
  while (n >= 1024 ** (u + 1) && u < UNITS.length - 1) u++;
  return u;
}

function inUnit(n: number, u: number): string {
  return u === 0 ? String(Math.round(n)) : (n / 1024 ** u).toFixed(1);
}

/** `1.0/4.0 MiB`: both in the total's unit, so the column does not jump. */
function sizes(done: number, total: number): string {
  const u = unitOf(total);
  return `${inUnit(done, u)}/${inUnit(total, u)} ${UNITS[u]}`;
}

function bytes(n: number): string {
  const u = unitOf(n);
  return `${inUnit(n, u)} ${UNITS[u]}`;
}

function duration(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  if (s >= 100 * 3600) return '>99h';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

function bar(width: number, fraction: number): string {
  const full = Math.round(width * Math.min(1, Math.max(0, fraction)));
  return '█'.repeat(full) + '░'.repeat(width - full);
}

/** Cuts `text` to `width` characters, marking the cut. */
function clip(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}…`;
}

const short = (digest: string) => digest.slice(digest.indexOf(':') + 1).slice(0, NAME_WIDTH);

/**
 * The progress display's state, built from the typed TransferEvent stream: one row per blob and
 * one for the whole transfer. Each blob's rate and ETA come from its own bytes; the total's ETA
 * from the bytes left over the recent overall rate. `lines` renders rows into fixed columns that
 * fit the terminal's width, so finished (`done`, `skipped`, `mounted`) and retrying rows stay
 * aligned with the others. Time is passed in, so a test can drive it.
 */
export class TransferDisplay {
  private readonly rows = new Map<string, Row>();
  private readonly total: Meter;
  /** Bytes of the blobs that move (sent ones), as far as they are known. */
  private totalSize = 0;
  /** Bytes the blobs' resumed downloads already had on disk. */
  private heldTotal = 0;
  /** Bytes received for downloads that then started over: not done after all. */
  private discardedTotal = 0;

  constructor(now: number) {
    this.total = new Meter(now);
  }

  /** The digests of the blob rows, in the order they appeared. */
  get digests(): string[] {
    return [...this.rows.keys()];
  }

  apply(event: TransferEvent, now: number): void {
    switch (event.kind) {
      case 'blob-start':
        if (!this.rows.has(event.digest)) {
          this.rows.set(event.digest, newRow(event.digest, event.size, now));
          this.totalSize += event.size;
        }
        break;
      case 'blob-bytes': {
        const row = this.rows.get(event.digest);
        if (!row) break;
        row.meter.add(event.bytes, now);
        this.total.add(event.bytes, now);
        row.state = 'active';
        delete row.retryAt;
        delete row.reason;
        break;
      }
      case 'blob-resume': {
        const row = this.rows.get(event.digest);
        if (!row) break;
        // A download picked up from a partial file: its bytes count as done, at no rate. One that
        // starts over (the partial proved wrong) counts nothing of what came before.
        let known = row.meter.bytes - row.discarded + row.held;
        if (event.offset < known) {
          this.heldTotal -= row.held;
          this.discardedTotal += row.meter.bytes - row.discarded;
          row.held = 0;
          row.discarded = row.meter.bytes;
          known = 0;
        }
        if (event.offset > known) {
          row.held += event.offset - known;
          this.heldTotal += event.offset - known;
        }
        if ((event.waitMs ?? 0) <= 0) break;
        row.state = 'retrying';
        row.retryAt = now + (event.waitMs ?? 0);
        row.reason = event.reason;
        break;
      }
      case 'blob-done': {
        let row = this.rows.get(event.digest);
        if (!row) {
          row = newRow(event.digest, event.size, now);
          this.rows.set(event.digest, row);
        } else if (event.how !== 'sent') {
          // Announced as a transfer, then found at the destination: nothing moves after all.
          this.totalSize -= row.size;
        }
        row.state = event.how;
        row.finishedAt = now;
        break;
      }
      default:
        break;
    }
  }

  /**
   * The blob rows that fit in `max` lines, in the order they appeared: when there are more, the
   * oldest finished ones make room first, so what is still moving stays on screen.
   */
  visibleDigests(max: number): string[] {
    const all = this.digests;
    let drop = all.length - max;
    if (drop <= 0) return all;
    const busy = (d: string) => {
      const state = this.rows.get(d)?.state;
      return state === 'active' || state === 'retrying';
    };
    return all
      .filter((d) => {
        if (drop > 0 && !busy(d)) {
          drop--;
          return false;
        }
        return true;
      })
      .slice(0, Math.max(0, max));
  }

  /** The total's line, then one per blob; none wider than `columns - 1`. */
  lines(now: number, columns: number): string[] {
    return [this.totalLine(now, columns), ...this.digests.map((d) => this.blobLine(d, now, columns))];
  }

  totalLine(now: number, columns: number): string {
    const done = this.total.bytes - this.discardedTotal + this.heldTotal;
    const rate = this.total.rate(now);
    const left = Math.max(0, this.totalSize - done);
    const busy = [...this.rows.values()].some((r) => r.state === 'active' || r.state === 'retrying');
    const eta = !busy ? 'done' : rate > 0 ? `ETA ${duration(left / rate)}` : 'ETA -';
    return this.columns(columns, 'total', this.totalSize > 0 ? done / this.totalSize : busy ? 0 : 1, [
      sizes(done, this.totalSize),
      rate > 0 ? `${bytes(rate)}/s` : '',
      eta,
    ]);
  }

  blobLine(digest: string, now: number, columns: number): string {
    const row = this.rows.get(digest);
    if (!row) return '';
    const name = short(digest);
    const done = row.meter.bytes - row.discarded + row.held;
    switch (row.state) {
      case 'retrying': {
        const wait = Math.ceil(((row.retryAt ?? now) - now) / 1000);
        const when = wait > 0 ? `retrying in ${wait} s` : 'retrying now';
        const text = `${when} (${row.reason ?? 'the connection broke'}) at ${sizes(done, row.size)}`;
        return clip(` ${name.padEnd(NAME_WIDTH)} ${text}`, columns - 1);
      }
      case 'skipped':
      case 'mounted':
        return this.columns(columns, name, undefined, [bytes(row.size), '', row.state]);
      case 'sent': {
        const seconds = ((row.finishedAt ?? now) - row.meter.startedAt) / 1000;
        const average = seconds > 0 ? (row.size - row.held) / seconds : 0;
        return this.columns(columns, name, 1, [
          bytes(row.size),
          average > 0 ? `${bytes(average)}/s` : '',
          'done',
        ]);
      }
      case 'active': {
        const rate = row.meter.rate(now);
        const eta = rate > 0 ? `ETA ${duration((row.size - done) / rate)}` : 'ETA -';
        return this.columns(columns, name, row.size > 0 ? done / row.size : 0, [
          sizes(done, row.size),
          rate > 0 ? `${bytes(rate)}/s` : '',
          eta,
        ]);
      }
    }
  }

  /** Name, bar and percentage (blank without a fraction), then size, rate and status columns. */
  private columns(
    columns: number,
    name: string,
    fraction: number | undefined,
    [size, rate, status]: [string, string, string],
  ): string {
    const barWidth = Math.max(0, Math.min(MAX_BAR_WIDTH, columns - 1 - FIXED_WIDTH));
    const percent = fraction === undefined ? '' : `${Math.floor(Math.min(1, fraction) * 100)}%`;
    const line =
      ` ${name.padEnd(NAME_WIDTH)} ${fraction === undefined ? ' '.repeat(barWidth) : bar(barWidth, fraction)} ` +
      `${percent.padStart(PERCENT_WIDTH)} ${clip(size, SIZE_WIDTH).padStart(SIZE_WIDTH)}  ` +
      `${clip(rate, RATE_WIDTH).padStart(RATE_WIDTH)}  ${clip(status, STATUS_WIDTH).padEnd(STATUS_WIDTH)}`;
    return clip(line.trimEnd(), columns - 1);
  }
}
