import type { TransferEvent, TransferListener, TransferSummary } from '../image/transfer-events.js';
import { terminalSession } from './terminal-session.js';

export interface ProgressFlags {
  readonly quiet?: boolean;
  readonly json?: boolean;
}

const short = (digest: string) => digest.slice(digest.indexOf(':') + 1, digest.indexOf(':') + 13);

/**
 * Progress on a terminal: a bar per blob in flight and one overall (bytes, rate, ETA), drawn by
 * cli-progress. Nothing when stderr is not a terminal or with --quiet; `finish` prints the
 * --json summary on stdout.
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
  if (flags.quiet || !process.stderr.isTTY) return { listener: undefined, finish: print };

  const { default: progress } = await import('cli-progress');
  const multi = new progress.MultiBar(
    {
      stream: process.stderr,
      clearOnComplete: false,
      hideCursor: true,
      format: ' {name} |{bar}| {percentage}% {value}/{total} {rate}/s ETA {eta_formatted}',
      formatValue: (v, _options, type) => {
        if (type !== 'value' && type !== 'total') return String(v);
        const units = ['B', 'KiB', 'MiB', 'GiB'];
        let n = v;
        let u = 0;
        while (n >= 1024 && u < units.length - 1) {
          n /= 1024;
          u++;
        }
        return `${n.toFixed(u === 0 ? 0 : 1)}${units[u]}`;
      },
    },
    progress.Presets.shades_classic,
  );
  const started = Date.now();
  const overall = multi.create(0, 0, { name: 'total       ', rate: '-' });
  const bars = new Map<string, ReturnType<typeof multi.create>>();
  let done = 0;
  let total = 0;
  const rate = () => {
    const seconds = (Date.now() - started) / 1000;
    const perSecond = seconds > 0 ? done / seconds : 0;
    return perSecond >= 1048576
      ? `${(perSecond / 1048576).toFixed(1)}MiB`
      : `${(perSecond / 1024).toFixed(0)}KiB`;
  };
  const listener = (event: TransferEvent) => {
    switch (event.kind) {
      case 'blob-start':
        total += event.size;
        overall.setTotal(total);
        bars.set(event.digest, multi.create(event.size, 0, { name: short(event.digest), rate: '-' }));
        break;
      case 'blob-bytes':
        done += event.bytes;
        bars.get(event.digest)?.increment(event.bytes, { rate: rate() });
        overall.update(done, { rate: rate() });
        break;
      case 'blob-done': {
        const bar = bars.get(event.digest);
        if (bar) {
          if (event.how !== 'sent') {
            total -= event.size;
            overall.setTotal(total);
          }
          bar.update(event.size, {
            name: `${short(event.digest)} ${event.how === 'sent' ? '' : event.how}`.trim(),
          });
          bar.stop();
        }
        break;
      }
      default:
        break;
    }
  };
  // Whatever ends the command (an error, a signal) stops the bars and shows the cursor again.
  const release = terminalSession().onRestore(() => multi.stop());
  return {
    listener,
    finish(summary) {
      release();
      multi.stop();
      print(summary);
    },
  };
}
