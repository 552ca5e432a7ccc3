import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ResourceScope } from '../scope/parse-scope.js';
import { type AclRuleConfig, anonymousWriteRules, compileAcl } from './acl.js';
import type { Identity } from './authenticator.js';

const CONTEXT = { service: 'registry.example.com', address: '192.0.2.10' };
const who = (account: string): Identity | undefined =>
  account === '' ? undefined : { name: account, labels: {} };

/** compileAcl, asked by account name alone from CONTEXT: what the htpasswd tests need. */
function compile(rules: readonly AclRuleConfig[]) {
  const acl = compileAcl(rules);
  return {
    authorize: (account: string, requested: readonly ResourceScope[]) =>
      acl.authorize(who(account), requested, CONTEXT),
  };
}

/** The rules of the config example in the issue. */
const EXAMPLE_RULES: readonly AclRuleConfig[] = [
  { match: { account: 'admin' }, actions: ['*'] },
  { match: { account: '/.+/', name: '${account}/*' }, actions: ['pull', 'push', 'delete'] },
  { match: { account: '', name: 'public/**' }, actions: ['pull'] },
  { match: { account: 'admin', type: 'registry', name: 'catalog' }, actions: ['*'] },
];
const example = compile(EXAMPLE_RULES);

const repo = (name: string, ...actions: string[]): ResourceScope => ({ type: 'repository', name, actions });

