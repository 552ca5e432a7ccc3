import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { htpasswdLine } from '../src/server/testing/fixtures.js';
import { type CliHome, createCliHome } from './harness/regauth-cli.js';

const HEAD = [
  'listen: 127.0.0.1:0',
  'token: { issuer: t, service: my-registry, key: k.pem, certificate: c.pem }',
  'users: { htpasswd: users }',
  '',
].join('\n');

const ACL = [
  'acl:',
  '  - match: { account: admin }',
  '    actions: ["*"]',
  '    comment: admins do anything, the catalog included',
  '  - match: { labels: { group: "ci-*" }, ip: 10.0.0.0/8, name: "${labels:group}/**" }',
  '    actions: [pull, push]',
  '  - match: { account: "/.+/", name: "${account}/*" }',
  '    actions: [pull, push, delete]',
  '  - match: { account: "", name: "public/**" }',
  '    actions: [pull]',
  '',
].join('\n');

describe('regauth serve --check', () => {
  let cli: CliHome;
  let config: string;

  beforeAll(async () => {
    cli = await createCliHome();
    const keygen = await cli.run([
      'keygen',
      '--key',
      join(cli.dir, 'k.pem'),
      '--cert',
      join(cli.dir, 'c.pem'),
    ]);
    expect(keygen.code).toBe(0);
    await writeFile(join(cli.dir, 'users'), `${htpasswdLine('alice', 'pw-a')}\n`);
    config = join(cli.dir, 'serve.yml');
    await writeFile(config, HEAD + ACL);
  });

  afterAll(async () => {
    await cli?.dispose();
  });

  const check = (args: readonly string[]) => cli.run(['serve', '--check', '--config', config, ...args]);

  it('says a good config is valid, without listening, and exits 0', async () => {
    const res = await check([]);
    expect(res.stderr).toBe('');
    expect(res.stdout.toString()).toBe(`${config}: valid; 4 acl rules\n`);
    expect(res.code).toBe(0);
  });

  it('prints what an account with labels gets from an address, and which rule decided', async () => {
    const res = await check([
      '--account',
      'carol',
      '--label',
      'group=dev',
      '--label',
      'group=ci-web',
      '--ip',
      '10.1.2.3',
      '--scope',
      'repository:ci-web/app:pull,push,delete',
      '--scope',
      'repository:carol/tools:pull repository:dev/app:pull',
      '--scope',
      'registry:catalog:*',
    ]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout.toString()).toBe(
      [
        `${config}: valid; 4 acl rules`,
        'account "carol" with labels group=dev, group=ci-web, from 10.1.2.3, service "my-registry":',
        '  repository:ci-web/app:pull,push,delete: granted pull,push (acl[1] { match: { name: "${labels:group}/**", ip: "10.0.0.0/8", labels: {"group":"ci-*"} }, actions: ["pull","push"] })',
        '  repository:carol/tools:pull: granted pull (acl[2] { match: { account: "/.+/", name: "${account}/*" }, actions: ["pull","push","delete"] })',
        // As in docker_auth, ${labels:group} ranges over all the groups, not only those labels.group matched.
        '  repository:dev/app:pull: granted pull (acl[1] { match: { name: "${labels:group}/**", ip: "10.0.0.0/8", labels: {"group":"ci-*"} }, actions: ["pull","push"] })',
        '  registry:catalog:*: denied (no rule matched)',
        '',
      ].join('\n'),
    );
  });

  it('leaves ip rules out when no --ip is given, and says so', async () => {
    const res = await check([
      '--account',
      'carol',
      '--label',
      'group=ci-web',
      '--scope',
      'repository:ci-web/app:push',
    ]);
    expect(res.code).toBe(0);
    expect(res.stdout.toString()).toContain('from no address (rules with ip never match; give --ip)');
    expect(res.stdout.toString()).toContain('  repository:ci-web/app:push: denied (no rule matched)\n');
  });

  it('checks the anonymous user when no --account is given, and the catalog for admin', async () => {
    const anonymous = await check(['--scope', 'repository:public/x:pull,push']);
    expect(anonymous.stdout.toString()).toContain(
      'the anonymous user, from no address (rules with ip never match; give --ip), service "my-registry":\n' +
        '  repository:public/x:pull,push: granted pull (acl[3]',
    );
    const admin = await check(['--account', 'admin', '--scope', 'registry:catalog:*']);
    expect(admin.stdout.toString()).toContain(
      '  registry:catalog:*: granted * (acl[0] { match: { account: "admin" }, actions: ["*"] } # admins do anything, the catalog included)\n',
    );
  });

  it("accepts the README's acl example and grants what its comments say", async () => {
    const readme = await readFile(join(import.meta.dirname, '../README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('### Access control: `acl`'));
    const block = /```yaml\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
    expect(block).toMatch(/^acl:\n/);
    const file = join(cli.dir, 'readme-acl.yml');
    await writeFile(file, HEAD + block);
    const res = await cli.run([
      'serve',
      '--check',
      '--config',
      file,
      '--account',
      'carol',
      '--label',
      'group=ci-web',
      '--label',
      'project=web',
      '--ip',
      '10.1.2.3',
      '--scope',
      'repository:ci/app:pull,push',
      '--scope',
      'repository:web/site:push',
      '--scope',
      'repository:carol/x:delete',
      '--scope',
      'registry:catalog:*',
    ]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const lines = res.stdout.toString().split('\n');
    expect(lines).toContain(`${file}: valid; 6 acl rules`);
    expect(lines.filter((l) => l.startsWith('  ')).map((l) => l.replace(/ \(.*/, ''))).toEqual([
      '  repository:ci/app:pull,push: granted pull,push',
      '  repository:web/site:push: granted push',
      '  repository:carol/x:delete: granted delete',
      '  registry:catalog:*: denied',
    ]);
    const denied = await cli.run([
      'serve',
      '--check',
      '--config',
      file,
      '--account',
      'admin',
      '--ip',
      '192.0.2.9',
      '--scope',
      'registry:catalog:*',
    ]);
    expect(denied.stdout.toString()).toContain('  registry:catalog:*: granted * (acl[0]');
    const blocked = await cli.run([
      'serve',
      '--check',
      '--config',
      file,
      '--account',
      'carol',
      '--ip',
      '192.0.2.9',
      '--scope',
      'repository:carol/x:pull',
    ]);
    expect(blocked.stdout.toString()).toContain('  repository:carol/x:pull: denied (acl[1]');
  });

  it('stops with exit 1 on an unknown action, naming the key path', async () => {
    const bad = join(cli.dir, 'bad-action.yml');
    await writeFile(bad, `${HEAD}acl:\n  - match: { account: alice }\n    actions: [pull, pul]\n`);
    const res = await cli.run(['serve', '--check', '--config', bad]);
    expect(res.code).toBe(1);
    expect(res.stdout.toString()).toBe('');
    expect(res.stderr).toBe(
      `regauth: error: ${bad}: acl[0].actions[1]: unknown action "pul"; the actions are pull, push, delete, *\n`,
    );
  });

  it('stops with exit 1 on a config without acl, and says acl: [] denies all', async () => {
    const none = join(cli.dir, 'no-acl.yml');
    await writeFile(none, HEAD);
    const res = await cli.run(['serve', '--check', '--config', none]);
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(
      `regauth: error: ${none}: acl: missing: list the rules that grant access (first match wins; see the README), ` +
        'name an external authorizer (ext_authz: { command: … }), ' +
        'or write `acl: []` to deny everything to everyone\n',
    );
    const empty = join(cli.dir, 'empty-acl.yml');
    await writeFile(empty, `${HEAD}acl: []\n`);
    const ok = await cli.run([
      'serve',
      '--check',
      '--config',
      empty,
      '--account',
      'alice',
      '--scope',
      'repository:alice/x:pull',
    ]);
    expect(ok.code).toBe(0);
    expect(ok.stdout.toString()).toContain(': valid; 0 acl rules (acl: [] denies everything to everyone)\n');
    expect(ok.stdout.toString()).toContain('  repository:alice/x:pull: denied (no rule matched)\n');
  });

  it('stops with exit 1 when a file the server needs is missing', async () => {
    const noKey = join(cli.dir, 'no-key.yml');
    await writeFile(noKey, HEAD.replace('k.pem', 'missing.pem') + ACL);
    const res = await cli.run(['serve', '--check', '--config', noKey]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^regauth: error: .*no-key\.yml: token\.key: cannot read .*missing\.pem/);
  });

  it('refuses dry-run flags without --check or --scope, and bad labels, addresses and scopes, with exit 2', async () => {
    const cases: [readonly string[], string][] = [
      [
        ['serve', '--config', config, '--account', 'alice'],
        '--account, --label, --ip and --scope go with --check',
      ],
      [
        ['serve', '--check', '--config', config, '--account', 'alice'],
        '--account, --label and --ip need --scope',
      ],
      [
        ['serve', '--check', '--config', config, '--label', 'group=x', '--scope', 'repository:x:pull'],
        '--label needs --account',
      ],
      [
        [
          'serve',
          '--check',
          '--config',
          config,
          '--account',
          'a',
          '--label',
          'group',
          '--scope',
          'repository:x:pull',
        ],
        '--label "group" is not NAME=VALUE',
      ],
      [
        ['serve', '--check', '--config', config, '--ip', 'host', '--scope', 'repository:x:pull'],
        '--ip "host" is not',
      ],
      [['serve', '--check', '--config', config, '--scope', 'repository:X:pull'], '--scope: invalid scope'],
    ];
    for (const [args, message] of cases) {
      const res = await cli.run(args);
      expect({ args, code: res.code, stdout: res.stdout.toString() }).toEqual({ args, code: 2, stdout: '' });
      expect(res.stderr).toContain(`regauth: error: ${message}`);
    }
  });
  it('runs the ext_authz program for what no acl rule matches, as the server would, and exits 1 when it fails', async () => {
    // docker_auth's ext_authz contract: AuthRequestInfo as JSON on stdin; 0 allows, 1 denies.
    await writeFile(
      join(cli.dir, 'authz.sh'),
      [
        '#!/bin/sh',
        'input=$(cat)',
        'case "$input" in',
        '  *\'"Name":"broken/\'*) exit 3 ;;',
        '  *\'"Account":"bob"\'*\'"group":["ops"]\'*) exit 0 ;;',
        '  *) exit 1 ;;',
        'esac',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    const withExt = join(cli.dir, 'ext-authz.yml');
    await writeFile(withExt, `${HEAD}${ACL}ext_authz: { command: ./authz.sh, timeout_seconds: 10 }\n`);
    const program = join(cli.dir, 'authz.sh');
    const run = (args: readonly string[]) => cli.run(['serve', '--check', '--config', withExt, ...args]);
    const res = await run([
      '--account',
      'bob',
      '--label',
      'group=ops',
      '--scope',
      'repository:bob/app:pull',
      '--scope',
      'repository:ops/app:pull,push',
    ]);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout.toString()).toBe(
      [
        `${withExt}: valid; 4 acl rules, then ext_authz ${program} for what no rule matches`,
        'account "bob" with labels group=ops, from no address (rules with ip never match; give --ip), service "my-registry":',
        '  repository:bob/app:pull: granted pull (acl[2] { match: { account: "/.+/", name: "${account}/*" }, actions: ["pull","push","delete"] })',
        `  repository:ops/app:pull,push: granted pull,push (no acl rule matched; ext_authz ${program} decided)`,
        '',
      ].join('\n'),
    );
    const denied = await run(['--account', 'bob', '--scope', 'repository:ops/app:pull']);
    expect(denied.stdout.toString()).toContain(
      `  repository:ops/app:pull: denied (no acl rule matched; ext_authz ${program} decided)\n`,
    );
    const broken = await run(['--account', 'bob', '--scope', 'repository:broken/app:pull']);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toBe(
      `regauth: error: the ext_authz program ${program} exited with 3; 0 grants, 1 denies; ` +
        'the server would answer this token request 503\n',
    );
    const missing = join(cli.dir, 'ext-authz-missing.yml');
    await writeFile(missing, `${HEAD}ext_authz: { command: ./no-such-program }\n`);
    const gone = await cli.run(['serve', '--check', '--config', missing]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toBe(
      `regauth: error: ${missing}: ext_authz.command: "./no-such-program" is not an executable file; ` +
        'give the path of the program (relative paths start at the config file)\n',
    );
  });
  it("runs the README's ext_authz example and grants what its comments say", async () => {
    const readme = await readFile(join(import.meta.dirname, '../README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('### External authorizer: `ext_authz`'));
    const yaml = /```yaml\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
    const script = /```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
    expect(yaml).toMatch(/^acl:/);
    expect(script).toMatch(/^#!\/bin\/sh\n/);
    await writeFile(join(cli.dir, 'authorize'), script, { mode: 0o755 });
    const file = join(cli.dir, 'readme-ext-authz.yml');
    await writeFile(file, HEAD + yaml);
    const run = async (...args: string[]) => {
      const res = await cli.run(['serve', '--check', '--config', file, ...args]);
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
      return res.stdout.toString();
    };
    const decided = `(no acl rule matched; ext_authz ${join(cli.dir, 'authorize')} decided)`;
    const ci = await run(
      '--account',
      'alice',
      '--label',
      'group=ci-builders',
      '--scope',
      'repository:ci/app:pull,push',
    );
    expect(ci).toContain(`  repository:ci/app:pull,push: granted pull,push ${decided}\n`);
    const other = await run(
      '--account',
      'bob',
      '--scope',
      'repository:ci/app:pull,push',
      '--scope',
      'repository:web/site:pull',
    );
    expect(other).toContain(`  repository:ci/app:pull,push: denied ${decided}\n`);
    expect(other).toContain(`  repository:web/site:pull: granted pull ${decided}\n`);
    expect(await run('--account', 'admin', '--scope', 'repository:ci/app:delete')).toContain(
      '  repository:ci/app:delete: granted delete (acl[0]',
    );
  });
});
