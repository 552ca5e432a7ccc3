import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticks: number | undefined;

/** USER_HZ: the unit of /proc's CPU times (`getconf CLK_TCK`; 100 on every common Linux). */
function ticksPerSecond(): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

/**
 * User and system CPU seconds from the text of `/proc/<pid>/stat` (proc(5): utime and stime are
 * fields 14 and 15, in clock ticks). The command name (field 2) is in parentheses and may hold
 * spaces and parentheses itself, so the fields are counted from the last `)`.
 */
export function parseProcStatCpu(
  text: string,
  ticksPerSecondValue: number,
): { user: number; system: number } {
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime is fields[11], stime fields[12].
  const user = Number(fields[11]);
  const system = Number(fields[12]);
  if (!Number.isFinite(user) || !Number.isFinite(system))
    throw new Error(`not a /proc/<pid>/stat line: ${text.slice(0, 80)}`);
  return { user: user / ticksPerSecondValue, system: system / ticksPerSecondValue };
}

/**
 * CPU seconds (user + system) process `pid` has used so far: read before and after a load run,
 * the difference is what serving it cost, whatever else ran on the machine meanwhile.
 */
export function processCpuSeconds(pid: number): number {
  const { user, system } = parseProcStatCpu(readFileSync(`/proc/${pid}/stat`, 'utf8'), ticksPerSecond());
  return user + system;
}