describe('compileAcl with the example rules', () => {
  it('gives admin everything asked for on any repository, * included', () => {
    expect(example.authorize('admin', [repo('someone/else', 'pull', 'push', 'delete', '*')])).toEqual([
      repo('someone/else', 'pull', 'push', 'delete', '*'),
    ]);
  });

  it('lets a user pull, push and delete in the namespace named after the account', () => {
    expect(example.authorize('alice', [repo('alice/app', 'pull', 'push', 'delete')])).toEqual([
      repo('alice/app', 'pull', 'push', 'delete'),
    ]);
  });

  it('grants only the asked-for part of what a rule allows', () => {
    expect(example.authorize('alice', [repo('alice/app', 'pull')])).toEqual([repo('alice/app', 'pull')]);
  });

  it('drops asked-for actions that the matching rule does not list', () => {
    expect(example.authorize('alice', [repo('alice/app', 'pull', 'tag', 'push')])).toEqual([
      repo('alice/app', 'pull', 'push'),
    ]);
  });

  it('grants nothing for * when the matching rule lists actions', () => {
    expect(example.authorize('alice', [repo('alice/app', '*')])).toEqual([]);
  });

  it('keeps a user out of other namespaces', () => {
    expect(example.authorize('alice', [repo('bob/app', 'pull')])).toEqual([]);
  });

  it('matches one path part for * in a glob', () => {
    expect(example.authorize('alice', [repo('alice/app/sub', 'pull')])).toEqual([]);
    expect(example.authorize('alice', [repo('alice', 'pull')])).toEqual([]);
  });

  it('matches any number of path parts for ** in a glob', () => {
    expect(example.authorize('', [repo('public/a', 'pull'), repo('public/a/b/c', 'pull')])).toEqual([
      repo('public/a', 'pull'),
      repo('public/a/b/c', 'pull'),
    ]);
    expect(example.authorize('', [repo('publicity/a', 'pull')])).toEqual([]);
  });

  it('lets the anonymous user pull public repositories but not push', () => {
    expect(example.authorize('', [repo('public/tools', 'pull', 'push')])).toEqual([
      repo('public/tools', 'pull'),
    ]);
  });

  it('never matches a ${account} rule for the anonymous user', () => {
    // The rule's account pattern is the only thing keeping "" out; this one lets anyone in.
    const acl = compile([{ match: { name: '${account}/**' }, actions: ['pull'] }]);
    expect(acl.authorize('', [repo('app', 'pull'), repo('x/app', 'pull')])).toEqual([]);
    expect(
      compile([{ match: { name: '/${account}.*/' }, actions: ['pull'] }]).authorize('', [
        repo('app', 'pull'),
      ]),
    ).toEqual([]);
  });

  it('applies an exact "" account to the anonymous user only', () => {
    expect(example.authorize('alice', [repo('public/tools', 'pull')])).toEqual([]);
  });

  it('lets the first matching rule decide, even when a later rule would allow more', () => {
    const acl = compile([
      { match: { account: 'alice', name: 'shared/*' }, actions: ['pull'] },
      { match: { account: 'alice' }, actions: ['*'] },
    ]);
    expect(acl.authorize('alice', [repo('shared/x', 'pull', 'push')])).toEqual([repo('shared/x', 'pull')]);
    expect(acl.authorize('alice', [repo('other/x', 'pull', 'push')])).toEqual([
      repo('other/x', 'pull', 'push'),
    ]);
  });

  it('lets an empty action list deny what a later rule would allow', () => {
    const acl = compile([
      { match: { name: 'secret/**' }, actions: [] },
      { match: {}, actions: ['pull'] },
    ]);
    expect(acl.authorize('alice', [repo('secret/x', 'pull'), repo('open/x', 'pull')])).toEqual([
      repo('open/x', 'pull'),
    ]);
  });

  it('gives the catalog to admin through the registry rule', () => {
    const catalog: ResourceScope = { type: 'registry', name: 'catalog', actions: ['*'] };
    expect(example.authorize('admin', [catalog])).toEqual([catalog]);
    expect(example.authorize('alice', [catalog])).toEqual([]);
    expect(example.authorize('', [catalog])).toEqual([]);
  });

  it('does not apply a type: repository rule to a registry resource of the same name', () => {
    const acl = compile([{ match: { name: 'catalog', type: 'repository' }, actions: ['*'] }]);
    expect(acl.authorize('alice', [{ type: 'registry', name: 'catalog', actions: ['*'] }])).toEqual([]);
  });

  it('applies a rule without type to the catalog too, as docker_auth does', () => {
    const catalog: ResourceScope = { type: 'registry', name: 'catalog', actions: ['*'] };
    const acl = compile([
      { match: { account: 'admin' }, actions: ['*'] },
      { match: { account: '/.+/' }, actions: ['pull'] },
    ]);
    expect(acl.authorize('admin', [catalog])).toEqual([catalog]);
    // A rule listing actions grants the catalog only when it lists `*`.
    expect(acl.authorize('alice', [catalog])).toEqual([]);
  });

  it('grants nothing for resource types it does not know, even to a catch-all rule', () => {
    const acl = compile([{ match: {}, actions: ['*'] }]);
    expect(acl.authorize('admin', [{ type: 'blob', name: 'library/alpine', actions: ['pull'] }])).toEqual([]);
    expect(example.authorize('admin', [{ type: 'plugin', name: 'x/y', actions: ['*'] }])).toEqual([]);
  });

  it('merges one resource asked for in several scopes', () => {
    expect(example.authorize('alice', [repo('alice/app', 'pull'), repo('alice/app', 'push')])).toEqual([
      repo('alice/app', 'pull', 'push'),
    ]);
  });

  it('keeps distinct resources apart and in the order asked', () => {
    expect(
      example.authorize('alice', [repo('alice/b', 'pull'), repo('bob/x', 'pull'), repo('alice/a', 'push')]),
    ).toEqual([repo('alice/b', 'pull'), repo('alice/a', 'push')]);
  });

  it('drops the resource class from the grant', () => {
    const plugin: ResourceScope = {
      type: 'repository',
      class: 'plugin',
      name: 'alice/sshfs',
      actions: ['pull'],
    };
    expect(example.authorize('alice', [plugin])).toEqual([repo('alice/sshfs', 'pull')]);
  });

  it('returns nothing when nothing is asked for', () => {
    expect(example.authorize('admin', [])).toEqual([]);
  });
});

