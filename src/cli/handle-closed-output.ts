import type { TerminalSession } from './terminal-session.js';

/**
 * A reader that stops early (`regauth config R | head -c 100`) closes the pipe, and the next
 * write fails with EPIPE. Node ignores SIGPIPE, so without a handler the failure surfaces as an
 * uncaught 'error' with a stack trace. Like other Unix tools that are cut off, end quietly
 * instead (status 0: the reader has what it wanted); any other write failure is one line and
 * status 1. A closed stderr changes nothing but the words lost. The handlers stay for the life of the process: the failure of a write queued just
 * before main returned arrives after it.
 */
export function handleClosedOutput(
  session: TerminalSession,
  exit: (code: number) => never = (code) => process.exit(code),
  streams: { readonly stdout: NodeJS.WritableStream; readonly stderr: NodeJS.WritableStream } = {
    stdout: process.stdout,
    stderr: process.stderr,
  },
): void {
  streams.stdout.on('error', (err: NodeJS.ErrnoException) => {
    session.restore();
    if (err.code !== 'EPIPE') {
      try {
        streams.stderr.write(
          `regauth: error: cannot write to standard output (${err.code ?? err.message})\n`,
        );
      } catch {}
    }
    exit(err.code === 'EPIPE' ? 0 : 1);
  });
  // Closed stderr: nothing more can be said, but the command's own status still stands (a
  // failure whose message cannot be printed is a failure all the same).
  streams.stderr.on('error', () => {});
}
