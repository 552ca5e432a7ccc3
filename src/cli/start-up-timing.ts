import { Module } from 'node:module';
import { performance } from 'node:perf_hooks';

/**
 * The environment variable that turns on the start-up timing diagnostic: with `REGAUTH_TIMING=1`
 * the CLI writes one extra line to stderr when it exits, `regauth-timing {…}` — durations in
 * milliseconds and bundle file names, nothing else (no arguments, hosts or credentials). It is
 * how bench/own-cost.ts splits a run's time; it changes nothing else the CLI does.
 */
export const TIMING_ENV = 'REGAUTH_TIMING';

/** What the `regauth-timing` line holds. */
export interface StartUpTiming {
  readonly node: string;
  /** Since the process started: when the `regauth` script began to run. */
  readonly binStartMs: number;
  /** Each bundle's require, in ms, its built-ins included (`main.cjs`, `commands/manifest.cjs`). */
  readonly loads: Record<string, number>;
  /** The CLI's code cache (code-cache.ts), per bundle: `accepted`, `missing` or `rejected`. */
  readonly codeCache?: Record<string, string>;
  /** Time the event loop waited (network, disk, worker threads): performance.eventLoopUtilization. */
  readonly idleMs: number;
  /** Since the process started: when it began to exit. */
  readonly exitMs: number;
}

/** Filled in by bin/regauth once the code cache, if any, is installed. */
export interface TimingRecorder {
  codeCache?: { readonly outcomes: ReadonlyMap<string, string> };
}

/** The prefix of the line on stderr. */
export const TIMING_LINE_PREFIX = 'regauth-timing ';

/**
 * Times every require of a CLI bundle (the `.cjs` files: bin/regauth's and the bundles' own) and
 * writes the line at exit. `binStartMs` is performance.now() at the top of the bin script.
 */
export function recordStartUpTiming(
  binStartMs: number,
  write: (line: string) => void = (line) => process.stderr.write(line),
): TimingRecorder {
  const recorder: TimingRecorder = {};
  const loads: Record<string, number> = {};
  const proto = (Module as unknown as { prototype: { require(id: string): unknown } }).prototype;
  const original = proto.require;
  proto.require = function timedRequire(this: unknown, id: string) {
    if (!id.endsWith('.cjs')) return original.call(this, id);
    const started = performance.now();
    try {
      return original.call(this, id);
    } finally {
      const name = id.replace(/^(\.\.?\/)+/, '').replace(/^dist\/cli-bundle\//, '');
      loads[name] = (loads[name] ?? 0) + performance.now() - started;
    }
  };
  process.once('exit', () => {
    const outcomes = recorder.codeCache?.outcomes;
    const timing: StartUpTiming = {
      node: process.version,
      binStartMs,
      loads,
      ...(outcomes === undefined
        ? {}
        : {
            codeCache: Object.fromEntries(
              [...outcomes].map(([file, outcome]) => [file.replace(/^.*[\\/]cli-bundle[\\/]/, ''), outcome]),
            ),
          }),
      idleMs: performance.eventLoopUtilization().idle,
      exitMs: performance.now(),
    };
    write(`${TIMING_LINE_PREFIX}${JSON.stringify(timing)}\n`);
  });
  return recorder;
}
