import { readFile } from 'node:fs/promises';

/**
 * Whether process `pid` has ended within about two seconds (100 × 20 ms): gone, or a zombie
 * nobody reaped yet (a container's PID 1 often reaps nothing, and `kill(pid, 0)` succeeds on a
 * zombie).
 */
export async function processEnded(pid: number): Promise<boolean> {
  const running = async () => {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    return stat !== '' && !/^\d+ \(.*\) Z/.test(stat);
  };
  for (let i = 0; i < 100; i++) {
    if (!(await running())) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return !(await running());
}
