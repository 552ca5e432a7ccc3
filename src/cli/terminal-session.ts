/**
 * The terminal state one CLI run owns: whatever draws on the terminal (progress bars hide the
 * cursor and turn off line wrapping) registers how to put it back, and every way out of the
 * process — success, error, usage error, SIGINT, SIGTERM, SIGHUP — puts it back first. So the
 * exit paths live in one place (main) instead of a try/finally in each command. A file that
 * must not outlive an interrupted command (a half-written archive) registers its removal too.
 */
export interface TerminalSession {
  /** Registers how to put the terminal back; the returned function unregisters it. */
  onRestore(restore: () => void): () => void;
  /** Puts the terminal back: runs every registered restore once, newest first. */
  restore(): void;
  /**
   * Calls `listener(true)` when the session starts holding something to restore (at once if it
   * already does) and `listener(false)` when it no longer does.
   */
  onActive(listener: (active: boolean) => void): void;
  /**
   * Writes a line (a warning) to stderr: while progress bars are drawn, through them, so the
   * line appears above the bars instead of tearing through a redraw.
   */
  log(line: string): void;
  /** While bars are drawn: how a line gets above them. The returned function unregisters it. */
  onLog(writer: (line: string) => void): () => void;
}

/**
 * main and each command are bundled separately (scripts/bundle-cli.mjs), so each bundle holds
 * its own copy of this module: the session lives on the process under a registered symbol for
 * all of them to find, as the RegauthError brand does.
 */
const SESSION = Symbol.for('regauth.terminalSession');

function createTerminalSession(): TerminalSession {
  const restores = new Set<() => void>();
  const listeners: ((active: boolean) => void)[] = [];
  const writers: ((line: string) => void)[] = [];
  const remove = (restore: () => void) => {
    if (restores.delete(restore) && restores.size === 0) for (const l of listeners) l(false);
  };
  return {
    onRestore(restore) {
      restores.add(restore);
      if (restores.size === 1) for (const l of listeners) l(true);
      return () => remove(restore);
    },
    restore() {
      for (const restore of [...restores].reverse()) {
        remove(restore);
        try {
          restore();
        } catch {
          // One failing restore (a closed terminal) must not keep the others from running.
        }
      }
    },
    onActive(listener) {
      listeners.push(listener);
      if (restores.size > 0) listener(true);
    },
    log(line) {
      const text = line.endsWith('\n') ? line : `${line}\n`;
      const writer = writers[writers.length - 1];
      if (writer) writer(text);
      else process.stderr.write(text);
    },
    onLog(writer) {
      writers.push(writer);
      return () => {
        const at = writers.lastIndexOf(writer);
        if (at >= 0) writers.splice(at, 1);
      };
    },
  };
}

/** The process's one terminal session. */
export function terminalSession(): TerminalSession {
  const holder = globalThis as { [SESSION]?: TerminalSession };
  holder[SESSION] ??= createTerminalSession();
  return holder[SESSION];
}

/**
 * Exit codes for the signals a person sends: 128 + the signal number, what a shell reports for a
 * process the signal killed (POSIX, "Exit Status for Commands"), so scripts see the same status
 * as for a tool that does not catch them.
 */
export const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;

/**
 * How long the process may linger after main returned an error before it is ended. Work that
 * lost the race to the first failure (a request still retrying, a socket held open by a
 * registry) must not keep a failed command on the screen; a clean exit takes milliseconds.
 */
export const EXIT_GRACE_MS = 2000;

export interface SignalIo {
  readonly write: (text: string) => void;
  readonly exit: (code: number) => never;
}

/**
 * While the session holds the terminal (progress bars are drawn), SIGINT, SIGTERM or SIGHUP put
 * it back, say so in one line and exit with the signal's conventional code. Otherwise the
 * signals keep their meaning: `regauth serve` reloads on SIGHUP and drains on SIGTERM, and a
 * command that drew nothing ends as Node ends on a signal.
 */
export function handleSignals(
  session: TerminalSession,
  io: SignalIo = {
    write: (text) => process.stderr.write(text),
    exit: (code) => process.exit(code),
  },
): void {
  const handlers = Object.entries(SIGNAL_EXIT_CODES).map(([signal, code]) => {
    const handler = () => {
      session.restore();
      try {
        io.write(`regauth: interrupted (${signal})\n`);
      } catch {
        // The terminal may be gone (SIGHUP): exiting matters more than saying so.
      }
      io.exit(code);
    };
    return { signal, handler };
  });
  session.onActive((active) => {
    for (const { signal, handler } of handlers) {
      process.removeListener(signal, handler);
      if (active) process.on(signal, handler);
    }
  });
}

/** Ends the process with `code` if it is still alive after {@link EXIT_GRACE_MS}; never keeps it alive. */
export function exitAfterGrace(code: number): void {
  setTimeout(() => process.exit(code), EXIT_GRACE_MS).unref();
}
