import { sanitizeServerText } from '../errors/sanitize-server-text.js';
import type { TerminalSession } from './terminal-session.js';

/**
 * The last net under every command: a failure that escaped its promise chain (a stream error no
 * one awaited) would make Node print a stack trace and leave the bars and a hidden cursor
 * behind. Instead the terminal is put back and the failure is one `regauth: error:` line, with
 * the stack only under --debug, and the status is 1.
 */
export function handleUncaught(
  session: TerminalSession,
  debug: boolean,
  io: { readonly write: (text: string) => void; readonly exit: (code: number) => never } = {
    write: (text) => process.stderr.write(text),
    exit: (code) => process.exit(code),
  },
): void {
  const fail = (err: unknown) => {
    session.restore();
    const message = err instanceof Error ? err.message : String(err);
    try {
      io.write(`regauth: error: ${sanitizeServerText(message)}\n`);
      io.write(
        debug && err instanceof Error && err.stack
          ? `${sanitizeServerText(err.stack)}\n`
          : '(an unexpected failure; run with --debug for details)\n',
      );
    } catch {}
    io.exit(1);
  };
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
}
