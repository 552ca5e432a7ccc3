import { performance } from 'node:perf_hooks';
import type { ResourceScope } from '../scope/parse-scope.js';
import type { Acl } from './acl.js';
import type { AuthorizationContext, Authorizer, Identity } from './authenticator.js';

/** What one authorizer of a chain decided about one resource. */
export interface ScopeDecision {
  /** The actions granted, a subset of those asked for; empty: denied, and no later authorizer is asked. */
  readonly granted: readonly string[];
  /** The index in `acl:` of the rule that decided, when the ACL decided. */
  readonly rule?: number;
}

/**
 * One link of an authorizer chain: decides per resource, or answers undefined when it has no
 * opinion (no ACL rule matched) and hands the resource to the next link. docker_auth's
 * api.Authorizer with api.NoMatch (cesanta/docker_auth auth_server/api/authz.go).
 */
export interface ScopeAuthorizer {
  /** What it is, for logs, metrics and `serve --check`: `acl`, `ext_authz`. */
  readonly kind: string;
  /** Throwing means it failed (a program crashed, timed out): the request is answered 503. */
  decide(
    identity: Identity | undefined,
    scope: ResourceScope,
    context: AuthorizationContext,
  ): Promise<ScopeDecision | undefined>;
  /** Releases connections and timers; called on shutdown. */
  close?(): Promise<void>;
}

/** One resource's decision with the link that made it; `by` undefined: no link matched (denied). */
export interface ChainDecision extends Partial<ScopeDecision> {
  readonly requested: ResourceScope;
  readonly granted: readonly string[];
  readonly by?: string;
}

/** What a link decided, for metrics: `no_match` hands the resource on. */
export type AuthorizationResult = 'granted' | 'denied' | 'no_match' | 'error';

/** An Authorizer that can also say which link decided each resource (`regauth serve --check`). */
export interface AuthorizerChain extends Authorizer {
  /** Per resource (merged as `authorize` merges them): what was granted and which link decided. */
  explain(
    identity: Identity | undefined,
    requested: readonly ResourceScope[],
    context: AuthorizationContext,
  ): Promise<ChainDecision[]>;
}

/** The static ACL as a link: a rule that matches decides; no rule matching hands the resource on. */
export function aclScopeAuthorizer(acl: Acl): ScopeAuthorizer {
  return {
    kind: 'acl',
    async decide(identity, scope, context) {
      const [decision] = acl.explain(identity, [scope], context);
      if (decision?.rule === undefined) return undefined;
      return { granted: decision.granted, rule: decision.rule };
    },
  };
}

/** One resource named in several scopes (`…:pull`, `…:push`) becomes one, with every action asked. */
function mergeScopes(requested: readonly ResourceScope[]): ResourceScope[] {
  const merged = new Map<string, { type: string; name: string; actions: string[] }>();
  for (const scope of requested) {
    const key = `${scope.type}\u0000${scope.name}`;
    const entry = merged.get(key);
    if (entry) entry.actions.push(...scope.actions.filter((a) => !entry.actions.includes(a)));
    else merged.set(key, { type: scope.type, name: scope.name, actions: [...new Set(scope.actions)] });
  }
  return [...merged.values()];
}

/**
 * Asks the links in order, per resource, as docker_auth does (auth_server/server/server.go
 * authorizeScope): the first link with an opinion decides, a denial included; a resource no
 * link matched is denied. A link that throws fails the whole request, never a partial grant.
 * Links never grant more than was asked (distribution docs/spec/auth/token.md), whatever they
 * return. `observe` is told each link's decision and how long it took.
 */
export function createAuthorizerChain(
  links: readonly ScopeAuthorizer[],
  observe?: (kind: string, result: AuthorizationResult, seconds: number) => void,
): AuthorizerChain {
  const explain: AuthorizerChain['explain'] = async (identity, requested, context) => {
    const decisions: ChainDecision[] = [];
    for (const scope of mergeScopes(requested)) {
      let decided: ChainDecision = { requested: scope, granted: [] };
      for (const link of links) {
        // The clock is read only for metrics: without them, nothing asks how long a link took.
        const start = observe === undefined ? 0 : performance.now();
        let decision: ScopeDecision | undefined;
        try {
          decision = await link.decide(identity, scope, context);
        } catch (err) {
          observe?.(link.kind, 'error', (performance.now() - start) / 1000);
          throw err;
        }
        const granted = decision?.granted.filter((a) => scope.actions.includes(a)) ?? [];
        observe?.(
          link.kind,
          decision === undefined ? 'no_match' : granted.length > 0 ? 'granted' : 'denied',
          (performance.now() - start) / 1000,
        );
        if (decision === undefined) continue;
        decided = {
          requested: scope,
          granted: [...new Set(granted)],
          by: link.kind,
          ...(decision.rule === undefined ? {} : { rule: decision.rule }),
        };
        break;
      }
      decisions.push(decided);
    }
    return decisions;
  };
  return {
    explain,
    async authorize(identity, requested, context) {
      return (await explain(identity, requested, context))
        .filter((d) => d.granted.length > 0)
        .map((d) => ({ type: d.requested.type, name: d.requested.name, actions: [...d.granted] }));
    },
    async close() {
      await Promise.all(links.map((link) => link.close?.()));
    },
  };
}

/**
 * The chain a token server runs: the ACL first, then `authorizers` (the `ext_authz` program)
 * for what no rule matched, in docker_auth's order (auth_server/server/server.go
 * NewAuthServer). `regauth serve --check` builds the same, so its dry run tells the truth.
 */
export function createConfiguredAuthorizer(
  acl: Acl,
  authorizers: readonly ScopeAuthorizer[] | undefined,
  observe?: (kind: string, result: AuthorizationResult, seconds: number) => void,
): AuthorizerChain {
  return createAuthorizerChain([aclScopeAuthorizer(acl), ...(authorizers ?? [])], observe);
}
