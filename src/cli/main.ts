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
  // Every way out puts the terminal back first: signals and a closed pipe here, errors in run.
  const session = terminalSession();
  handleSignals(session);
  handleClosedOutput(session);
  handleUncaught(session, argv.includes('--debug'));
  try {
    if (asksOnlyForVersion(argv)) {
      process.stdout.write(`${versionLine(regauthVersion())}\n`);
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
