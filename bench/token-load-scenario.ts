import { type ChildProcess, spawn } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../test/harness/processes.js';
import { stats } from './measure.js';
import type { ScenarioResult } from './merge-results.js';
import { processCpuSeconds } from './process-cpu.js';

/** Connections of the closed-loop load generator: the figure. */
export const LOAD_CONNECTIONS = 32;
/** The p99 the token server must keep at LOAD_CONNECTIONS (issue 13). */
export const TARGET_P99_MS = 20;

export interface TokenLoadOptions {
  readonly root: string;
  /** The Node binary both servers and the load generator run on. */
  readonly node: string;
  readonly work: string;
  /** Files of the bench stack's token server: the same key, certificate and users. */
  readonly keyFile: string;
  readonly certFile: string;
  readonly htpasswdFile: string;
  readonly service: string;
  readonly issuer: string;
  readonly user: string;
  readonly password: string;
  readonly seconds: number;
  readonly rounds: number;
  readonly warmupSeconds: number;
  readonly log: (text: string) => void;
}

/** One load run against one server: what the client saw, and what the server spent. */
interface LoadRun {
  readonly requests: number;
  readonly errors: number;
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  /** Server CPU seconds (user + system) during the run. */
  readonly cpu: number;
  readonly wall: number;
}

function runLoad(node: string, root: string, url: string, seconds: number, creds?: string) {
  return new Promise<Omit<LoadRun, 'cpu' | 'wall'>>((resolve, reject) => {
    const child = spawn(
      node,
      [join(root, 'bench', 'peers', 'load.mjs'), url, String(LOAD_CONNECTIONS), String(seconds)],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          LANG: 'C',
          ...(creds ? { LOAD_CREDENTIALS: creds } : {}),
        },
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), seconds * 1000 + 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(JSON.parse(out));
      else reject(new Error(`load generator failed (${code}): ${err.slice(0, 2000)}`));
    });
  });
}

/** Measures a run by the server's own CPU time, read from /proc before and after. */
async function measured(pid: number, run: () => Promise<Omit<LoadRun, 'cpu' | 'wall'>>): Promise<LoadRun> {
  const cpu = processCpuSeconds(pid);
  const started = performance.now();
  const figures = await run();
  return { ...figures, cpu: processCpuSeconds(pid) - cpu, wall: (performance.now() - started) / 1000 };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(kill);
}

