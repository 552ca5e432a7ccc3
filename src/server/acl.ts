import type { ResourceScope } from '../scope/parse-scope.js';

/** A resource type a rule may name; anything else in a request is never granted. */
export type AclResourceType = 'repository' | 'registry';
export const ACL_RESOURCE_TYPES: readonly AclResourceType[] = ['repository', 'registry'];

/** One rule as written in the config file's `acl:` list. */
export interface AclRuleConfig {
  readonly match: {
    /** Exact name, glob (`*`, `?`) or `/regex/`; `""` is the anonymous user. Left out: anyone. */
    readonly account?: string;
    /** Glob (`*` one path part, `**` any) or `/regex/`, with `${account}`. Left out: any. */
    readonly name?: string;
    /** Left out: `repository`. */
    readonly type?: AclResourceType;
  };
  /** Actions granted; `*` grants whatever was asked for, `*` included. */
  readonly actions: readonly string[];
}

type Matcher = (value: string) => boolean;

function escapeRegex(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
}

function isRegexPattern(pattern: string): boolean {
  return pattern.length >= 2 && pattern.startsWith('/') && pattern.endsWith('/');
}

/** Glob to regex source: `**` any run, `*` any run within one path part, `?` one character. */
function globSource(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*' && glob[i + 1] === '*') {
      out += '.*';
      i++;
    } else if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else out += escapeRegex(c);
  }
  return out;
}

const PLACEHOLDER = '${account}';

/**
 * Compiles a name pattern. `${account}` is filled in per request with the account name, escaped
 * so that an account can never widen the pattern; for an anonymous request a pattern with the
 * placeholder matches nothing.
 */
function compileNamePattern(pattern: string): (account: string) => Matcher {
  const regex = isRegexPattern(pattern);
  const body = regex ? pattern.slice(1, -1) : pattern;
  const parts = body.split(PLACEHOLDER);
  const toSource = regex ? (s: string) => s : globSource;
  if (parts.length === 1) {
    const re = new RegExp(`^(?:${toSource(body)})$`);
    return () => (value) => re.test(value);
  }
  // Validate the pattern once, at start-up, with a stand-in account.
  new RegExp(`^(?:${parts.map(toSource).join('x')})$`);
  // Compiled once per account (a few hundred kept): a token request must not build a RegExp.
  const cache = new Map<string, Matcher>();
  return (account) => {
    if (account === '') return () => false;
    let matcher = cache.get(account);
    if (!matcher) {
      const re = new RegExp(`^(?:${parts.map(toSource).join(escapeRegex(account))})$`);
      matcher = (value) => re.test(value);
      if (cache.size >= 512) cache.clear();
      cache.set(account, matcher);
    }
    return matcher;
  };
}

function compileAccountPattern(pattern: string): Matcher {
  if (isRegexPattern(pattern)) {
    const re = new RegExp(`^(?:${pattern.slice(1, -1)})$`);
    return (value) => re.test(value);
  }
  if (/[*?]/.test(pattern)) {
    const re = new RegExp(`^(?:${globSource(pattern).replaceAll('[^/]', '.')})$`);
    return (value) => re.test(value);
  }
  return (value) => value === pattern;
}

interface CompiledRule {
  readonly account: Matcher;
  readonly name: (account: string) => Matcher;
  readonly type: AclResourceType;
  readonly actions: ReadonlySet<string>;
}

/** Who may do what: the rules of the `acl:` list compiled by compileAcl. */
export interface Acl {
  /**
   * What `account` may do of what it asked for: per resource, the first rule that matches
   * decides, and the grant is the intersection of the asked and the allowed actions
   * (distribution docs/spec/auth/token.md: a token never grants more than was asked). A resource
   * with nothing granted is left out.
   */
  authorize(account: string, requested: readonly ResourceScope[]): ResourceScope[];
}

/** Compiles the rules once; a bad pattern throws here, at start-up, not per request. */
export function compileAcl(rules: readonly AclRuleConfig[]): Acl {
  const compiled: CompiledRule[] = rules.map((rule) => ({
    account: rule.match.account === undefined ? () => true : compileAccountPattern(rule.match.account),
    name: rule.match.name === undefined ? () => () => true : compileNamePattern(rule.match.name),
    type: rule.match.type ?? 'repository',
    actions: new Set(rule.actions),
  }));

  const grant = (account: string, scope: ResourceScope): string[] => {
    if (!(ACL_RESOURCE_TYPES as readonly string[]).includes(scope.type)) return [];
    for (const rule of compiled) {
      if (rule.type !== scope.type || !rule.account(account) || !rule.name(account)(scope.name)) continue;
      if (rule.actions.has('*')) return [...scope.actions];
      return scope.actions.filter((action) => action !== '*' && rule.actions.has(action));
    }
    return [];
  };

  return {
    authorize(account, requested) {
      // Requests may name one resource in several scopes (`…:pull` and `…:push`): merge them.
      const merged = new Map<string, { scope: ResourceScope; actions: Set<string> }>();
      for (const scope of requested) {
        const key = `${scope.type}\u0000${scope.name}`;
        const entry = merged.get(key);
        if (entry) for (const a of scope.actions) entry.actions.add(a);
        else merged.set(key, { scope, actions: new Set(scope.actions) });
      }
      const granted: ResourceScope[] = [];
      for (const { scope, actions } of merged.values()) {
        const allowed = grant(account, { ...scope, actions: [...actions] });
        if (allowed.length > 0) granted.push({ type: scope.type, name: scope.name, actions: allowed });
      }
      return granted;
    },
  };
}

/** Actions that change a registry; an anonymous grant of any of them is almost always a mistake. */
const WRITE_ACTIONS = ['push', 'delete', '*'];

/**
 * The rules that let anyone on the network write: an `account` pattern that matches the
 * anonymous user ("") — left out, `*`, `/.*\/`, or `""` itself — a name without `${account}`,
 * and push, delete or `*` among the actions. The server warns about them at start-up.
 */
export function anonymousWriteRules(
  rules: readonly AclRuleConfig[],
): { readonly index: number; readonly actions: string[] }[] {
  const found: { index: number; actions: string[] }[] = [];
  rules.forEach((rule, index) => {
    const account = rule.match.account;
    if (account !== undefined && !compileAccountPattern(account)('')) return;
    // A name with ${account} matches nothing for an anonymous request.
    if (rule.match.name?.includes(PLACEHOLDER)) return;
    const actions = rule.actions.filter((a) => WRITE_ACTIONS.includes(a));
    if (actions.length > 0) found.push({ index, actions });
  });
  return found;
}
