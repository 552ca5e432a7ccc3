import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TerminalExit {
  /** The exit status, or undefined when a signal ended the process. */
  readonly code: number | undefined;
  /** The signal number that ended the process, if one did. */
  readonly signal: number | undefined;
}

export interface Terminal {
  /** The process id of the command (tmux runs it directly, not through a shell). */
  readonly pid: number;
  /** Keys as tmux send-keys takes them: 'C-c', 'Enter', or literal text with `literal`. */
  sendKeys(keys: string, options?: { literal?: boolean }): Promise<void>;
  /** The screen as a person sees it now (trailing blank lines dropped). */
  screen(): Promise<string>;
  /** Every byte the command wrote to the terminal so far, escape sequences included. */
  output(): Promise<string>;
  /** Whether the cursor is shown (false after an unmatched ESC[?25l). */
  cursorVisible(): Promise<boolean>;
  /** Waits until the screen matches, or throws with the screen after `timeoutMs`. */
  waitForScreen(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /**
   * Waits for the command to end. A command still running after `timeoutMs` is killed and the
   * wait throws: a hang fails the test instead of stalling the suite.
   */
  exit(timeoutMs?: number): Promise<TerminalExit>;
  dispose(): Promise<void>;
}

let sessions = 0;

/**
 * A zombie's exit status, from field 52 (`exit_code`, in waitpid's encoding) of Linux's
 * /proc/<pid>/stat; undefined while the process runs or once it is reaped.
 */
async function zombieStatus(pid: number): Promise<TerminalExit | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (stat === undefined) return undefined;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const status = Number(fields[49]);
  if (fields[0] !== 'Z' || !Number.isInteger(status)) return undefined;
  return (status & 0x7f) === 0
    ? { code: (status >> 8) & 0xff, signal: undefined }
    : { code: undefined, signal: status & 0x7f };
}

/** Whether the cursor ends up visible in a byte stream: the last of ESC[?25l / ESC[?25h wins. */
export function cursorShownAtEnd(output: string): boolean {
  const hide = output.lastIndexOf('\x1b[?25l');
  const show = output.lastIndexOf('\x1b[?25h');
  return hide < 0 || show > hide;
}

/**
 * Runs a command in a real pseudo-terminal: a private tmux server (its own socket), a window of
 * `cols`×`rows`, the command's raw output recorded from its first byte. The command starts only
 * once the recording is in place, and its pane stays after it exits so its last screen and exit
 * status can be read.
 */
export async function openTerminal(
  argv: readonly string[],
  options: { env?: Record<string, string>; cwd?: string; cols?: number; rows?: number } = {},
): Promise<Terminal> {
  const dir = await mkdtemp(join(tmpdir(), 'regauth-tty-'));
  const socket = `regauth-test-${process.pid}-${++sessions}`;
  const conf = join(dir, 'tmux.conf');
  const raw = join(dir, 'output');
  await writeFile(conf, 'set -g remain-on-exit on\nset -g status off\nset -g history-limit 5000\n');
  await writeFile(raw, '');
  const env: Record<string, string> = { ...(options.env ?? { PATH: process.env.PATH ?? '/usr/bin:/bin' }) };
  delete env.TMUX;
  env.TERM ??= 'xterm-256color';
  const tmux = async (...args: string[]) =>
    (await run('tmux', ['-L', socket, '-f', conf, ...args], { env, timeout: 10_000 })).stdout;

  // `read` holds the command back until pipe-pane records; `exec` keeps the pane's pid its own.
  await tmux(
    'new-session',
    '-d',
    '-x',
    String(options.cols ?? 80),
    '-y',
    String(options.rows ?? 24),
    '-s',
    'main',
    ...(options.cwd === undefined ? [] : ['-c', options.cwd]),
    '--',
    'sh',
    '-c',
    'read _go; exec "$@"',
    'sh',
    ...argv,
  );
  await tmux('pipe-pane', '-o', '-t', 'main', `cat >> '${raw}'`);
  const pid = Number((await tmux('display', '-p', '-t', 'main', '#{pane_pid}')).trim());
  await tmux('send-keys', '-t', 'main', 'Enter');

  const screen = async () => (await tmux('capture-pane', '-p', '-t', 'main')).replace(/\s+$/, '');
  const status = async () => {
    const [dead, code, signal] = (
      await tmux('display', '-p', '-t', 'main', '#{pane_dead}|#{pane_dead_status}|#{pane_dead_signal}')
    )
      .trim()
      .split('|');
    return {
      dead: dead === '1',
      code: code ? Number(code) : undefined,
      signal: signal ? Number(signal) : undefined,
    };
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  return {
    pid,
    async sendKeys(keys, opts = {}) {
      await tmux('send-keys', '-t', 'main', ...(opts.literal ? ['-l'] : []), keys);
    },
    screen,
    output: () => readFile(raw, 'utf8'),
    async cursorVisible() {
      return (await tmux('display', '-p', '-t', 'main', '#{cursor_flag}')).trim() === '1';
    },
    async waitForScreen(pattern, timeoutMs = 15_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const text = await screen();
        if (pattern.test(text)) return text;
        if (Date.now() > end) throw new Error(`the screen never matched ${pattern}:\n${text}`);
        await sleep(50);
      }
    },
    async exit(timeoutMs = 20_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const s = await status();
        if (s.dead && (s.code !== undefined || s.signal !== undefined))
          return { code: s.code, signal: s.signal };
        // tmux marks the pane dead when its pty closes, and now and then never reaps the process:
        // the status is then read from the zombie itself.
        const zombie = s.dead ? await zombieStatus(pid) : undefined;
        if (zombie) return zombie;
        if (Date.now() > end) {
          const text = await screen();
          try {
            process.kill(pid, 'SIGKILL');
          } catch {}
          throw new Error(`the command was still running after ${timeoutMs} ms (killed); screen:\n${text}`);
        }
        await sleep(50);
      }
    },
    async dispose() {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
      await tmux('kill-server').catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}