async function until(what: string, check: () => boolean, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!check()) {
    if (child.exitCode !== null) throw new Error(`${what} exited with code ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error(`${what} did not start within 30 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Scenario 8: authenticated token requests at LOAD_CONNECTIONS connections to `regauth serve`
 * and to an empty node:http handler, alternating, each server's CPU time read from /proc around
 * every run. The server logs to a file, as in production: its log is not piped through the
 * bench process, whose reading it would add to the machine's load.
 */
export async function tokenLoadScenario(o: TokenLoadOptions): Promise<ScenarioResult> {
  const cores = availableParallelism();
  const loadBefore = loadavg();
  const port = await freePort();
  const configFile = join(o.work, 'serve-load.yml');
  const logFile = join(o.work, 'serve-load.log');
  // JSON is YAML.
  await writeFile(
    configFile,
    JSON.stringify({
      listen: `127.0.0.1:${port}`,
      token: {
        issuer: o.issuer,
        service: o.service,
        expiration: 300,
        key: o.keyFile,
        certificate: o.certFile,
      },
      users: { htpasswd: o.htpasswdFile },
      acl: [
        { match: { account: o.user }, actions: ['*'] },
        { match: { account: o.user, type: 'registry', name: 'catalog' }, actions: ['*'] },
      ],
    }),
  );
  const serve = spawn(o.node, [join(o.root, 'bin', 'regauth'), 'serve', '--config', configFile], {
    stdio: ['ignore', 'ignore', openSync(logFile, 'w')],
  });
  const empty = spawn(o.node, [join(o.root, 'bench', 'peers', 'empty-server.mjs')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const emptyPort = await new Promise<number>((resolve, reject) => {
      empty.stdout?.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
      empty.once('exit', (code) => reject(new Error(`empty-server.mjs exited with code ${code}`)));
    });
    await until('regauth serve', () => readFileSync(logFile, 'utf8').includes('"msg":"listening"'), serve);
    const tokenUrl = `http://127.0.0.1:${port}/token?service=${o.service}&scope=repository:bench/small:pull`;
    const emptyUrl = `http://127.0.0.1:${emptyPort}/`;
    const creds = `${o.user}:${o.password}`;
    const contenders = [
      { name: 'regauth serve', pid: serve.pid as number, url: tokenUrl, creds },
      { name: 'empty node:http', pid: empty.pid as number, url: emptyUrl, creds: undefined },
    ];
    const runs = new Map<string, LoadRun[]>(contenders.map((c) => [c.name, []]));
    let sent = 0;
    // The warm-up lets V8 optimise both servers' code and the load generator reach its pace.
    for (const c of contenders) {
      const r = await runLoad(o.node, o.root, c.url, o.warmupSeconds, c.creds);
      if (c.creds) sent += r.requests + r.errors;
    }
    for (let round = 1; round <= o.rounds; round++) {
      o.log(`bench: scenario 8: round ${round} of ${o.rounds}`);
      for (const c of contenders) {
        const r = await measured(c.pid, () => runLoad(o.node, o.root, c.url, o.seconds, c.creds));
        if (c.creds) sent += r.requests + r.errors;
        runs.get(c.name)?.push(r);
      }
    }
    await stop(serve);
    const tokenLines = readFileSync(logFile, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"msg":"token"')).length;
    const loadAfter = loadavg();

    const summary = (name: string) => {
      const list = runs.get(name) ?? [];
      const median = (f: (r: LoadRun) => number) => stats(list.map(f)).median;
      return {
        rps: median((r) => r.rps),
        p50: median((r) => r.p50),
        p99: median((r) => r.p99),
        p99s: list.map((r) => r.p99),
        perCpu: median((r) => r.requests / r.cpu),
        busy: median((r) => r.cpu / r.wall),
        errors: list.reduce((n, r) => n + r.errors, 0),
      };
    };
    const ours = summary('regauth serve');
    const base = summary('empty node:http');
    const share = ours.perCpu / base.perCpu;
    const fmtLoad = (l: number[]) => l.map((x) => x.toFixed(2)).join(' / ');
    const row = (name: string, s: ReturnType<typeof summary>, command: string) => ({
      name,
      command,
      ms: { median: s.p50, min: s.p50, max: s.p99, n: o.rounds },
      requests: 0,
      rssMb: 0,
      bytesUp: 0,
      extra: `${s.perCpu.toFixed(0)} req per CPU-second (${s.busy.toFixed(2)} cores busy); ${s.rps.toFixed(0)} req/s, p50 ${s.p50.toFixed(1)} ms, p99 ${s.p99.toFixed(1)} ms (rounds: ${s.p99s.map((x) => x.toFixed(1)).join(', ')}), ${s.errors} errors`,
    });
    return {
      id: 8,
      title: `token server: authenticated token requests at ${LOAD_CONNECTIONS} connections`,
      target: `p99 ≤ ${TARGET_P99_MS} ms; requests per CPU-second reported next to an empty node:http handler's`,
      rows: [
        row(
          'regauth serve',
          ours,
          `LOAD_CREDENTIALS=${o.user}:… node bench/peers/load.mjs '${tokenUrl}' ${LOAD_CONNECTIONS} ${o.seconds}`,
        ),
        row(
          'empty node:http',
          base,
          `node bench/peers/load.mjs http://127.0.0.1:PORT/ ${LOAD_CONNECTIONS} ${o.seconds}`,
        ),
      ],
      met: ours.p99 <= TARGET_P99_MS && ours.errors === 0 && tokenLines === sent,
      verdict:
        `p99 ${ours.p99.toFixed(1)} ms; ${ours.perCpu.toFixed(0)} requests per CPU-second, ${(share * 100).toFixed(0)} % of an empty node:http handler's ${base.perCpu.toFixed(0)}; ` +
        `${ours.rps.toFixed(0)} req/s vs ${base.rps.toFixed(0)}` +
        (tokenLines === sent ? '' : `; ${tokenLines} log lines for ${sent} requests`),
      notes: [
        `Cores: ${cores} (os.availableParallelism()), shared by both servers, the load generator (one Node process, undici, ${LOAD_CONNECTIONS} keep-alive connections, closed loop) and whatever else runs on the machine; Node ${process.version}. Load average (1/5/15 min) ${fmtLoad(loadBefore)} before the scenario, ${fmtLoad(loadAfter)} after.`,
        `Requests per CPU-second: the requests answered in a run divided by the server process's user + system CPU seconds during it (/proc/<pid>/stat, read before and after; the same for both servers). It does not depend on how much of the cores the server got, as req/s does on a shared machine. Both include the kernel's share of each response's write, which on loopback also wakes the load generator.`,
        `A warm-up of ${o.warmupSeconds} s per server, then ${o.rounds} rounds of ${o.seconds} s, the servers alternating; medians of each figure over the rounds (each round's p99 is listed). The table's median and min columns are p50, max is p99.`,
        `What the load covers: one user's Basic login on every request (\`users.cache_seconds\` 60, the default): Basic decoding, the failure counters' read, the verified-login cache (an HMAC of the pair, no bcrypt), the ACL, and token reuse (\`token.reuse_seconds\` 5, the default: a new ES256 signature every 5 s, the rest reuse it), the JSON answer and one JSON log line per request, written to a file (${tokenLines} token lines for the ${sent} requests sent, warm-up included). Direct to the server: no delay proxy, no TLS.`,
      ].join(' '),
    };
  } finally {
    await stop(serve);
    await stop(empty);
  }
}
