import { RegauthError } from '../../errors/regauth-error.js';
import {
  type Credential,
  type CredentialEnv,
  credentialFromSecret,
  hasSecret,
  IDENTITY_TOKEN_USERNAME,
} from './credential.js';

/**
 * How long a helper may take. Helpers that unlock a keychain or ask gpg-agent for a passphrase
 * are slow on the first call, but one that hangs must not hang every pull.
 */
export const DEFAULT_HELPER_TIMEOUT_MS = 10_000;

/** A helper answers a few hundred bytes; more means something is wrong (go-containerregistry caps at 1 MiB too). */
export const MAX_HELPER_OUTPUT_BYTES = 1024 * 1024;

/** Longest piece of a helper's stderr quoted in an error message. */
const MAX_STDERR_QUOTE = 200;

/** Helper names come from config files: keep them to a plain file name, never a path. */
const HELPER_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * Helpers print this (docker-credential-helpers `errCredentialsNotFoundMessage`: "credentials not
 * found in native keychain") on stdout and exit non-zero when they hold nothing for the server.
 * Matched loosely: some helpers word the rest of the sentence differently.
 */
const NOT_FOUND_RE = /credentials not found/i;

export interface CredentialHelperOptions {
  /** The environment the helper runs with; its PATH finds the program. Defaults to `process.env`. */
  readonly env?: CredentialEnv;
  /** Leaving it out means DEFAULT_HELPER_TIMEOUT_MS. */
  readonly timeoutMs?: number;
}

/** One `docker-credential-<name>` program, spoken to with the docker-credential-helpers protocol. */
export interface CredentialHelper {
  /** `docker-credential-<name>`, for messages and `FoundCredential.source`. */
  readonly program: string;
  /** `get`: the credential for a server URL, or `undefined` when the helper has none. */
  get(serverUrl: string): Promise<Credential | undefined>;
  /** `store`: identity tokens are stored with the user name `<token>`, as docker does. */
  store(serverUrl: string, credential: Credential): Promise<void>;
  /** `erase`: false when the helper held nothing for the server. */
  erase(serverUrl: string): Promise<boolean>;
}

export function isValidHelperName(name: string): boolean {
  return HELPER_NAME_RE.test(name);
}

interface HelperRun {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * A credential helper. Nothing runs until a method is called: helpers are slow and may prompt,
 * so they run only when a registry actually asks for credentials (a public pull runs none;
 * protocol: https://github.com/docker/docker-credential-helpers#development).
 */
export function credentialHelper(name: string, options: CredentialHelperOptions = {}): CredentialHelper {
  if (!isValidHelperName(name)) {
    throw new RegauthError(
      'ERR_INVALID_DOCKER_CONFIG',
      `"${name}" is not a credential helper name: expected the part after "docker-credential-", such as "pass" or "ecr-login"`,
    );
  }
  const program = `docker-credential-${name}`;
  const env = options.env ?? process.env;
  const timeoutMs = options.timeoutMs ?? DEFAULT_HELPER_TIMEOUT_MS;

  const failure = (action: string, serverUrl: string, run: HelperRun, unsafe: readonly string[] = []) => {
    const how = run.signal === null ? `exit code ${run.exitCode}` : `killed by ${run.signal}`;
    const line = firstLine(run.stderr, unsafe);
    return new RegauthError(
      'ERR_CREDENTIAL_HELPER',
      `credential helper ${program} failed to ${action} credentials for ${serverUrl} (${how})${line === '' ? '' : `: ${line}`}; ` +
        'check that the helper works, or change credHelpers/credsStore in your docker config',
    );
  };

  const exec = (action: string, serverUrl: string, input: string) =>
    runHelper(program, action, input, { env, timeoutMs, serverUrl });

  return {
    program,

    async get(serverUrl) {
      const run = await exec('get', serverUrl, serverUrl);
      if (run.exitCode !== 0) {
        if (NOT_FOUND_RE.test(run.stdout)) return undefined;
        // stdout is never quoted: a helper may print the credential before failing.
        throw failure('get', serverUrl, run);
      }
      const answer = parseAnswer(run.stdout);
      if (answer === undefined) {
        throw new RegauthError(
          'ERR_CREDENTIAL_HELPER',
          `credential helper ${program} answered "get" for ${serverUrl} with something other than ` +
            'the JSON object {"ServerURL","Username","Secret"} the helper protocol requires; check the helper',
        );
      }
      // Some helpers answer an empty object rather than "not found".
      const credential = credentialFromSecret(answer.username, answer.secret);
      return hasSecret(credential) ? credential : undefined;
    },

    async store(serverUrl, credential) {
      const [username, secret] =
        credential.identityToken === undefined
          ? [credential.username ?? '', credential.password ?? '']
          : [IDENTITY_TOKEN_USERNAME, credential.identityToken];
      const input = JSON.stringify({ ServerURL: serverUrl, Username: username, Secret: secret });
      const run = await exec('store', serverUrl, input);
      // The helper read the secret on stdin: if its message looks like an echo of that input,
      // it is left out (a shell's echo may even rewrite the escapes, so scrubbing is not enough).
      if (run.exitCode !== 0) {
        throw failure('store', serverUrl, run, [secret, JSON.stringify(secret).slice(1, -1), '"Secret"']);
      }
    },

    async erase(serverUrl) {
      const run = await exec('erase', serverUrl, serverUrl);
      if (run.exitCode === 0) return true;
      if (NOT_FOUND_RE.test(run.stdout)) return false;
      throw failure('erase', serverUrl, run);
    },
  };
}

function parseAnswer(stdout: string): { username: string; secret: string } | undefined {
  let value: unknown;
  try {
    value = JSON.parse(stdout);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const { Username: username = '', Secret: secret = '' } = value as Record<string, unknown>;
  if (typeof username !== 'string' || typeof secret !== 'string') return undefined;
  return { username, secret };
}

/** The first non-empty line of a helper's stderr, shortened; withheld when it holds one of `unsafe`. */
function firstLine(stderr: string, unsafe: readonly string[]): string {
  const line =
    stderr
      .split(/\r?\n/)
      .map((l) => l.trim())
      .find((l) => l !== '') ?? '';
  if (unsafe.some((text) => text !== '' && line.includes(text))) {
    return 'its message is left out because it repeats the secret it was given';
  }
  return line.length > MAX_STDERR_QUOTE ? `${line.slice(0, MAX_STDERR_QUOTE)}…` : line;
}

async function runHelper(
  program: string,
  action: string,
  input: string,
  options: { env: CredentialEnv; timeoutMs: number; serverUrl: string },
): Promise<HelperRun> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(options.env)) if (value !== undefined) env[key] = value;
  // Loaded when a helper runs: most CLI runs have none, and node:child_process (with dgram and
  // its internals) is a measurable part of a start-up.
  const { spawn } = await import('node:child_process');

  return new Promise<HelperRun>((resolve, reject) => {
    // Not detached: a helper such as docker-credential-pass may need the terminal for a
    // pinentry prompt, which a new session (setsid) would take away.
    const child = spawn(program, [action], { env, stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let size = 0;
    let settled = false;

    const finish = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      outcome();
    };
    // Resolve or reject without waiting for 'close': a grandchild (`sleep` in a shell script)
    // may keep the pipes open long after the helper itself was killed.
    const abandon = (error: RegauthError) =>
      finish(() => {
        child.kill('SIGKILL');
        child.stdout.destroy();
        child.stderr.destroy();
        reject(error);
      });

    const timer = setTimeout(() => {
      abandon(
        new RegauthError(
          'ERR_CREDENTIAL_HELPER',
          `credential helper ${program} timed out: no answer to "${action}" for ${options.serverUrl} ` +
            `within ${formatSeconds(options.timeoutMs)}; check that it is not waiting for input ` +
            '(a locked keychain, a passphrase prompt) and run it again',
        ),
      );
    }, options.timeoutMs);

    const collect = (into: Buffer[]) => (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_HELPER_OUTPUT_BYTES) {
        abandon(
          new RegauthError(
            'ERR_CREDENTIAL_HELPER',
            `credential helper ${program} printed more than ${MAX_HELPER_OUTPUT_BYTES} bytes for "${action}"; check the helper`,
          ),
        );
        return;
      }
      into.push(chunk);
    };
    child.stdout.on('data', collect(stdout));
    child.stderr.on('data', collect(stderr));

    child.on('error', (error: NodeJS.ErrnoException) => {
      const why =
        error.code === 'ENOENT'
          ? 'was not found on PATH; install it, or remove it from credHelpers/credsStore in your docker config'
          : error.code === 'EACCES'
            ? 'is not executable; check its permissions'
            : `could not be started (${error.code ?? error.message})`;
      finish(() => reject(new RegauthError('ERR_CREDENTIAL_HELPER', `credential helper ${program} ${why}`)));
    });
    child.on('close', (exitCode, signal) => {
      finish(() =>
        resolve({
          exitCode,
          signal,
          stdout: Buffer.concat(stdout).toString('utf8'),
          stderr: Buffer.concat(stderr).toString('utf8'),
        }),
      );
    });

    // A helper that exits without reading stdin makes the write fail with EPIPE: its exit code
    // tells the story, not the pipe.
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}
