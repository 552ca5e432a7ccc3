/**
 * Where a `regauth manifest` process spends its time beyond Node's own start (`node -e 0`):
 * loading its bundles, waiting on the network and disk, and the rest (config, credential and
 * cache reads, client set-up, the exchange's CPU). The CLI reports the first two itself with
 * REGAUTH_TIMING=1 (src/cli/start-up-timing.ts); the rest is what remains.
 */
import { rm } from 'node:fs/promises';
import { defaultTokenStorePath } from '../src/auth/file-token-store.js';
import { type StartUpTiming, TIMING_LINE_PREFIX } from '../src/cli/start-up-timing.js';
import { runTimed, stats } from './measure.js';

export interface OwnCostOptions {
  /** The Node binary to run regauth and `node -e 0` with. */
  readonly node: string;
  /** bin/regauth. */
  readonly regauth: string;
  /** The image reference for `regauth manifest`. */
  readonly ref: string;
  /** regauth's environment: HOME or XDG_CACHE_HOME decide where its token cache is; credentials. */
  readonly env: NodeJS.ProcessEnv;
  /** Measured rounds, after one warm-up round. */
  readonly runs: number;
  /**
   * The same manifest by a Node program with nothing of its own (bench/peers/minimal-client.cjs), run
   * in each round after regauth's with a `node -e 0` run of its own before it. `prepare` runs
   * before it, not timed (it fetches the token the client is handed).
   */
  readonly minimal?: {
    readonly args: readonly string[];
    /** Its environment, and its `node -e 0`'s (regauth's are `env`). */
    readonly env: NodeJS.ProcessEnv;
    readonly prepare: () => Promise<void>;
  };
}

/** A command's time above `node -e 0`, run by run (the minimal client's). */
export interface FloorBreakdown {
  readonly runs: number;
  /** Spawn to exit. */
  readonly totalMs: number;
  readonly totalsMs: readonly number[];
  /** `node -e 0`, spawn to exit. */
  readonly floorMs: number;
  /** total − floor, the median of the differences taken run by run. */
  readonly aboveFloorMs: number;
}

/** One regauth run next to the `node -e 0` run just before it. */
export interface TimedRun {
  readonly totalMs: number;
  readonly floorMs: number;
  readonly timing: StartUpTiming;
}

/** Medians over the runs; each difference is taken run by run, then its median. */
export interface PathBreakdown {
  readonly runs: number;
  /** Spawn to exit. */
  readonly totalMs: number;
  /** Every run's spawn to exit, in order: for a row's range. */
  readonly totalsMs: readonly number[];
  /** `node -e 0`, spawn to exit. */
  readonly floorMs: number;
  /** total − floor. */
  readonly aboveFloorMs: number;
  /** Requiring the bundles (their built-ins included). */
  readonly loadMs: number;
  /** Each bundle's load. */
  readonly loads: Readonly<Record<string, number>>;
  /** The event loop waiting: round trips, disk, worker threads. */
  readonly waitMs: number;
  /** above the floor − loading − waiting: reads, client set-up, the exchange's CPU, exit. */
  readonly restMs: number;
  /** above the floor − waiting (loading + the rest): what the target counts. */
  readonly ownMs: number;
}

export interface OwnCostBreakdown {
  /** The runtime's version (`v20.20.2`). */
  readonly node: string;
  /** Nothing cached: the token cache removed before each run (3 requests on a token registry). */
  readonly cold: PathBreakdown;
  /** The token cached in the persistent cache by the run before (1 request). */
  readonly warm: PathBreakdown;
  /** The minimal client, when asked for (OwnCostOptions.minimal). */
  readonly minimal?: FloorBreakdown;
}

const median = (values: readonly number[]) => stats(values).median;

/** The medians of a set of runs (the arithmetic, apart from the measuring). */
export function breakdownOf(runs: readonly TimedRun[]): PathBreakdown {
  const load = (r: TimedRun) => Object.values(r.timing.loads).reduce((a, b) => a + b, 0);
  const above = (r: TimedRun) => r.totalMs - r.floorMs;
  const names = [...new Set(runs.flatMap((r) => Object.keys(r.timing.loads)))];
  return {
    runs: runs.length,
    totalMs: median(runs.map((r) => r.totalMs)),
    totalsMs: runs.map((r) => r.totalMs),
    floorMs: median(runs.map((r) => r.floorMs)),
    aboveFloorMs: median(runs.map(above)),
    loadMs: median(runs.map(load)),
    loads: Object.fromEntries(names.map((n) => [n, median(runs.map((r) => r.timing.loads[n] ?? 0))])),
    waitMs: median(runs.map((r) => r.timing.idleMs)),
    restMs: median(runs.map((r) => above(r) - load(r) - r.timing.idleMs)),
    ownMs: median(runs.map((r) => above(r) - r.timing.idleMs)),
  };
}

