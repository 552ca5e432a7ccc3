import type { TerminalSession } from './terminal-session.js';

/**
 * A reader that stops early (`regauth config R | head -c 100`) closes the pipe, and the next
 * write fails with EPIPE. Node ignores SIGPIPE, so without this the failure would surface as an
 * uncaught 'error' with a stack trace; like other Unix tools that are cut off, end quietly
 * instead: the reader has all it wanted. Returns a function that removes the handlers.
 */
export function handleClosedOutput(
  session: TerminalSession,
  exit: (code: number) => never = (code) => process.exit(code),
  streams: readonly NodeJS.WriteStream[] = [process.stdout, process.stderr],
): () => void {
  const removers = streams.map((stream) => {
    const onError = (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
      session.restore();
      exit(0);
    };
    stream.on('error', onError);
    return () => stream.removeListener('error', onError);
  });
  return () => {
    for (const remove of removers) remove();
  };
}