describe('compileAcl account patterns', () => {
  const names = (acl: ReturnType<typeof compile>, account: string) =>
    acl.authorize(account, [repo('x/y', 'pull')]).length > 0;

  it('matches an exact account name only', () => {
    const acl = compile([{ match: { account: 'ci' }, actions: ['pull'] }]);
    expect(names(acl, 'ci')).toBe(true);
    expect(names(acl, 'ci2')).toBe(false);
    expect(names(acl, 'CI')).toBe(false);
    expect(names(acl, '')).toBe(false);
  });

  it('matches an account glob with * and ? across any characters', () => {
    const acl = compile([{ match: { account: 'ci-*' }, actions: ['pull'] }]);
    expect(names(acl, 'ci-')).toBe(true);
    expect(names(acl, 'ci-build/1')).toBe(true);
    expect(names(acl, 'xci-build')).toBe(false);
    const one = compile([{ match: { account: 'bot?' }, actions: ['pull'] }]);
    expect(names(one, 'bot1')).toBe(true);
    expect(names(one, 'bot')).toBe(false);
    expect(names(one, 'bot12')).toBe(false);
  });

  it('treats regex characters in an account glob literally', () => {
    const acl = compile([{ match: { account: 'a.b*' }, actions: ['pull'] }]);
    expect(names(acl, 'a.bc')).toBe(true);
    expect(names(acl, 'axbc')).toBe(false);
  });

  it('anchors a /regex/ account pattern at both ends', () => {
    const acl = compile([{ match: { account: '/team-[0-9]+/' }, actions: ['pull'] }]);
    expect(names(acl, 'team-42')).toBe(true);
    expect(names(acl, 'xteam-42')).toBe(false);
    expect(names(acl, 'team-42x')).toBe(false);
  });

  it('keeps the anonymous user out of /.+/ and lets a left-out account match anyone', () => {
    expect(names(compile([{ match: { account: '/.+/' }, actions: ['pull'] }]), '')).toBe(false);
    expect(names(compile([{ match: {}, actions: ['pull'] }]), '')).toBe(true);
  });
});

describe('compileAcl name patterns', () => {
  const anyone = (name: string): ReturnType<typeof compile> =>
    compile([{ match: { name }, actions: ['pull'] }]);
  const allows = (acl: ReturnType<typeof compile>, name: string, account = 'alice') =>
    acl.authorize(account, [repo(name, 'pull')]).length > 0;

  it('matches a glob without wildcards exactly', () => {
    expect(allows(anyone('library/alpine'), 'library/alpine')).toBe(true);
    expect(allows(anyone('library/alpine'), 'library/alpine2')).toBe(false);
    expect(allows(anyone('library.alpine'), 'libraryxalpine')).toBe(false);
  });

  it('matches one character within a path part for ?', () => {
    expect(allows(anyone('app?'), 'app1')).toBe(true);
    expect(allows(anyone('a?b'), 'a/b')).toBe(false);
  });

  it('anchors a /regex/ name pattern at both ends', () => {
    const acl = anyone('/(team|org)/[a-z]+/');
    expect(allows(acl, 'team/app')).toBe(true);
    expect(allows(acl, 'org/app')).toBe(true);
    expect(allows(acl, 'xteam/app')).toBe(false);
    expect(allows(acl, 'team/app/x')).toBe(false);
  });

  it('fills ${account} into a /regex/ name pattern', () => {
    const acl = anyone('/users/${account}(/.*)?/');
    expect(allows(acl, 'users/alice', 'alice')).toBe(true);
    expect(allows(acl, 'users/alice/x/y', 'alice')).toBe(true);
    expect(allows(acl, 'users/bob', 'alice')).toBe(false);
  });

  it('cannot be widened by glob or regex characters in the account name', () => {
    const glob = compile([{ match: { name: '${account}/*' }, actions: ['pull'] }]);
    expect(allows(glob, 'a.*/x', 'a.*')).toBe(true);
    expect(allows(glob, 'abc/x', 'a.*')).toBe(false);
    expect(allows(glob, 'ab/x', 'a?')).toBe(false);
    expect(allows(glob, 'a/b/x', 'a**')).toBe(false);
    const regex = compile([{ match: { name: '/${account}\\/.*/' }, actions: ['pull'] }]);
    expect(allows(regex, 'a.*/x', 'a.*')).toBe(true);
    expect(allows(regex, 'abc/x', 'a.*')).toBe(false);
    expect(allows(regex, 'b/x', 'a|b')).toBe(false);
    expect(allows(regex, 'anything/x', '.*')).toBe(false);
  });

  it('throws ERR_INVALID_CONFIG at compile time for a bad /regex/, naming the rule and key', () => {
    expect(() => compile([{ match: { name: '/[/' }, actions: ['pull'] }])).toThrow(
      /^acl\[0\]\.match\.name: bad pattern: Invalid regular expression/,
    );
    expect(() =>
      compile([
        { match: {}, actions: [] },
        { match: { name: '/(${account}/' }, actions: ['pull'] },
      ]),
    ).toThrow(/^acl\[1\]\.match\.name: bad pattern/);
    expect(() => compile([{ match: { account: '/(/' }, actions: ['pull'] }])).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_CONFIG' }),
    );
  });
});

