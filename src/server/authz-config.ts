import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import type { AclRuleConfig } from './acl.js';
import { type ExtAuthzConfig, parseExtAuthzConfig } from './ext-authorizer.js';
import { parseAclRules } from './parse-acl-rules.js';
import type { ConfigReader } from './server-config.js';

/** Who decides what a token grants: the `acl:` list, then the `ext_authz:` program. */
export interface AuthzConfig {
  /** The ACL's rules; empty when the file has only `ext_authz` (then no rule ever matches). */
  readonly acl: readonly AclRuleConfig[];
  /** docker_auth's external authorizer, asked for resources no ACL rule matched. */
  readonly extAuthz?: ExtAuthzConfig;
}

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Where `command` runs from: a path (relative to the config file), or found in $PATH. */
function findCommand(command: string, baseDir: string): string | undefined {
  if (command.includes('/')) {
    const file = isAbsolute(command) ? command : resolve(baseDir, command);
    return executable(file) ? file : undefined;
  }
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir !== '' && executable(join(dir, command))) return command;
  }
  return undefined;
}

/**
 * Reads `acl:` and `ext_authz:` of a config document. As in docker_auth (auth_server/server/
 * config.go validate), one of them must be there: a forgotten or mis-indented `acl:` must not
 * start a server that denies everything, or grants what someone expected to be closed; `acl: []`
 * says "deny all" on purpose. Like docker_auth's ExtAuthzConfig.Validate, a program that cannot
 * be found or run is an error here, at start-up, not at the first request.
 */
export function parseAuthzConfig(reader: ConfigReader, acl: unknown, extAuthz: unknown): AuthzConfig {
  const fail = (path: string, why: string): never => reader.fail(path, why);
  if ((acl === undefined || acl === null) && (extAuthz === undefined || extAuthz === null)) {
    reader.fail(
      'acl',
      'missing: list the rules that grant access (first match wins; see the README), ' +
        'name an external authorizer (ext_authz: { command: … }), ' +
        'or write `acl: []` to deny everything to everyone',
    );
  }
  const rules = acl === undefined || acl === null ? [] : parseAclRules(acl, fail);
  if (extAuthz === undefined || extAuthz === null) return { acl: rules };
  const parsed = parseExtAuthzConfig(extAuthz, 'ext_authz', fail);
  const command = findCommand(parsed.command, reader.baseDir);
  if (command === undefined) {
    reader.fail(
      'ext_authz.command',
      `${JSON.stringify(parsed.command)} is not an executable file${parsed.command.includes('/') ? '' : ' in $PATH'}; ` +
        'give the path of the program (relative paths start at the config file)',
    );
  }
  return { acl: rules, extAuthz: { ...parsed, command } };
}
