import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { isRegauthError, RegauthError } from '../errors/regauth-error.js';
import { sanitizeServerText } from '../errors/sanitize-server-text.js';
import { COMPLETION_SHELLS, type CompletionShell } from './completion-script.js';
import { explainedMessage } from './explain-error.js';
import { handleClosedOutput } from './handle-closed-output.js';
import { handleUncaught } from './handle-uncaught.js';
import { applyHelpExamples } from './help-examples.js';
import { Interrupted } from './interrupted.js';
import { exitAfterGrace, handleSignals, terminalSession } from './terminal-session.js';
import { regauthVersion, versionLine } from './version-line.js';

export function positiveInteger(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError('expected a whole number of at least 1');
  }
  return n;
}

/** Gathers a repeated option's values. */
function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** The flags of every command that talks to a registry. */
function clientCommand(program: Command, name: string, description: string): Command {
  return program
    .command(name)
    .description(description)
    .option('--trace', 'show the HTTP exchange on stderr (secrets redacted)')
    .option('-u, --username <user>', 'user name (the password comes from --password-stdin)')
    .option('--password-stdin', 'read the password from standard input')
    .option(
      '--authfile <file>',
      'credentials file in docker config.json format (default: docker/podman config)',
    )
    .option('--insecure', 'plain HTTP for a registry that is not on loopback')
    .option('--ca-file <file>', 'trust the CA certificates in this PEM file too')
    .option('--no-token-cache', 'neither read nor write the token cache in ~/.cache/regauth');
}

/** Every command of the CLI, in the order `--help` lists them. */
export const COMMAND_NAMES = [
  'serve',
  'keygen',
  'manifest',
  'digest',
  'config',
  'token',
  'tags',
  'catalog',
  'login',
  'logout',
  'blob',
  'pull',
  'push',
  'copy',
  'delete',
  'untag',
  'tag',
  'referrers',
  'completion',
] as const;

/**
 * The one command a command line runs, when the parser needs no other: a run builds only that
 * command's parser (commander's options, help texts and examples of twenty commands cost more
 * than a warm `manifest` spends on its own request). Undefined, and the whole program, for
 * anything the other commands show in: help (`-h`, `--help`, `help`), an unknown or misspelt
 * command (commander suggests a near name), no command, program options other than `--debug`,
 * and `completion`, whose script lists every command.
 */
export function commandToBuild(argv: readonly string[]): string | undefined {
  let i = 0;
  while (argv[i] === '--debug') i++;
  const name = argv[i];
  if (name === undefined || name === 'completion') return undefined;
  if (!(COMMAND_NAMES as readonly string[]).includes(name)) return undefined;
  if (argv.some((a) => a === '-h' || a === '--help')) return undefined;
  return name;
}

