import { spawn } from 'node:child_process';
import { RegauthError } from '../errors/regauth-error.js';
import type { Authorizer } from './authenticator.js';
import { createAuthorizerChain, type ScopeAuthorizer } from './authorizer-chain.js';

/**
 * How long one run of the program may take. A token request waits for it, and clients give up
 * on the realm after about 30 s; an authorizer that is that slow is broken, not busy.
 */
export const DEFAULT_EXT_AUTHZ_TIMEOUT_S = 5;

/** `ext_authz:` in the config: docker_auth's external authorizer (examples/reference.yml). */
export interface ExtAuthzConfig {
  /** The program: a path, or a name looked up in $PATH. */
  readonly command: string;
  readonly args: readonly string[];
  /** Seconds one run may take before it is killed and the request fails. */
  readonly timeoutSeconds: number;
}

/** Checks the `ext_authz:` mapping; problems go to `fail` with their key path under `path`. */
export function parseExtAuthzConfig(
  value: unknown,
  path: string,
  fail: (path: string, why: string) => never,
): ExtAuthzConfig {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(path, 'must be a mapping');
  const obj = value as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!['command', 'args', 'timeout_seconds'].includes(key)) {
      fail(`${path}.${key}`, 'unknown key (known here: command, args, timeout_seconds)');
    }
  }
  if (typeof obj.command !== 'string' || obj.command === '')
    fail(`${path}.command`, 'must be a program to run');
  const args = obj.args ?? [];
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) {
    fail(`${path}.args`, 'must be a list of strings');
  }
  const timeout = obj.timeout_seconds ?? DEFAULT_EXT_AUTHZ_TIMEOUT_S;
  if (typeof timeout !== 'number' || !(timeout > 0) || timeout > 300) {
    fail(`${path}.timeout_seconds`, 'must be a number of seconds, more than 0 and at most 300');
  }
  return { command: obj.command, args: args as string[], timeoutSeconds: timeout };
}

/** What the program reads on stdin: docker_auth's authz.AuthRequestInfo as Go marshals it. */
interface AuthRequestInfo {
  readonly Account: string;
  readonly Type: string;
  readonly Name: string;
  readonly Service: string;
  readonly IP: string | null;
  readonly Actions: readonly string[];
  readonly Labels: Readonly<Record<string, readonly string[]>> | null;
}

function runOnce(config: ExtAuthzConfig, info: AuthRequestInfo): Promise<number> {
  return new Promise((resolve, reject) => {
    // Only PATH: the server's environment may hold secrets (bind_password_env, tokens). In its
    // own process group, so a timeout ends whatever the program started too.
    const child = spawn(config.command, config.args, {
      stdio: ['pipe', 'ignore', 'ignore'],
      env: { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin' },
      detached: true,
      shell: false,
      windowsHide: true,
    });
    const fail = (why: string) =>
      reject(new RegauthError('ERR_AUTH_BACKEND', `the ext_authz program ${config.command} ${why}`));
    // On time-out the request fails once the program is gone, never while it still runs.
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, config.timeoutSeconds * 1000);
    child.on('error', (err) => {
      clearTimeout(timer);
      fail(`could not run: ${err.message}`);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) fail(`took longer than ${config.timeoutSeconds} s; it was stopped`);
      else if (code === null) fail(`was ended by ${signal ?? 'a signal'}`);
      else resolve(code);
    });
    // A program that exits without reading its input is no error of ours.
    child.stdin.on('error', () => {});
    child.stdin.end(`${JSON.stringify(info)}\n`);
  });
}

/**
 * A link of an authorizer chain that asks a program, once per resource, under docker_auth's
 * ext_authz contract (auth_server/authz/ext_authz.go): the request as JSON on stdin; exit 0
 * grants every action asked for the resource, exit 1 none (a decision: no later authorizer is
 * asked); any other exit, a signal, or a run past the timeout fails the request (docker_auth
 * answers such a failure with an error, never a grant). The program's output is never read nor
 * logged: it may print what it used to decide.
 */
export function createExtScopeAuthorizer(config: ExtAuthzConfig): ScopeAuthorizer {
  return {
    kind: 'ext_authz',
    async decide(identity, scope, context) {
      const code = await runOnce(config, {
        Account: identity?.name ?? '',
        Type: scope.type,
        Name: scope.name,
        Service: context.service,
        IP: context.address === '' ? null : context.address,
        Actions: scope.actions,
        Labels: identity === undefined ? null : identity.labels,
      });
      if (code === 0) return { granted: scope.actions };
      if (code === 1) return { granted: [] };
      throw new RegauthError(
        'ERR_AUTH_BACKEND',
        `the ext_authz program ${config.command} exited with ${code}; 0 grants, 1 denies`,
      );
    },
  };
}

/**
 * An Authorizer that asks only the program (createExtScopeAuthorizer), per resource, one after
 * the other, so one token request runs at most one program at a time.
 */
export function createExtAuthorizer(config: ExtAuthzConfig): Authorizer {
  return createAuthorizerChain([createExtScopeAuthorizer(config)]);
}
