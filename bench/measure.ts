import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface RunResult {
  readonly ms: number;
  /** Peak resident memory in MB (VmHWM, sampled every 10 ms while the process ran). */
  readonly peakRssMb: number;
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function vmHwmKb(pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Runs a command, timing it from spawn to exit and sampling its peak RSS. */
export function runTimed(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let peak = 0;
    child.stdout.on('data', (d: Buffer) => {
      if (stdout.length < 1_000_000) stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 1_000_000) stderr += d.toString();
    });
    const sample = setInterval(() => {
      const kb = child.pid === undefined ? undefined : vmHwmKb(child.pid);
      if (kb !== undefined && kb > peak) peak = kb;
    }, 10);
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 300_000);
    child.on('error', (err) => {
      clearInterval(sample);
      clearTimeout(timer);
      reject(err);
    });
    child.on('exit', (code) => {
      const ms = performance.now() - started;
      clearInterval(sample);
      clearTimeout(timer);
      // Let the pipes drain.
      setImmediate(() => resolve({ ms, peakRssMb: peak / 1024, code: code ?? -1, stdout, stderr }));
    });
    child.stdin.end(options.input ?? '');
  });
}

export interface Stats {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

export function stats(values: readonly number[]): Stats {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
  return { median, min: sorted[0] ?? 0, max: sorted.at(-1) ?? 0, n: sorted.length };
}

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

/**
 * The least time any client on this runtime could take for a run: the runtime's own start
 * (`node -e 0`) plus a round trip per request and per handshake round trip (a TCP connect costs
 * one; a TLS 1.3 handshake, RFC 8446 §2, one more). What a measured time has above it is the
 * client's own cost.
 */
export function floorMs(f: {
  readonly startMs: number;
  readonly rttMs: number;
  readonly requests: number;
  readonly handshakeRoundTrips?: number;
}): number {
  return f.startMs + (f.requests + (f.handshakeRoundTrips ?? 0)) * f.rttMs;
}