/** The program; with `only`, that command is the one it knows (commandToBuild). */
export function buildProgram(only?: string): Command {
  const wanted = (name: string) => only === undefined || only === name;
  const program = new Command('regauth')
    .description('Docker/OCI registry token authentication: client, CLI and token server')
    .version(versionLine(regauthVersion()), '-V, --version')
    .option('--debug', 'print stack traces with errors')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    // commander's own messages ("error: missing required argument…") get the one prefix too.
    .configureOutput({ outputError: (text, write) => write(`regauth: ${text}`) });

  if (wanted('serve'))
    program
      .command('serve')
      .description(
        "run the token server that a registry trusts (realm: http(s)://<listen>/token); `serve revoke` revokes an account's tokens on the running server",
      )
      .argument(
        '[action]',
        'revoke: revoke --account: in Redis when the config has store: redis://…, else at the running server (admin endpoint)',
      )
      .requiredOption('-c, --config <file>', 'YAML config file (see README: token server)')
      .option(
        '--print-bundle',
        "check the signing keys, print their certificates' PEM bundle (the registry's rootcertbundle) and exit",
      )
      .option('--check', 'check the config, key and users file, then exit; with --scope: an ACL dry run')
      .option(
        '--account <name>',
        'with --check: the account to check (left out: anonymous); with revoke: the account to revoke',
      )
      .option(
        '--before <time>',
        'with revoke: refuse what was issued before this RFC 3339 time (left out: now)',
      )
      .option('--url <url>', "with revoke: the running server's base URL (left out: from the config)")
      .option('--label <name=value>', 'with --check: a label of the account (repeat)', collect, [])
      .option('--ip <address>', "with --check: the client's address")
      .option(
        '--scope <scope>',
        'with --check: a scope to check, such as repository:app:pull,push (repeat)',
        collect,
        [],
      )
      .action(
        async (
          action: string | undefined,
          opts: {
            config: string;
            printBundle?: boolean;
            check?: true;
            account?: string;
            before?: string;
            url?: string;
            label: string[];
            ip?: string;
            scope: string[];
          },
        ) => {
          if (action !== undefined) {
            if (action !== 'revoke') {
              throw new RegauthError(
                'ERR_USAGE',
                `serve takes no ${JSON.stringify(action.slice(0, 40))}; the one action is revoke`,
              );
            }
            const { serveRevokeCommand } = await import('./commands/serve-revoke.js');
            await serveRevokeCommand(opts);
            return;
          }
          if (opts.before !== undefined || opts.url !== undefined) {
            throw new RegauthError('ERR_USAGE', '--before and --url go with serve revoke');
          }
          if (opts.check && opts.printBundle) {
            throw new RegauthError('ERR_USAGE', '--check and --print-bundle are two separate runs: give one');
          }
          if (opts.check) {
            const { serveCheckCommand } = await import('./commands/serve-check.js');
            await serveCheckCommand(opts);
            return;
          }
          if (
            opts.account !== undefined ||
            opts.ip !== undefined ||
            opts.label.length > 0 ||
            opts.scope.length > 0
          ) {
            throw new RegauthError('ERR_USAGE', '--account, --label, --ip and --scope go with --check');
          }
          const { serveCommand } = await import('./commands/serve.js');
          await serveCommand(opts);
        },
      );

  if (wanted('keygen'))
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

  if (wanted('manifest'))
    clientCommand(program, 'manifest', 'print a manifest exactly as the registry serves it')
      .argument('<ref>', 'image reference, e.g. alpine:3.20 or localhost:5000/app@sha256:…')
      .option('--platform <os/arch>', 'from an index, the manifest for this platform')
      .action(async (ref: string, opts) => {
        const { manifestCommand } = await import('./commands/manifest.js');
        await manifestCommand(ref, opts);
      });

  if (wanted('digest'))
    clientCommand(
      program,
      'digest',
      'print the manifest digest of each reference, one per line (failures: ref<TAB>error on stderr, exit 1)',
    )
      .argument('<ref...>', 'image references')
      .option('--platform <os/arch>', "the platform manifest's digest instead of the index's")
      .action(async (refs: string[], opts) => {
        const { digestCommand } = await import('./commands/digest.js');
        await digestCommand(refs, opts);
      });

  if (wanted('config'))
    clientCommand(program, 'config', 'print the image config JSON')
      .argument('<ref>', 'image reference')
      .option('--platform <os/arch>', "platform to pick from an index (default: this machine's)")
      .action(async (ref: string, opts) => {
        const { configCommand } = await import('./commands/config.js');
        await configCommand(ref, opts);
      });

  if (wanted('token'))
    clientCommand(program, 'token', "get a token from the registry's realm and print it")
      .argument('<target>', 'image reference (pull scope on its repository) or registry')
      .option(
        '--scope <scope>',
        'extra scope, e.g. repository:a/b:pull,push (repeatable)',
        (v: string, prev: string[] = []) => [...prev, v],
      )
      .option('--decode', 'print the JWT header and claims instead of the token')
      .action(async (target: string, opts) => {
        const { tokenCommand } = await import('./commands/token.js');
        await tokenCommand(target, opts);
      });

  if (wanted('tags'))
    clientCommand(program, 'tags', 'list every tag of a repository')
      .argument('<repo>', 'repository, e.g. localhost:5000/app')
      .action(async (repo: string, opts) => {
        const { tagsCommand } = await import('./commands/tags.js');
        await tagsCommand(repo, opts);
      });

  if (wanted('catalog'))
    clientCommand(program, 'catalog', 'list the repositories of a registry')
      .argument('<registry>', 'registry, e.g. localhost:5000')
      .action(async (registry: string, opts) => {
        const { catalogCommand } = await import('./commands/catalog.js');
        await catalogCommand(registry, opts);
      });

  if (wanted('login'))
    clientCommand(program, 'login', 'check credentials through the token flow and store them as docker does')
      .argument('<registry>', 'registry, e.g. localhost:5000 or docker.io')
      .option('-p, --password <password>', 'password (insecure: others can see it; use --password-stdin)')
      .action(async (registry: string, opts) => {
        const { loginCommand } = await import('./commands/login.js');
        await loginCommand(registry, opts);
      });

  if (wanted('logout'))
    program
      .command('logout')
      .description("remove a registry's stored credentials and cached tokens")
      .option(
        '--authfile <file>',
        'credentials file in docker config.json format (default: docker/podman config)',
      )
      .argument('<registry>', 'registry')
      .action(async (registry: string, opts) => {
        const { logoutCommand } = await import('./commands/login.js');
        await logoutCommand(registry, opts);
      });

  const transferOptions = (cmd: Command) =>
    cmd
      .option('--jobs <n>', 'blobs in flight at once', positiveInteger, 4)
      .option('--quiet', 'no progress display')
      .option('--json', 'print a summary (digests, sizes, blobs sent/skipped/mounted) on stdout');

  if (wanted('blob'))
    clientCommand(program, 'blob', 'stream one blob to stdout, verified against its digest')
      .argument('<repo@digest>', 'e.g. localhost:5000/app@sha256:…')
      .action(async (ref: string, opts) => {
        const { blobCommand } = await import('./commands/transfer.js');
        await blobCommand(ref, opts);
      });

  if (wanted('pull'))
    transferOptions(
      clientCommand(program, 'pull', 'pull an image into an OCI layout (or a docker-archive tar)'),
    )
      .argument('<ref>', 'image reference')
      .argument('[dir]', 'OCI layout folder (created when missing)')
      .option('--platform <os/arch>', "platform to pick from an index (default: this machine's)")
      .option('--all-platforms', 'keep the whole index with every platform')
      .addOption(
        new Option('--format <format>', 'output format').choices(['oci', 'docker-archive']).default('oci'),
      )
      .option('--output <file>', 'the tar file for --format docker-archive')
      .action(async (ref: string, dir: string | undefined, opts) => {
        const { pullCommand } = await import('./commands/transfer.js');
        await pullCommand(ref, dir, opts);
      });

  if (wanted('push'))
    transferOptions(clientCommand(program, 'push', 'push an image from an OCI layout'))
      .argument('<dir[:name]>', 'OCI layout folder, and the image ref.name when it holds several')
      .argument('<ref>', 'destination image reference')
      .action(async (dir: string, ref: string, opts) => {
        const { pushCommand } = await import('./commands/transfer.js');
        await pushCommand(dir, ref, opts);
      });

  if (wanted('copy'))
    transferOptions(
      clientCommand(program, 'copy', 'copy an image between repositories or registries, digests preserved'),
    )
      .argument('<src>', 'source image reference')
      .argument('<dst>', 'destination image reference')
      .option('--platform <os/arch>', 'copy only this platform out of an index')
      .option('--src-creds <user[:password]>', 'account for the source (no password: asked on a terminal)')
      .option(
        '--dest-creds <user[:password]>',
        'account for the destination (no password: asked on a terminal)',
      )
      .option('--src-authfile <file>', 'credentials file for the source (instead of --authfile)')
      .option('--dest-authfile <file>', 'credentials file for the destination (instead of --authfile)')
      .action(async (src: string, dst: string, opts) => {
        const { copyCommand } = await import('./commands/transfer.js');
        await copyCommand(src, dst, opts);
      });

  if (wanted('delete'))
    clientCommand(program, 'delete', 'delete an image by tag or digest, naming the tags that go with it')
      .argument('<ref>', 'image reference')
      .option('--force', 'delete even when other tags point at the same image (they are deleted too)')
      .option('--tag', 'remove only the tag, as regauth untag does')
      .addHelpText(
        'after',
        `
Registries delete by digest: deleting an image removes every tag that points at it.
  delete R/repo:tag     resolves the tag and lists the repository's tags; when other tags
                        share its digest, refuses and names them (nothing is deleted).
                        Use --force to delete the image and all those tags, or
                        --tag (regauth untag R/repo:tag) to remove only this tag.
  delete R/repo@sha256:…  deletes that image, as crane and regctl do; the tags that went
                        with it are listed.
Prints "Untagged: R/repo:tag" for every tag removed and "Deleted: R/repo@digest".`,
      )
      .action(async (ref: string, opts) => {
        const { deleteCommand } = await import('./commands/delete.js');
        await deleteCommand(ref, opts);
      });

  if (wanted('untag'))
    clientCommand(program, 'untag', 'remove one tag; the image and its other tags stay')
      .argument('<ref>', 'repository and tag, e.g. localhost:5000/app:old')
      .addHelpText(
        'after',
        `
Uses the registry's tag delete (OCI distribution 1.1) where it has one; otherwise points the tag
at a unique placeholder manifest and deletes that by digest (the registry needs deletes enabled:
storage.delete.enabled: true on distribution). Prints "Untagged: R/repo:tag".`,
      )
      .action(async (ref: string, opts) => {
        const { untagCommand } = await import('./commands/untag.js');
        await untagCommand(ref, opts);
      });

  if (wanted('tag'))
    clientCommand(program, 'tag', 'tag an image again within its repository; no blob moves')
      .argument('<src>', 'image reference, e.g. localhost:5000/app:v1 or localhost:5000/app@sha256:…')
      .argument('<newtag...>', 'new tags, bare (v1.0) or as localhost:5000/app:v1.0')
      .action(async (src: string, tags: string[], opts) => {
        const { tagCommand } = await import('./commands/tag.js');
        await tagCommand(src, tags, opts);
      });

  if (wanted('referrers'))
    clientCommand(program, 'referrers', 'list the manifests that refer to an image (OCI 1.1)')
      .argument('<ref>', 'image reference')
      .option('--artifact-type <type>', 'only referrers of this artifact type')
      .action(async (ref: string, opts) => {
        const { referrersCommand } = await import('./commands/referrers.js');
        await referrersCommand(ref, opts);
      });

  if (wanted('completion'))
    program
      .command('completion')
      .description('print a shell completion script (commands, options, file names)')
      .addArgument(new Argument('<shell>', 'the shell').choices(COMPLETION_SHELLS))
      .action(async (shell: CompletionShell) => {
        const { completionScript } = await import('./completion-script.js');
        process.stdout.write(completionScript(program, shell));
      });

  applyHelpExamples(program);
  return program;
}

