import type { TransferEvent, TransferListener, TransferSummary } from '../image/transfer-events.js';
import { terminalSession } from './terminal-session.js';
import { TransferDisplay } from './transfer-display.js';

/** Terminal rows kept free of blob lines: the total's line, the one below the bars, the prompt's. */
const RESERVED_ROWS = 3;

export interface ProgressFlags {
  readonly quiet?: boolean;
  readonly json?: boolean;
  /** --trace writes the HTTP exchange to stderr: redrawn bars would tear it apart. */
  readonly trace?: boolean;
}

/**
 * Progress on a terminal: a line for the whole transfer and one per blob, rendered by
 * TransferDisplay from the TransferEvent stream and drawn by cli-progress (redraws, the hidden
 * cursor, no line wrapping). The bars appear with the first blob, and whatever ends the command
 * (success, an error, a signal) stops them through the terminal session. Nothing when stderr is
 * not a terminal, with --quiet or with --trace; `finish` prints the --json summary on stdout.
 */
export async function transferProgress(flags: ProgressFlags): Promise<{
  listener: TransferListener | undefined;
  finish(summary: TransferSummary | undefined): void;
}> {
  const print = (summary: TransferSummary | undefined) => {
    if (!flags.json || summary === undefined) return;
    const count = (how: string) => summary.blobs.filter((b) => b.how === how).length;
    const sentBytes = summary.blobs.filter((b) => b.how === 'sent').reduce((n, b) => n + b.size, 0);
    process.stdout.write(
      `${JSON.stringify(
        { ...summary, sent: count('sent'), skipped: count('skipped'), mounted: count('mounted'), sentBytes },
        null,
        2,
      )}\n`,
    );
  };
  if (flags.quiet || flags.trace || !process.stderr.isTTY) return { listener: undefined, finish: print };

  const { default: progress } = await import('cli-progress');
  const display = new TransferDisplay(Date.now());
  type Line = { readonly line: (now: number, columns: number) => string };
  const multi = new progress.MultiBar({
    stream: process.stderr,
    clearOnComplete: false,
    hideCursor: true,
    linewrap: false,
    // Each line is rendered whole from the display's state at every redraw, so a countdown
    // ("retrying in 2 s") moves on even when no bytes arrive.
    format: (_options, params, payload: Line) => payload.line(Date.now(), params.maxWidth),
  });
  let release: (() => void) | undefined;
  // A line per blob would scroll a tall image's bars off a short terminal, and the redraw would
  // then garble it: at most this many blob lines, each showing whichever blob is in its slot.
  const maxBlobLines = Math.max(1, (process.stderr.rows || 24) - RESERVED_ROWS);
  let slots = 0;
  const listener = (event: TransferEvent) => {
    display.apply(event, Date.now());
    if (release === undefined) {
      if (event.kind !== 'blob-start' && event.kind !== 'blob-done') return;
      const session = terminalSession();
      // cli-progress prints logged lines at its next redraw and drops them on stop: lines not yet
      // drawn when the bars stop are written after them, so no warning is lost.
      let undrawn: string[] = [];
      multi.on('redraw-pre', () => {
        undrawn = [];
      });
      const unlog = session.onLog((line) => {
        undrawn.push(line);
        multi.log(line);
      });
      const stop = () => {
        unlog();
        multi.stop();
        for (const line of undrawn) process.stderr.write(line);
        undrawn = [];
      };
      const unrestore = session.onRestore(stop);
      release = () => {
        unrestore();
        stop();
      };
      multi.create(1, 0, { line: (now: number, columns: number) => display.totalLine(now, columns) } as Line);
    }
    while (slots < Math.min(display.digests.length, maxBlobLines)) {
      const slot = slots++;
      multi.create(1, 0, {
        line: (now: number, columns: number) => {
          const digest = display.visibleDigests(maxBlobLines)[slot];
          return digest === undefined ? '' : display.blobLine(digest, now, columns);
        },
      } as Line);
    }
  };
  return {
    listener,
    finish(summary) {
      release?.();
      print(summary);
    },
  };
}
