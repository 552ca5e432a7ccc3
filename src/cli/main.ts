import { writeSync } from 'node:fs';
import { handleClosedOutput } from './handle-closed-output.js';
import { handleUncaught } from './handle-uncaught.js';
import { exitAfterGrace, handleSignals, terminalSession } from './terminal-session.js';
import { asksOnlyForVersion, regauthVersion, versionLine } from './version-line.js';

/**
 * Runs the CLI; resolves to the process exit code. Only the CLI prints or exits. The parser and
 * the commands are bundled apart (scripts/bundle-cli.mjs) and loaded here only when needed:
 * `--version` prints what commander would print without them.
 */
export async function main(argv: readonly string[]): Promise<number> {
  const rest = asksOnlyForVersion(argv)
    ? writeToStdoutDirectly(Buffer.from(`${versionLine(regauthVersion())}\n`))
    : undefined;
  if (rest?.length === 0) return 0;
  // Every way out puts the terminal back first: signals and a closed pipe here, errors in run.
  const session = terminalSession();
  handleSignals(session);
  handleClosedOutput(session);
  handleUncaught(session, argv.includes('--debug'));
  try {
    if (rest !== undefined) {
      process.stdout.write(rest);
      return 0;
    }
    const { run } = await import('./program.js');
    const code = await run(argv);
    if (code !== 0) exitAfterGrace(code);
    return code;
  } finally {
    session.restore();
  }
}

/**
 * Writes `text` to file descriptor 1 without process.stdout, whose creation loads node:net and
 * node:stream: for `--version` that is more than the rest of its work. Returns what is left to
 * write the usual way (nothing when done): all that is left when the descriptor would block (a
 * non-blocking pipe's EAGAIN) or fails otherwise. A closed pipe ends quietly, as
 * handleClosedOutput ends every other command.
 */
function writeToStdoutDirectly(bytes: Buffer): Buffer {
  let written = 0;
  try {
    while (written < bytes.length) written += writeSync(1, bytes, written);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EPIPE') return Buffer.alloc(0);
  }
  return bytes.subarray(written);
}
