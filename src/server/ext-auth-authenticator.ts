import { spawn } from 'node:child_process';
import { RegauthError } from '../errors/regauth-error.js';
import type { Authentication, Authenticator } from './authenticator.js';

/**
 * Seconds a program may take before its process group is killed and the login answered 503:
 * docker_auth leaves it unbounded, which lets one hung program hold a check slot forever.
 */
export const DEFAULT_EXT_AUTH_TIMEOUT_S = 5;
/** Bytes of standard output read: labels are a small JSON object; more is a broken program. */
export const EXT_AUTH_MAX_OUTPUT_BYTES = 64 * 1024;
/** Labels and values per label a program may give: what an ACL can sensibly match on. */
export const EXT_AUTH_MAX_LABELS = 64;
export const EXT_AUTH_MAX_LABEL_VALUES = 256;

/** An external program that decides logins (docker_auth's `ext_auth`). */
export interface ExtAuthConfig {
  /** The program and its arguments, run without a shell. */
  readonly command: readonly string[];
  /** Left out: DEFAULT_EXT_AUTH_TIMEOUT_S. */
  readonly timeoutSeconds?: number;
  /**
   * The program's whole environment besides PATH: the server's own (which may hold secrets of
   * its host) is never passed on.
   */
  readonly env?: Readonly<Record<string, string>>;
}

/** A user name the program's one line of `user password` can carry, and ACL patterns can allow. */
const PROGRAM_USER_RE = /^[^\s/\p{Cc}]+$/u;
/** A password with a line break would end the line early; NUL cuts C strings. */
const PROGRAM_PASSWORD_RE = /^[^\r\n\0]*$/;

function failure(command: string, why: string): RegauthError {
  return new RegauthError(
    'ERR_AUTHENTICATOR',
    `ext_auth program ${command}: ${why}; the login was not decided`,
  );
}

/** Reads the labels a program printed: a JSON object of string arrays, as docker_auth's api.Labels. */
function parseLabels(output: string, command: string): Record<string, string[]> {
  if (output.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(output);
  } catch {
    // The output is not quoted: a program that echoes what it read would put the password here.
    throw failure(command, 'exited 0 but its output is not a JSON object of labels');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw failure(command, 'exited 0 but its output is not a JSON object of labels');
  }
  const entries = Object.entries(value);
  if (entries.length > EXT_AUTH_MAX_LABELS) {
    throw failure(command, `printed ${entries.length} labels, more than ${EXT_AUTH_MAX_LABELS}`);
  }
  const labels: Record<string, string[]> = Object.create(null);
  for (const [name, values] of entries) {
    if (
      !Array.isArray(values) ||
      values.length > EXT_AUTH_MAX_LABEL_VALUES ||
      !values.every((v) => typeof v === 'string')
    ) {
      throw failure(
        command,
        `label ${JSON.stringify(name.slice(0, 40))} is not a list of at most ${EXT_AUTH_MAX_LABEL_VALUES} strings`,
      );
    }
    labels[name] = values as string[];
  }
  return { ...labels };
}

/**
 * Runs a program per login, with docker_auth's contract (docs/Backend_ExtAuth.md in
 * cesanta/docker_auth): `user password` and a newline on standard input; exit 0 accepts (with
 * optional labels as a JSON object of string arrays on standard output), 1 refuses, 2 says the
 * user is not known here (the next authenticator is asked). Anything else — another exit code,
 * a signal, a timeout, output over EXT_AUTH_MAX_OUTPUT_BYTES or labels that do not parse — is a
 * failure: the login is answered 503 and the failure logged (by its exit code, never with what
 * the program read or wrote), and no later authenticator is asked in its place.
 *
 * The program runs without a shell, in its own process group (killed whole on timeout), with
 * only PATH and `env` in its environment.
 */
export function createExtAuthAuthenticator(config: ExtAuthConfig): Authenticator {
  const [program, ...args] = config.command;
  if (program === undefined || program === '') {
    throw new RegauthError(
      'ERR_INVALID_CONFIG',
      'ext_auth.command: must name a program, such as [/usr/local/bin/check-login]',
    );
  }
  const timeoutMs = (config.timeoutSeconds ?? DEFAULT_EXT_AUTH_TIMEOUT_S) * 1000;
  const env = { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', ...config.env };
  const name = program;

  const run = (user: string, password: string): Promise<Authentication> =>
    new Promise((resolve, reject) => {
      const child = spawn(program, args, {
        stdio: ['pipe', 'pipe', 'ignore'],
        detached: true,
        env,
        shell: false,
        windowsHide: true,
      });
      const chunks: Buffer[] = [];
      let size = 0;
      let settled = false;
      const killGroup = () => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      };
      const fail = (why: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        killGroup();
        reject(failure(name, why));
      };
      const timer = setTimeout(
        () => fail(`gave no answer within ${timeoutMs / 1000} s and was killed`),
        timeoutMs,
      );
      child.on('error', (err: NodeJS.ErrnoException) =>
        fail(`could not be started (${err.code ?? 'error'})`),
      );
      child.stdout.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > EXT_AUTH_MAX_OUTPUT_BYTES) {
          fail(`wrote more than ${EXT_AUTH_MAX_OUTPUT_BYTES} bytes and was killed`);
          return;
        }
        chunks.push(chunk);
      });
      // A program that exits without reading its input closes the pipe: its exit code still decides.
      child.stdin.on('error', () => {});
      child.stdin.end(`${user} ${password}\n`);
      child.on('close', (code, signal) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (code === 0) {
          try {
            const labels = parseLabels(Buffer.concat(chunks).toString('utf8'), name);
            resolve({ outcome: 'accepted', identity: { name: user, labels } });
          } catch (err) {
            reject(err);
          }
        } else if (code === 1) resolve({ outcome: 'refused' });
        else if (code === 2) resolve({ outcome: 'unknown' });
        else reject(failure(name, signal !== null ? `was killed by ${signal}` : `exited with code ${code}`));
      });
    });

  return {
    kind: 'ext_auth',
    async authenticate({ user, password }) {
      // `user password` on one line cannot carry these; the next authenticator may.
      if (!PROGRAM_USER_RE.test(user) || !PROGRAM_PASSWORD_RE.test(password)) return { outcome: 'unknown' };
      return run(user, password);
    },
  };
}
