import { describe, expect, it } from 'vitest';
import { RegauthError } from '../errors/regauth-error.js';
import type { ResourceScope } from '../scope/parse-scope.js';
import { compileAcl } from './acl.js';
import {
  type AuthorizationResult,
  createAuthorizerChain,
  createConfiguredAuthorizer,
  type ScopeAuthorizer,
} from './authorizer-chain.js';

const CONTEXT = { service: 'registry', address: '192.0.2.1' };
const repo = (name: string, ...actions: string[]): ResourceScope => ({ type: 'repository', name, actions });

/** A link that grants what `answer` says per repository name, and records what it was asked. */
function recording(answer: (scope: ResourceScope) => readonly string[] | undefined | Error) {
  const asked: ResourceScope[] = [];
  const link: ScopeAuthorizer = {
    kind: 'recording',
    async decide(_identity, scope) {
      asked.push(scope);
      const result = answer(scope);
      if (result instanceof Error) throw result;
      return result === undefined ? undefined : { granted: result };
    },
  };
  return { link, asked };
}

describe('createConfiguredAuthorizer', () => {
  const acl = compileAcl([
    { match: { name: 'public/*' }, actions: ['pull'] },
    { match: { name: 'frozen/*' }, actions: [] },
  ]);

  it('asks the next authorizer only for resources no ACL rule matched; a matching rule decides, a denial too', async () => {
    const ext = recording(() => ['pull', 'push']);
    const chain = createConfiguredAuthorizer(acl, [ext.link]);
    const granted = await chain.authorize(
      { name: 'alice', labels: {} },
      [
        repo('public/a', 'pull', 'push'),
        repo('frozen/b', 'pull'),
        repo('team/c', 'pull'),
        repo('team/c', 'push'),
      ],
      CONTEXT,
    );
    expect(granted).toEqual([repo('public/a', 'pull'), repo('team/c', 'pull', 'push')]);
    // frozen/b matched a rule with no actions: denied there, the program never asked.
    expect(ext.asked).toEqual([repo('team/c', 'pull', 'push')]);
  });

  it('never grants more than was asked, whatever a link returns, and names the link that decided', async () => {
    const greedy = recording(() => ['pull', 'push', 'delete', '*']);
    const chain = createConfiguredAuthorizer(acl, [greedy.link]);
    expect(await chain.explain(undefined, [repo('team/c', 'pull')], CONTEXT)).toEqual([
      { requested: repo('team/c', 'pull'), granted: ['pull'], by: 'recording' },
    ]);
    expect(await chain.explain(undefined, [repo('public/a', 'pull')], CONTEXT)).toEqual([
      { requested: repo('public/a', 'pull'), granted: ['pull'], by: 'acl', rule: 0 },
    ]);
  });

  it('denies what no link has an opinion on, and fails the whole request when a link fails', async () => {
    const silent = recording(() => undefined);
    expect(
      await createConfiguredAuthorizer(acl, [silent.link]).authorize(
        undefined,
        [repo('x/y', 'pull')],
        CONTEXT,
      ),
    ).toEqual([]);
    const broken = recording((scope) =>
      scope.name === 'b/2' ? new RegauthError('ERR_AUTH_BACKEND', 'down') : ['pull'],
    );
    await expect(
      createConfiguredAuthorizer(acl, [broken.link]).authorize(
        undefined,
        [repo('a/1', 'pull'), repo('b/2', 'pull')],
        CONTEXT,
      ),
    ).rejects.toMatchObject({ code: 'ERR_AUTH_BACKEND' });
  });

  it('tells the observer what each link decided', async () => {
    const seen: [string, AuthorizationResult][] = [];
    const deny = recording((scope) =>
      scope.name === 'x/err' ? new Error('crash') : scope.name === 'x/no' ? [] : ['pull'],
    );
    const chain = createAuthorizerChain(
      [
        {
          kind: 'acl',
          decide: async (_i, scope) => (scope.name === 'public/a' ? { granted: ['pull'] } : undefined),
        },
        deny.link,
      ],
      (kind, result) => seen.push([kind, result]),
    );
    await chain.authorize(
      undefined,
      [repo('public/a', 'pull'), repo('x/yes', 'pull'), repo('x/no', 'pull')],
      CONTEXT,
    );
    await expect(chain.authorize(undefined, [repo('x/err', 'pull')], CONTEXT)).rejects.toThrow('crash');
    expect(seen).toEqual([
      ['acl', 'granted'],
      ['acl', 'no_match'],
      ['recording', 'granted'],
      ['acl', 'no_match'],
      ['recording', 'denied'],
      ['acl', 'no_match'],
      ['recording', 'error'],
    ]);
  });
});