describe('Acl.authorize', () => {
  const action = fc.constantFrom('pull', 'push', 'delete', '*', 'tag');
  const scope: fc.Arbitrary<ResourceScope> = fc.record({
    type: fc.constantFrom('repository', 'registry', 'blob'),
    name: fc.constantFrom('alice/app', 'bob/app', 'public/x', 'public/x/y', 'catalog', 'alice/a/b'),
    actions: fc.uniqueArray(action, { minLength: 1, maxLength: 5 }),
  });
  const rule: fc.Arbitrary<AclRuleConfig> = fc.record({
    match: fc.record(
      {
        account: fc.constantFrom('', 'admin', 'alice', '/.+/', 'a*', '/a.*/', '${labels:g}'),
        name: fc.constantFrom(
          '${account}/*',
          'public/**',
          '**',
          'catalog',
          '/.*/',
          '*/app',
          '${labels:g}/**',
        ),
        type: fc.constantFrom('repository' as const, 'registry' as const),
        service: fc.constantFrom('registry.example.com', 'other', '${account}*'),
        ip: fc.constantFrom('192.0.2.0/24', '10.0.0.0/8', '::1'),
        labels: fc.dictionary(
          fc.constantFrom('g', 'h'),
          fc.constantFrom('*', 'alice', '/a|b/', '${account}'),
        ),
      },
      { requiredKeys: [] },
    ),
    actions: fc.uniqueArray(fc.constantFrom('pull', 'push', 'delete', '*'), { maxLength: 5 }),
  });

  it('never grants an action or a resource that was not asked for', () => {
    fc.assert(
      fc.property(
        fc.array(rule, { maxLength: 6 }),
        fc.constantFrom('', 'admin', 'alice', 'bob', 'a.*'),
        fc.array(fc.constantFrom('alice', 'public', 'a', '*', 'catalog'), { maxLength: 3 }),
        fc.array(scope, { maxLength: 6 }),
        (rules, account, groups, requested) => {
          const identity = account === '' ? undefined : { name: account, labels: { g: groups } };
          const granted = compileAcl(rules).authorize(identity, requested, CONTEXT);
          const keys = new Set<string>();
          for (const g of granted) {
            const key = `${g.type} ${g.name}`;
            expect(keys.has(key)).toBe(false);
            keys.add(key);
            const asked = requested
              .filter((r) => r.type === g.type && r.name === g.name)
              .flatMap((r) => r.actions);
            expect(g.actions.length).toBeGreaterThan(0);
            expect(new Set(g.actions).size).toBe(g.actions.length);
            for (const a of g.actions) expect(asked).toContain(a);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('anonymousWriteRules', () => {
  it('finds rules that let the anonymous user push, delete or do anything', () => {
    const found = anonymousWriteRules([
      { match: { account: 'admin' }, actions: ['*'] },
      { match: { account: '', name: 'public/**' }, actions: ['pull'] },
      { match: { account: '', name: 'drop/**' }, actions: ['pull', 'push'] },
      { match: { name: 'shared/*' }, actions: ['delete'] },
      { match: { account: '*', name: 'scratch/*' }, actions: ['pull', 'push'] },
      { match: { account: '/.*/', type: 'registry', name: 'catalog' }, actions: ['*'] },
      { match: { account: '/.+/', name: 'team/*' }, actions: ['push'] },
      { match: { account: '/.*/', name: '${account}/*' }, actions: ['push'] },
    ]);
    expect(found).toEqual([
      { index: 2, actions: ['push'] },
      { index: 3, actions: ['delete'] },
      { index: 4, actions: ['push'] },
      { index: 5, actions: ['*'] },
    ]);
  });

  it('finds nothing in the README example', () => {
    expect(
      anonymousWriteRules([
        { match: { account: 'admin' }, actions: ['*'] },
        { match: { account: '/.+/', name: '${account}/*' }, actions: ['pull', 'push', 'delete'] },
        { match: { account: '', name: 'public/**' }, actions: ['pull'] },
        { match: { account: 'admin', type: 'registry', name: 'catalog' }, actions: ['*'] },
      ]),
    ).toEqual([]);
  });
});

const pull = (name: string) => [repo(name, 'pull')];

describe('compileAcl conditions on service, ip and labels', () => {
  const as = (name: string, labels: Record<string, string[]> = {}): Identity => ({ name, labels });
  const at = (address: string, service = CONTEXT.service) => ({ service, address });

  it('matches the service by exact name, glob or /regex/', () => {
    const acl = compileAcl([
      { match: { service: 'registry.example.com' }, actions: ['pull'] },
      { match: { service: 'staging-*' }, actions: ['push'] },
    ]);
    expect(acl.authorize(as('u'), [repo('x', 'pull', 'push')], CONTEXT)).toEqual([repo('x', 'pull')]);
    expect(acl.authorize(as('u'), [repo('x', 'pull', 'push')], at('::1', 'staging-eu'))).toEqual([
      repo('x', 'push'),
    ]);
    expect(acl.authorize(as('u'), pull('x'), at('::1', 'other'))).toEqual([]);
  });

  it('matches the client address against an address or a CIDR network, IPv4 and IPv6', () => {
    const acl = compileAcl([
      { match: { ip: '10.1.0.0/16' }, actions: ['push'] },
      { match: { ip: '192.0.2.7' }, actions: ['delete'] },
      { match: { ip: '2001:db8::/32' }, actions: ['pull'] },
    ]);
    const asked = [repo('x', 'pull', 'push', 'delete')];
    expect(acl.authorize(as('u'), asked, at('10.1.200.3'))).toEqual([repo('x', 'push')]);
    // How a dual-stack socket shows an IPv4 peer.
    expect(acl.authorize(as('u'), asked, at('::ffff:10.1.0.9'))).toEqual([repo('x', 'push')]);
    expect(acl.authorize(as('u'), asked, at('10.2.0.1'))).toEqual([]);
    expect(acl.authorize(as('u'), asked, at('192.0.2.7'))).toEqual([repo('x', 'delete')]);
    expect(acl.authorize(as('u'), asked, at('192.0.2.8'))).toEqual([]);
    expect(acl.authorize(as('u'), asked, at('2001:DB8:1::5'))).toEqual([repo('x', 'pull')]);
    expect(acl.authorize(as('u'), asked, at('2001:db9::5'))).toEqual([]);
    expect(acl.authorize(as('u'), asked, at(''))).toEqual([]);
    expect(acl.authorize(as('u'), asked, at('not-an-address'))).toEqual([]);
  });

  it('lets an ip rule deny before a broader rule allows', () => {
    const acl = compileAcl([
      { match: { ip: '198.51.100.0/24' }, actions: [] },
      { match: {}, actions: ['pull'] },
    ]);
    expect(acl.authorize(undefined, pull('x'), at('198.51.100.9'))).toEqual([]);
    expect(acl.authorize(undefined, pull('x'), at('198.51.101.9'))).toEqual(pull('x'));
  });

  it('needs a matching value of every label the rule names', () => {
    const acl = compileAcl([
      { match: { labels: { group: 'ci-*', env: '/prod|staging/' } }, actions: ['push'] },
    ]);
    const push = [repo('x', 'push')];
    expect(acl.authorize(as('u', { group: ['dev', 'ci-build'], env: ['prod'] }), push, CONTEXT)).toEqual(
      push,
    );
    expect(acl.authorize(as('u', { group: ['dev'], env: ['prod'] }), push, CONTEXT)).toEqual([]);
    expect(acl.authorize(as('u', { group: ['ci-build'] }), push, CONTEXT)).toEqual([]);
    expect(acl.authorize(as('u', { group: ['ci-build'], env: ['production'] }), push, CONTEXT)).toEqual([]);
    // `*` in a label glob stays within one path part, as in names.
    expect(acl.authorize(as('u', { group: ['ci-a/b'], env: ['prod'] }), push, CONTEXT)).toEqual([]);
    expect(acl.authorize(undefined, push, CONTEXT)).toEqual([]);
  });

  it('tries a ${labels:NAME} rule once per label value', () => {
    const acl = compileAcl([{ match: { name: '${labels:project}/*' }, actions: ['push'] }]);
    const user = as('u', { project: ['web', 'api'] });
    expect(acl.authorize(user, [repo('web/app', 'push'), repo('api/x', 'push')], CONTEXT)).toEqual([
      repo('web/app', 'push'),
      repo('api/x', 'push'),
    ]);
    expect(acl.authorize(user, [repo('db/x', 'push')], CONTEXT)).toEqual([]);
    expect(acl.authorize(as('u'), [repo('web/app', 'push')], CONTEXT)).toEqual([]);
    expect(acl.authorize(as('u', { project: [''] }), [repo('/app', 'push')], CONTEXT)).toEqual([]);
  });

  it('uses one value for a label placeholder wherever it repeats, and every combination of two labels', () => {
    const same = compileAcl([{ match: { name: '${labels:g}/${labels:g}-*' }, actions: ['pull'] }]);
    const user = as('u', { g: ['a', 'b'], tier: ['front', 'back'] });
    expect(same.authorize(user, pull('a/a-1'), CONTEXT)).toEqual(pull('a/a-1'));
    expect(same.authorize(user, pull('b/b-1'), CONTEXT)).toEqual(pull('b/b-1'));
    expect(same.authorize(user, pull('a/b-1'), CONTEXT)).toEqual([]);
    const product = compileAcl([{ match: { name: '/${labels:g}-${labels:tier}\\/.+/' }, actions: ['pull'] }]);
    for (const name of ['a-front/x', 'a-back/x', 'b-front/x', 'b-back/x']) {
      expect(product.authorize(user, pull(name), CONTEXT)).toEqual(pull(name));
    }
    expect(product.authorize(user, pull('a-side/x'), CONTEXT)).toEqual([]);
  });

  it('fills in ${service} and ${account} in any pattern', () => {
    const acl = compileAcl([
      { match: { name: '${service}/**' }, actions: ['pull'] },
      { match: { labels: { owner: '${account}' } }, actions: ['push'] },
    ]);
    expect(acl.authorize(as('u'), pull('registry.example.com/a/b'), CONTEXT)).toEqual(
      pull('registry.example.com/a/b'),
    );
    expect(acl.authorize(as('u'), pull('registryxexample.com/a'), CONTEXT)).toEqual([]);
    expect(acl.authorize(as('ann', { owner: ['ann'] }), [repo('z', 'push')], CONTEXT)).toEqual([
      repo('z', 'push'),
    ]);
    expect(acl.authorize(as('ann', { owner: ['bob'] }), [repo('z', 'push')], CONTEXT)).toEqual([]);
  });

  it('says which rule decided each resource, and none for a resource no rule matched', () => {
    const acl = compileAcl([
      { match: { account: 'admin' }, actions: ['*'], comment: 'admins' },
      { match: { name: 'secret/**' }, actions: [] },
      { match: {}, actions: ['pull'] },
    ]);
    expect(
      acl.explain(
        as('bob'),
        [
          repo('secret/x', 'pull'),
          repo('a', 'pull'),
          repo('a', 'push'),
          { type: 'blob', name: 'b', actions: ['pull'] },
        ],
        CONTEXT,
      ),
    ).toEqual([
      { requested: repo('secret/x', 'pull'), granted: [], rule: 1 },
      { requested: repo('a', 'pull', 'push'), granted: ['pull'], rule: 2 },
      { requested: { type: 'blob', name: 'b', actions: ['pull'] }, granted: [] },
    ]);
  });
});

describe('compileAcl with hostile placeholder values', () => {
  /** Characters with a meaning in a glob, a regex or a path. */
  const hostile = fc.string({
    unit: fc.constantFrom(
      'a',
      'b',
      '/',
      '.',
      '*',
      '?',
      '|',
      '(',
      ')',
      '[',
      ']',
      '\\',
      '$',
      '{',
      '}',
      '^',
      '+',
      '-',
      ':',
    ),
    minLength: 1,
    maxLength: 8,
  });
  const name = fc.string({ unit: fc.constantFrom('a', 'b', '/', '.', '-', '*', '|'), maxLength: 12 });

  it('never matches a name a literal reading of the placeholder would not', () => {
    const rules = [
      { match: { name: '${account}/*' }, actions: ['pull'] },
      { match: { name: '${labels:g}-**' }, actions: ['push'] },
      { match: { name: '/x\\/${labels:g}(\\/.*)?/' }, actions: ['delete'] },
      { match: { account: '${labels:g}' }, actions: ['*'] },
    ];
    const acl = compileAcl(rules);
    fc.assert(
      fc.property(hostile, fc.array(hostile, { maxLength: 3 }), name, (account, groups, repoName) => {
        const decisions = acl.explain(
          { name: account, labels: { g: groups } },
          [{ type: 'repository', name: repoName, actions: ['pull', 'push', 'delete', '*'] }],
          CONTEXT,
        );
        const rule = decisions[0]?.rule;
        const expected =
          repoName.startsWith(`${account}/`) && !repoName.slice(account.length + 1).includes('/')
            ? 0
            : groups.some((g) => repoName.startsWith(`${g}-`))
              ? 1
              : groups.some((g) => repoName === `x/${g}` || repoName.startsWith(`x/${g}/`))
                ? 2
                : groups.includes(account)
                  ? 3
                  : undefined;
        expect(rule).toBe(expected);
      }),
      { numRuns: 2000 },
    );
  });

  it('keeps an account named a*, .*, ../x or a|b to its own namespace', () => {
    const acl = compileAcl([{ match: { name: '${account}/*' }, actions: ['pull'] }]);
    for (const account of ['a*', '.*', '../x', 'a|b', '**', '[a-z]', 'a?', '(a)', '$', '\\']) {
      const user: Identity = { name: account, labels: {} };
      expect(acl.authorize(user, pull(`${account}/app`), CONTEXT)).toEqual(pull(`${account}/app`));
      for (const other of ['ab/app', 'a/app', 'b/app', 'x/app', 'a/b/app', '../y/app', 'z/app']) {
        if (other !== `${account}/app`) expect(acl.authorize(user, pull(other), CONTEXT)).toEqual([]);
      }
    }
  });
});

describe('compileAcl start-up errors', () => {
  const error = (rules: AclRuleConfig[]) => {
    try {
      compileAcl(rules);
    } catch (err) {
      return (err as Error).message;
    }
    throw new Error('accepted');
  };

  it('refuses an unknown action, naming the key path', () => {
    expect(
      error([
        { match: {}, actions: ['pull'] },
        { match: {}, actions: ['push', 'pul'] },
      ]),
    ).toBe('acl[1].actions[1]: unknown action "pul"; the actions are pull, push, delete, *');
  });

  it('refuses an unknown placeholder, a bad address and an unsafe regex', () => {
    expect(error([{ match: { name: '${acount}/*' }, actions: [] }])).toBe(
      'acl[0].match.name: unknown placeholder ${acount}; known: ${account}, ${service}, ${labels:NAME}',
    );
    expect(error([{ match: { labels: { g: '${labels:}' } }, actions: [] }])).toMatch(
      /^acl\[0\]\.match\.labels\.g: unknown placeholder/,
    );
    expect(error([{ match: { ip: '10.0.0.0/33' }, actions: [] }])).toMatch(
      /^acl\[0\]\.match\.ip: "10\.0\.0\.0\/33" is not/,
    );
    expect(error([{ match: { ip: 'localhost' }, actions: [] }])).toMatch(/^acl\[0\]\.match\.ip:/);
    expect(error([{ match: { name: '/(a+)+/' }, actions: [] }])).toMatch(
      /^acl\[0\]\.match\.name: the group .* exponential/,
    );
    expect(error([{ match: { type: 'repo' as 'repository' }, actions: [] }])).toBe(
      'acl[0].match.type: must be one of repository, registry',
    );
  });

  it('accepts an empty list, which grants nothing', () => {
    expect(compileAcl([]).authorize({ name: 'admin', labels: {} }, [repo('x', 'pull')], CONTEXT)).toEqual([]);
  });
});

describe('anonymousWriteRules with labels', () => {
  it('skips rules that need labels or an identity', () => {
    expect(
      anonymousWriteRules([
        { match: { labels: { group: 'ci' } }, actions: ['push'] },
        { match: { name: '${labels:group}/*' }, actions: ['push'] },
        { match: { ip: '10.0.0.0/8' }, actions: ['push'] },
      ]),
    ).toEqual([{ index: 2, actions: ['push'] }]);
  });
});

describe('anonymousWriteRules with a broken rule', () => {
  it('leaves the report of a broken rule to compileAcl', () => {
    const rules: AclRuleConfig[] = [
      { match: { name: '/(/' }, actions: ['push'] },
      { match: {}, actions: ['push'] },
    ];
    expect(anonymousWriteRules(rules)).toEqual([{ index: 1, actions: ['push'] }]);
    expect(() => compileAcl(rules)).toThrow(/^acl\[0\]\.match\.name: bad pattern/);
  });
});
