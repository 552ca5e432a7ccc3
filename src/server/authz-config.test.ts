import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegauthError } from '../errors/regauth-error.js';
import { DEFAULT_EXT_AUTHZ_TIMEOUT_S } from './ext-authorizer.js';
import { parseServerConfig } from './server-config.js';

describe('parseServerConfig: acl and ext_authz', () => {
  let dir: string;
  let file: string;
  const token = {
    issuer: 'regauth',
    service: 'registry.example.com',
    key: 'key.pem',
    certificate: 'cert.pem',
  };
  const parse = (raw: Record<string, unknown>) => parseServerConfig({ token, ...raw }, file);
  const error = (raw: Record<string, unknown>): string => {
    try {
      parse(raw);
    } catch (err) {
      expect(err).toBeInstanceOf(RegauthError);
      expect((err as RegauthError).code).toBe('ERR_INVALID_CONFIG');
      return (err as RegauthError).message;
    }
    throw new Error('expected ERR_INVALID_CONFIG, but the config was accepted');
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'regauth-authz-config-'));
    file = join(dir, 'serve.yml');
    await writeFile(join(dir, 'authz.sh'), '#!/bin/sh\nexit 1\n');
    await chmod(join(dir, 'authz.sh'), 0o755);
    await writeFile(join(dir, 'not-executable.sh'), '#!/bin/sh\nexit 1\n');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("takes docker_auth's ext_authz { command, args } as it is, without acl", () => {
    const config = parse({ ext_authz: { command: './authz.sh', args: ['--flag', 'x'] } });
    expect(config.acl).toEqual([]);
    expect(config.extAuthz).toEqual({
      command: join(dir, 'authz.sh'),
      args: ['--flag', 'x'],
      timeoutSeconds: DEFAULT_EXT_AUTHZ_TIMEOUT_S,
    });
    // A bare name is looked up in $PATH, as docker_auth's exec.LookPath does.
    expect(parse({ acl: [], ext_authz: { command: 'sh', timeout_seconds: 2 } }).extAuthz).toEqual({
      command: 'sh',
      args: [],
      timeoutSeconds: 2,
    });
  });

  it('still refuses a config with neither acl nor ext_authz', () => {
    for (const empty of [undefined, null]) {
      expect(error({ acl: empty, ext_authz: empty })).toBe(
        `${file}: acl: missing: list the rules that grant access (first match wins; see the README), ` +
          'name an external authorizer (ext_authz: { command: … }), ' +
          'or write `acl: []` to deny everything to everyone',
      );
    }
  });

  it('names the key path of a broken ext_authz, and refuses a program that cannot run at start-up', () => {
    expect(error({ ext_authz: 'authz.sh' })).toBe(`${file}: ext_authz: must be a mapping`);
    expect(error({ ext_authz: {} })).toBe(`${file}: ext_authz.command: must be a program to run`);
    expect(error({ ext_authz: { command: './authz.sh', args: '--flag' } })).toBe(
      `${file}: ext_authz.args: must be a list of strings`,
    );
    expect(error({ ext_authz: { command: './authz.sh', env: { A: 'b' } } })).toBe(
      `${file}: ext_authz.env: unknown key (known here: command, args, timeout_seconds)`,
    );
    expect(error({ ext_authz: { command: './authz.sh', timeout_seconds: 0 } })).toBe(
      `${file}: ext_authz.timeout_seconds: must be a number of seconds, more than 0 and at most 300`,
    );
    expect(error({ ext_authz: { command: './not-executable.sh' } })).toBe(
      `${file}: ext_authz.command: "./not-executable.sh" is not an executable file; ` +
        'give the path of the program (relative paths start at the config file)',
    );
    expect(error({ ext_authz: { command: 'regauth-no-such-authorizer' } })).toBe(
      `${file}: ext_authz.command: "regauth-no-such-authorizer" is not an executable file in $PATH; ` +
        'give the path of the program (relative paths start at the config file)',
    );
  });
});
