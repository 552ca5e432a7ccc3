import { writeSync } from 'node:fs';
import { asksOnlyForVersion, regauthVersion, versionLine } from './version-line.js';

/**
 * Runs the CLI; resolves to the process exit code. Only the CLI prints or exits. The parser and
 * the commands are bundled apart (scripts/bundle-cli.mjs) and loaded here only when needed:
 * `--version` prints what commander would print without them, and this bundle holds little
 * else. `beforeLoad` runs once before they load (bin/regauth installs the code cache there,
 * which `--version` never needs).
 */
export async function main(argv: readonly string[], beforeLoad?: () => void): Promise<number> {
  const rest = asksOnlyForVersion(argv)
    ? writeToStdoutDirectly(Buffer.from(`${versionLine(regauthVersion())}\n`))
    : undefined;
  if (rest?.length === 0) return 0;
  beforeLoad?.();
  const { runCli } = await import('./program.js');
  return runCli(argv, rest);
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