/** The medians of runs of a command timed against `node -e 0` alone. */
export function floorBreakdownOf(runs: readonly { totalMs: number; floorMs: number }[]): FloorBreakdown {
  return {
    runs: runs.length,
    totalMs: median(runs.map((r) => r.totalMs)),
    totalsMs: runs.map((r) => r.totalMs),
    floorMs: median(runs.map((r) => r.floorMs)),
    aboveFloorMs: median(runs.map((r) => r.totalMs - r.floorMs)),
  };
}

/** The `regauth-timing` line of a run's stderr. */
export function parseTimingLine(stderr: string): StartUpTiming {
  const line = stderr.split('\n').find((l) => l.startsWith(TIMING_LINE_PREFIX));
  if (line === undefined) throw new Error('regauth wrote no regauth-timing line (REGAUTH_TIMING=1)');
  return JSON.parse(line.slice(TIMING_LINE_PREFIX.length)) as StartUpTiming;
}

/**
 * Runs `node -e 0`, then `regauth manifest ref` with nothing cached, `node -e 0` again, then
 * `regauth manifest ref` with the token the cold run cached: one warm-up round and `runs`
 * measured ones, on one runtime. Only the token cache (tokens.json) is removed for a cold run;
 * the CLI's code cache stays, as on a machine where regauth ran before.
 */
export async function ownCostBreakdown(options: OwnCostOptions): Promise<OwnCostBreakdown> {
  const env = { ...options.env, REGAUTH_TIMING: '1' };
  const tokens = defaultTokenStorePath(options.env);
  const floor = async (floorEnv = options.env) => {
    const r = await runTimed(options.node, ['-e', '0'], { env: floorEnv });
    if (r.code !== 0) throw new Error(`node -e 0 failed (${r.code}): ${r.stderr.slice(0, 500)}`);
    return r.ms;
  };
  const manifest = async (floorMs: number): Promise<TimedRun> => {
    const r = await runTimed(options.node, [options.regauth, 'manifest', options.ref], { env });
    if (r.code !== 0) throw new Error(`regauth manifest failed (${r.code}): ${r.stderr.slice(0, 500)}`);
    return { totalMs: r.ms, floorMs, timing: parseTimingLine(r.stderr) };
  };
  const minimalRun = async (args: readonly string[], env: NodeJS.ProcessEnv) => {
    const floorMs = await floor(env);
    const r = await runTimed(options.node, args, { env });
    if (r.code !== 0) throw new Error(`the minimal client failed (${r.code}): ${r.stderr.slice(0, 500)}`);
    return { totalMs: r.ms, floorMs };
  };
  const cold: TimedRun[] = [];
  const warm: TimedRun[] = [];
  const minimal: { totalMs: number; floorMs: number }[] = [];
  let version = '';
  for (let round = 0; round <= options.runs; round++) {
    await rm(tokens, { force: true });
    const c = await manifest(await floor());
    const w = await manifest(await floor());
    version = w.timing.node;
    let m: { totalMs: number; floorMs: number } | undefined;
    if (options.minimal !== undefined) {
      await options.minimal.prepare();
      m = await minimalRun(options.minimal.args, options.minimal.env);
    }
    if (round === 0) continue;
    cold.push(c);
    warm.push(w);
    if (m !== undefined) minimal.push(m);
  }
  return {
    node: version,
    cold: breakdownOf(cold),
    warm: breakdownOf(warm),
    ...(options.minimal === undefined ? {} : { minimal: floorBreakdownOf(minimal) }),
  };
}

const ms = (v: number) => `${v.toFixed(1)} ms`;

/** Markdown for RESULTS.md: a table with a row per runtime and path, and each bundle's load. */
export function formatBreakdown(breakdowns: OwnCostBreakdown | readonly OwnCostBreakdown[]): string[] {
  const list: readonly OwnCostBreakdown[] = Array.isArray(breakdowns) ? breakdowns : [breakdowns];
  const lines = [
    '| runtime | regauth manifest | total | node -e 0 | above it | loading code | waiting (network, disk) | the rest | own cost |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  const paths = [
    ['cold', 'nothing cached'],
    ['warm', 'token cached'],
  ] as const;
  for (const b of list) {
    for (const [key, label] of paths) {
      const p = b[key];
      lines.push(
        `| Node ${b.node} | ${label} | ${ms(p.totalMs)} | ${ms(p.floorMs)} | ${ms(p.aboveFloorMs)} | ${ms(p.loadMs)} | ${ms(p.waitMs)} | ${ms(p.restMs)} | ${ms(p.ownMs)} |`,
      );
    }
  }
  lines.push('');
  for (const b of list) {
    for (const [key, label] of paths) {
      const loads = Object.entries(b[key].loads)
        .map(([name, v]) => `${name} ${ms(v)}`)
        .join(', ');
      lines.push(`- Node ${b.node}, ${label}: loading code is ${loads || 'nothing'}.`);
    }
  }
  lines.push(
    '- Medians of each figure over the runs (the differences taken run by run), so the columns need not add up exactly. ' +
      '"Waiting" is the time the event loop was idle (performance.eventLoopUtilization): round trips, including a ' +
      "loopback registry's HTTPS ping, the disk and worker threads. Own cost = above node -e 0 − waiting = loading code + the rest.",
  );
  return lines;
}
