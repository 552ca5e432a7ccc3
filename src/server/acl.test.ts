import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ResourceScope } from '../scope/parse-scope.js';
import { type AclRuleConfig, anonymousWriteRules, compileAcl } from './acl.js';

/** The rules of the config example in the issue. */
const EXAMPLE_RULES: readonly AclRuleConfig[] = [
  { match: { account: 'admin' }, actions: ['*'] },
  { match: { account: '/.+/', name: '${account}/*' }, actions: ['pull', 'push', 'delete'] },
  { match: { account: '', name: 'public/**' }, actions: ['pull'] },
  { match: { account: 'admin', type: 'registry', name: 'catalog' }, actions: ['*'] },
];
const example = compileAcl(EXAMPLE_RULES);

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
    const acl = compileAcl([{ match: { name: '${account}/**' }, actions: ['pull'] }]);
    expect(acl.authorize('', [repo('app', 'pull'), repo('x/app', 'pull')])).toEqual([]);
    expect(
      compileAcl([{ match: { name: '/${account}.*/' }, actions: ['pull'] }]).authorize('', [
        repo('app', 'pull'),
      ]),
    ).toEqual([]);
  });

  it('applies an exact "" account to the anonymous user only', () => {
    expect(example.authorize('alice', [repo('public/tools', 'pull')])).toEqual([]);
  });

  it('lets the first matching rule decide, even when a later rule would allow more', () => {
    const acl = compileAcl([
      { match: { account: 'alice', name: 'shared/*' }, actions: ['pull'] },
      { match: { account: 'alice' }, actions: ['*'] },
    ]);
    expect(acl.authorize('alice', [repo('shared/x', 'pull', 'push')])).toEqual([repo('shared/x', 'pull')]);
    expect(acl.authorize('alice', [repo('other/x', 'pull', 'push')])).toEqual([
      repo('other/x', 'pull', 'push'),
    ]);
  });

  it('lets an empty action list deny what a later rule would allow', () => {
    const acl = compileAcl([
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

  it('does not apply a repository rule to a registry resource of the same name', () => {
    const acl = compileAcl([{ match: { name: 'catalog' }, actions: ['*'] }]);
    expect(acl.authorize('alice', [{ type: 'registry', name: 'catalog', actions: ['*'] }])).toEqual([]);
  });

  it('grants nothing for resource types it does not know, even to a catch-all rule', () => {
    const acl = compileAcl([{ match: {}, actions: ['*'] }]);
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
  const names = (acl: ReturnType<typeof compileAcl>, account: string) =>
    acl.authorize(account, [repo('x/y', 'pull')]).length > 0;

  it('matches an exact account name only', () => {
    const acl = compileAcl([{ match: { account: 'ci' }, actions: ['pull'] }]);
    expect(names(acl, 'ci')).toBe(true);
    expect(names(acl, 'ci2')).toBe(false);
    expect(names(acl, 'CI')).toBe(false);
    expect(names(acl, '')).toBe(false);
  });

  it('matches an account glob with * and ? across any characters', () => {
    const acl = compileAcl([{ match: { account: 'ci-*' }, actions: ['pull'] }]);
    expect(names(acl, 'ci-')).toBe(true);
    expect(names(acl, 'ci-build/1')).toBe(true);
    expect(names(acl, 'xci-build')).toBe(false);
    const one = compileAcl([{ match: { account: 'bot?' }, actions: ['pull'] }]);
    expect(names(one, 'bot1')).toBe(true);
    expect(names(one, 'bot')).toBe(false);
    expect(names(one, 'bot12')).toBe(false);
  });

  it('treats regex characters in an account glob literally', () => {
    const acl = compileAcl([{ match: { account: 'a.b*' }, actions: ['pull'] }]);
    expect(names(acl, 'a.bc')).toBe(true);
    expect(names(acl, 'axbc')).toBe(false);
  });

  it('anchors a /regex/ account pattern at both ends', () => {
    const acl = compileAcl([{ match: { account: '/team-[0-9]+/' }, actions: ['pull'] }]);
    expect(names(acl, 'team-42')).toBe(true);
    expect(names(acl, 'xteam-42')).toBe(false);
    expect(names(acl, 'team-42x')).toBe(false);
  });

  it('keeps the anonymous user out of /.+/ and lets a left-out account match anyone', () => {
    expect(names(compileAcl([{ match: { account: '/.+/' }, actions: ['pull'] }]), '')).toBe(false);
    expect(names(compileAcl([{ match: {}, actions: ['pull'] }]), '')).toBe(true);
  });
});

describe('compileAcl name patterns', () => {
  const anyone = (name: string): ReturnType<typeof compileAcl> =>
    compileAcl([{ match: { name }, actions: ['pull'] }]);
  const allows = (acl: ReturnType<typeof compileAcl>, name: string, account = 'alice') =>
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
    const glob = compileAcl([{ match: { name: '${account}/*' }, actions: ['pull'] }]);
    expect(allows(glob, 'a.*/x', 'a.*')).toBe(true);
    expect(allows(glob, 'abc/x', 'a.*')).toBe(false);
    expect(allows(glob, 'ab/x', 'a?')).toBe(false);
    expect(allows(glob, 'a/b/x', 'a**')).toBe(false);
    const regex = compileAcl([{ match: { name: '/${account}\\/.*/' }, actions: ['pull'] }]);
    expect(allows(regex, 'a.*/x', 'a.*')).toBe(true);
    expect(allows(regex, 'abc/x', 'a.*')).toBe(false);
    expect(allows(regex, 'b/x', 'a|b')).toBe(false);
    expect(allows(regex, 'anything/x', '.*')).toBe(false);
  });

  it('throws at compile time for a bad /regex/', () => {
    expect(() => compileAcl([{ match: { name: '/[/' }, actions: ['pull'] }])).toThrow(SyntaxError);
    expect(() => compileAcl([{ match: { name: '/(${account}/' }, actions: ['pull'] }])).toThrow(SyntaxError);
    expect(() => compileAcl([{ match: { account: '/(/' }, actions: ['pull'] }])).toThrow(SyntaxError);
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
        account: fc.constantFrom('', 'admin', 'alice', '/.+/', 'a*', '/a.*/'),
        name: fc.constantFrom('${account}/*', 'public/**', '**', 'catalog', '/.*/', '*/app'),
        type: fc.constantFrom('repository' as const, 'registry' as const),
      },
      { requiredKeys: [] },
    ),
    actions: fc.uniqueArray(action, { maxLength: 5 }),
  });

  it('never grants an action or a resource that was not asked for', () => {
    fc.assert(
      fc.property(
        fc.array(rule, { maxLength: 6 }),
        fc.constantFrom('', 'admin', 'alice', 'bob', 'a.*'),
        fc.array(scope, { maxLength: 6 }),
        (rules, account, requested) => {
          const granted = compileAcl(rules).authorize(account, requested);
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