/**
 * The CLI past `--version` (main.ts): runs the command line with the terminal put back on every
 * way out (signals and a closed pipe here, errors in run); resolves to the exit code. `rest` is
 * what main could not write of the version line at once, written here the usual way instead.
 */
export async function runCli(argv: readonly string[], rest?: Buffer): Promise<number> {
  const session = terminalSession();
  handleSignals(session);
  handleClosedOutput(session);
  handleUncaught(session, argv.includes('--debug'));
  try {
    if (rest !== undefined) {
      process.stdout.write(rest);
      return 0;
    }
    const code = await run(argv);
    if (code !== 0) exitAfterGrace(code);
    return code;
  } finally {
    session.restore();
  }
}

/** Parses the command line and runs the command; resolves to the exit code. */
export async function run(argv: readonly string[]): Promise<number> {
  const program = buildProgram(commandToBuild(argv));
  const debug = argv.includes('--debug');
  try {
    await program.parseAsync(argv as string[], { from: 'user' });
    return 0;
  } catch (err) {
    // The bars stop before the error is printed, so it stands whole on a line of its own.
    terminalSession().restore();
    // Ctrl-C at a prompt: the terminal is already restored, and nothing needs saying.
    if (err instanceof Interrupted) return err.exitCode;
    if (err instanceof CommanderError) {
      // Help and version exit 0; commander has already printed its message.
      return err.exitCode === 0 ? 0 : 2;
    }
    // A usage problem commander cannot see (a bad reference or --platform, a missing password):
    // exit code 2. Messages quote what servers sent (and a SyntaxError quotes the body it choked on): no
    // control character of theirs reaches the terminal.
    if (isRegauthError(err, 'ERR_USAGE') || isRegauthError(err, 'ERR_INVALID_REFERENCE')) {
      process.stderr.write(`regauth: error: ${sanitizeServerText(explainedMessage(err))}\n`);
      return 2;
    }
    const message = explainedMessage(err);
    process.stderr.write(`regauth: error: ${sanitizeServerText(message)}\n`);
    if (debug && err instanceof Error && err.stack)
      process.stderr.write(`${sanitizeServerText(err.stack)}\n`);
    else if (!isRegauthError(err)) process.stderr.write('(run with --debug for details)\n');
    return 1;
  }
}
