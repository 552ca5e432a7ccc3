import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { isRegauthError } from '../errors/regauth-error.js';

/** Thrown by a command for a usage problem commander cannot see: exit code 2. */
export class UsageError extends Error {}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

export function positiveInteger(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError('expected a whole number of at least 1');
  }
  return n;
}

function buildProgram(): Command {
  const program = new Command('regauth')
    .description('Docker/OCI registry token authentication: client, CLI and token server')
    .version(version(), '-V, --version')
    .option('--debug', 'print stack traces with errors')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  program
    .command('serve')
    .description('run the token server that a registry trusts (realm: http(s)://<listen>/token)')
    .requiredOption('-c, --config <file>', 'YAML config file (see README: token server)')
    .action(async (opts: { config: string }) => {
      const { serveCommand } = await import('./commands/serve.js');
      await serveCommand(opts);
    });

  program
    .command('keygen')
    .description("write a token-signing key and a self-signed certificate (the registry's rootcertbundle)")
    .requiredOption('--key <file>', 'where to write the private key (PEM, mode 0600)')
    .requiredOption('--cert <file>', 'where to write the certificate (PEM)')
    .addOption(
      new Option('--algorithm <alg>', 'signature algorithm').choices(['ES256', 'RS256']).default('ES256'),
    )
    .option('--subject <cn>', 'certificate subject common name', 'regauth token signer')
    .option('--days <n>', 'days the certificate is valid', positiveInteger, 365)
    .action(
      async (opts: {
        key: string;
        cert: string;
        algorithm: 'ES256' | 'RS256';
        subject: string;
        days: number;
      }) => {
        const { keygenCommand } = await import('./commands/keygen.js');
        await keygenCommand(opts);
      },
    );

  return program;
}

/** Runs the CLI; resolves to the process exit code. Only the CLI prints or exits. */
export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  const debug = argv.includes('--debug');
  try {
    await program.parseAsync(argv as string[], { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; commander has already printed its message.
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`regauth: ${err.message}\n`);
      return 2;
    }
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`regauth: error: ${message}\n`);
    if (debug && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    else if (!isRegauthError(err)) process.stderr.write('(run with --debug for details)\n');
    return 1;
  }
}
