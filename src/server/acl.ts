import { BlockList, isIP } from 'node:net';
import { RegauthError } from '../errors/regauth-error.js';
import type { ResourceScope } from '../scope/parse-scope.js';
import type { AuthorizationContext, Identity } from './authenticator.js';
import { checkGlobSafety, checkRegexSafety } from './check-regex-safety.js';
import { normalizeAddress, parseTrustedProxy } from './client-address.js';

/** A resource type a rule may name; anything else in a request is never granted. */
export type AclResourceType = 'repository' | 'registry';
export const ACL_RESOURCE_TYPES: readonly AclResourceType[] = ['repository', 'registry'];

/**
 * The actions a rule may list: distribution's docs/spec/auth/scope.md names pull, push and
 * delete for repositories and `*` (the catalog's only action). Anything else is a typo
 * (`pul`) that would silently grant nothing, so it is refused at start-up.
 */
export const ACL_ACTIONS: readonly string[] = ['pull', 'push', 'delete', '*'];

/** One rule as written in the config file's `acl:` list (cesanta/docker_auth auth_server/authz/acl.go). */
export interface AclRuleConfig {
  /** Every condition given must hold; a condition left out matches anything. */
  readonly match: {
    /** Exact name, glob (`*`, `?` any characters) or `/regex/`; `""` is the anonymous user. */
    readonly account?: string;
    /** `repository` or `registry` (the catalog). Left out: both. */
    readonly type?: AclResourceType;
    /** Glob (`*` one path part, `**` any) or `/regex/`. */
    readonly name?: string;
    /** The token's service, as the account: exact, glob or `/regex/`. */
    readonly service?: string;
    /** The client's address: an IPv4 or IPv6 address or a CIDR network. */
    readonly ip?: string;
    /** Label name → pattern (as `name`); each label named must have a value that matches. */
    readonly labels?: Readonly<Record<string, string>>;
  };
  /** Actions granted; `*` grants whatever was asked for, `*` included; `[]` denies. */
  readonly actions: readonly string[];
  /** Why the rule is there; shown by `regauth serve --check`. */
  readonly comment?: string;
}

/** What decided about one resource of a request: for `regauth serve --check` and logs. */
export interface AclDecision {
  /** The resource with every action asked for it (one resource asked in several scopes is merged). */
  readonly requested: ResourceScope;
  /** The actions granted; empty when denied. */
  readonly granted: readonly string[];
  /** The index in `acl:` of the rule that decided; undefined when no rule matched. */
  readonly rule?: number;
}

/** Who may do what: the rules of the `acl:` list compiled by compileAcl. */
export interface Acl {
  /**
   * What `identity` (undefined: anonymous) may do of what it asked for: per resource, the first
   * rule that matches decides, and the grant is the intersection of the asked and the allowed
   * actions (distribution docs/spec/auth/token.md: a token never grants more than was asked). A
   * resource with nothing granted is left out. Shaped like Authorizer.authorize, synchronous.
   */
  authorize(
    identity: Identity | undefined,
    requested: readonly ResourceScope[],
    context: AuthorizationContext,
  ): ResourceScope[];
  /** The same decisions with the rule that made each, denied resources included. */
  explain(
    identity: Identity | undefined,
    requested: readonly ResourceScope[],
    context: AuthorizationContext,
  ): AclDecision[];
}

/** A rule's config is wrong; `path` is the key under `acl[i]` (`match.name`, `actions[1]`). */
export class AclRuleError extends Error {
  constructor(
    readonly path: string,
    why: string,
  ) {
    super(why);
  }
}

/** The values placeholders take for one request. */
interface MatchInput {
  readonly account: string;
  readonly labels: Readonly<Record<string, readonly string[]>>;
  readonly service: string;
}

type Matcher = (value: string, input: MatchInput) => boolean;

function escapeRegex(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
}

function isRegexPattern(pattern: string): boolean {
  return pattern.length >= 2 && pattern.startsWith('/') && pattern.endsWith('/');
}

/**
 * How `*` and `?` read in a glob. `path` (names, labels): `*` and `?` stay within one
 * `/`-separated part and `**` crosses parts, as Go's path.Match that docker_auth uses plus `**`.
 * `text` (accounts, services): they match any characters.
 */
type GlobStyle = 'path' | 'text';

function globSource(glob: string, style: GlobStyle): string {
  const one = style === 'path' ? '[^/]' : '[\\s\\S]';
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*' && glob[i + 1] === '*') {
      out += '[\\s\\S]*';
      i++;
    } else if (c === '*') out += `${one}*`;
    else if (c === '?') out += one;
    else out += escapeRegex(c);
  }
  return out;
}

/** `${account}`, `${service}`, `${labels:NAME}`, as docker_auth's acl.go names them. */
const PLACEHOLDER_RE = /\$\{([^}]*)\}/g;
const LABEL_PREFIX = 'labels:';

function placeholderValues(key: string, input: MatchInput): readonly string[] {
  if (key === 'account') return input.account === '' ? [] : [input.account];
  if (key === 'service') return input.service === '' ? [] : [input.service];
  const values = input.labels[key.slice(LABEL_PREFIX.length)] ?? [];
  return [...new Set(values.filter((v) => v !== ''))];
}

/** Entries kept per pattern of compiled placeholder values: a token request must not build a RegExp each time. */
const PATTERN_CACHE_ENTRIES = 512;

/**
 * Compiles a pattern with placeholders. A placeholder's value is escaped, so it only ever
 * matches itself: an account named `a*` or `.*` cannot widen a rule. A label placeholder
 * stands for any one of the label's values, the same one wherever it repeats in the pattern
 * (docker_auth tries the rule once per value, docs/Labels.md); that is compiled to one
 * alternation, a named group for its first place and a back-reference for the others. A
 * placeholder without a value (anonymous `${account}`, a label the identity lacks) matches
 * nothing.
 */
function compilePattern(pattern: string, style: GlobStyle): Matcher {
  const regex = isRegexPattern(pattern);
  const body = regex ? pattern.slice(1, -1) : pattern;
  const unsafe = regex ? checkRegexSafety(body) : checkGlobSafety(body, style === 'path');
  if (unsafe !== undefined) throw new AclRuleError('', unsafe);
  const toSource = regex ? (s: string) => s : (s: string) => globSource(s, style);
  const literals: string[] = [];
  const keys: string[] = [];
  let last = 0;
  for (const m of body.matchAll(PLACEHOLDER_RE)) {
    const key = m[1] as string;
    if (key !== 'account' && key !== 'service' && !(key.startsWith(LABEL_PREFIX) && key.length > 7)) {
      throw new AclRuleError(
        '',
        `unknown placeholder ${m[0]}; known: \${account}, \${service}, \${labels:NAME}`,
      );
    }
    literals.push(body.slice(last, m.index));
    keys.push(key);
    last = m.index + m[0].length;
  }
  literals.push(body.slice(last));
  const distinct = [...new Set(keys)];

  const build = (values: readonly (readonly string[])[]): RegExp => {
    const seen = new Set<number>();
    let source = toSource(literals[0] as string);
    keys.forEach((key, i) => {
      const k = distinct.indexOf(key);
      const vals = values[k] as readonly string[];
      if (vals.length === 1) source += escapeRegex(vals[0] as string);
      else if (seen.has(k)) source += `\\k<regauthp${k}>`;
      else {
        seen.add(k);
        source += `(?<regauthp${k}>${vals.map(escapeRegex).join('|')})`;
      }
      source += toSource(literals[i + 1] as string);
    });
    return new RegExp(`^(?:${source})$`);
  };

  try {
    if (distinct.length === 0) {
      const re = build([]);
      return (value) => re.test(value);
    }
    // Checked once, at start-up, with stand-in values: one value and several.
    build(distinct.map(() => ['x']));
    build(distinct.map(() => ['x', 'y']));
  } catch (cause) {
    throw new AclRuleError('', `bad pattern: ${(cause as Error).message}`);
  }
  const cache = new Map<string, RegExp | null>();
  return (value, input) => {
    const values = distinct.map((key) => placeholderValues(key, input));
    const cacheKey = JSON.stringify(values);
    let re = cache.get(cacheKey);
    if (re === undefined) {
      re = values.some((v) => v.length === 0) ? null : build(values);
      if (cache.size >= PATTERN_CACHE_ENTRIES) cache.clear();
      cache.set(cacheKey, re);
    }
    return re?.test(value) === true;
  };
}

function compileIp(pattern: string): (address: string) => boolean {
  const network = parseTrustedProxy(pattern);
  if (!network) {
    throw new AclRuleError(
      'match.ip',
      `${JSON.stringify(pattern)} is not an IP address or CIDR network, such as 10.0.0.0/8 or 2001:db8::/32`,
    );
  }
  const list = new BlockList();
  list.addSubnet(network.address, network.prefix, network.family);
  return (address) => {
    const normalized = normalizeAddress(address);
    const version = isIP(normalized);
    return version !== 0 && list.check(normalized, version === 4 ? 'ipv4' : 'ipv6');
  };
}

interface CompiledRule {
  readonly matches: (scope: ResourceScope, input: MatchInput, address: string) => boolean;
  readonly actions: ReadonlySet<string>;
  /** Whether the anonymous user can ever match (no label, no ${account} or ${labels:…}). */
  readonly needsIdentity: boolean;
}

function at<T>(path: string, compile: () => T): T {
  try {
    return compile();
  } catch (err) {
    if (err instanceof AclRuleError) throw new AclRuleError(err.path || path, err.message);
    throw err;
  }
}

/** Compiles one rule; a bad pattern, address or action throws AclRuleError naming its key. */
export function compileAclRule(rule: AclRuleConfig): CompiledRule {
  const { match } = rule;
  const optional = (key: 'account' | 'name' | 'service', style: GlobStyle): Matcher | undefined => {
    const pattern = match[key];
    return pattern === undefined ? undefined : at(`match.${key}`, () => compilePattern(pattern, style));
  };
  const account = optional('account', 'text');
  const name = optional('name', 'path');
  const service = optional('service', 'text');
  const ip = match.ip === undefined ? undefined : at('match.ip', () => compileIp(match.ip as string));
  const type = match.type;
  if (type !== undefined && !ACL_RESOURCE_TYPES.includes(type)) {
    throw new AclRuleError('match.type', `must be one of ${ACL_RESOURCE_TYPES.join(', ')}`);
  }
  const labels = Object.entries(match.labels ?? {}).map(
    ([label, pattern]) =>
      [label, at(`match.labels.${label}`, () => compilePattern(pattern, 'path'))] as const,
  );
  rule.actions.forEach((action, i) => {
    if (!ACL_ACTIONS.includes(action)) {
      throw new AclRuleError(
        `actions[${i}]`,
        `unknown action ${JSON.stringify(action)}; the actions are ${ACL_ACTIONS.join(', ')}`,
      );
    }
  });
  const patterns = [match.account, match.name, match.service, ...Object.values(match.labels ?? {})];
  const needsIdentity =
    labels.length > 0 || patterns.some((p) => p?.includes('${account}') || p?.includes('${labels:'));
  return {
    matches: (scope, input, address) =>
      (type === undefined
        ? ACL_RESOURCE_TYPES.includes(scope.type as AclResourceType)
        : scope.type === type) &&
      (account === undefined || account(input.account, input)) &&
      (name === undefined || name(scope.name, input)) &&
      (service === undefined || service(input.service, input)) &&
      (ip === undefined || ip(address)) &&
      labels.every(([label, matcher]) => (input.labels[label] ?? []).some((v) => matcher(v, input))),
    actions: new Set(rule.actions),
    needsIdentity,
  };
}

/**
 * Compiles the rules once; a bad pattern, address or action throws ERR_INVALID_CONFIG naming
 * `acl[i].<key>` here, at start-up, not per request. An empty list denies everything.
 */
export function compileAcl(rules: readonly AclRuleConfig[]): Acl {
  const compiled = rules.map((rule, i) => {
    try {
      return compileAclRule(rule);
    } catch (err) {
      if (err instanceof AclRuleError) {
        throw new RegauthError('ERR_INVALID_CONFIG', `acl[${i}].${err.path}: ${err.message}`);
      }
      throw err;
    }
  });

  const decide = (
    scope: ResourceScope,
    input: MatchInput,
    address: string,
  ): { granted: string[]; rule?: number } => {
    // Types a rule cannot name (plugin, blob…) are never granted, even by a catch-all rule.
    if (!(ACL_RESOURCE_TYPES as readonly string[]).includes(scope.type)) return { granted: [] };
    const index = compiled.findIndex((rule) => rule.matches(scope, input, address));
    const rule = compiled[index];
    if (rule === undefined) return { granted: [] };
    const granted = rule.actions.has('*')
      ? [...scope.actions]
      : scope.actions.filter((action) => action !== '*' && rule.actions.has(action));
    return { granted, rule: index };
  };

  const explain: Acl['explain'] = (identity, requested, context) => {
    const input: MatchInput = {
      account: identity?.name ?? '',
      labels: identity?.labels ?? {},
      service: context.service,
    };
    // Requests may name one resource in several scopes (`…:pull` and `…:push`): merge them.
    const merged = new Map<string, { type: string; name: string; actions: Set<string> }>();
    for (const scope of requested) {
      const key = `${scope.type}\u0000${scope.name}`;
      const entry = merged.get(key);
      if (entry) for (const a of scope.actions) entry.actions.add(a);
      else merged.set(key, { type: scope.type, name: scope.name, actions: new Set(scope.actions) });
    }
    return [...merged.values()].map(({ type, name, actions }) => {
      const scope: ResourceScope = { type, name, actions: [...actions] };
      return { requested: scope, ...decide(scope, input, context.address) };
    });
  };

  return {
    explain,
    authorize: (identity, requested, context) =>
      explain(identity, requested, context)
        .filter((d) => d.granted.length > 0)
        .map((d) => ({ type: d.requested.type, name: d.requested.name, actions: [...d.granted] })),
  };
}

/** Actions that change a registry; an anonymous grant of any of them is almost always a mistake. */
const WRITE_ACTIONS = ['push', 'delete', '*'];

/**
 * The rules that let anyone on the network write: an `account` pattern that matches the
 * anonymous user ("") — left out, `*`, `/.*\/`, or `""` itself — no label condition, no
 * `${account}` or `${labels:…}`, and push, delete or `*` among the actions. The server warns
 * about them at start-up. An `ip` condition does not exempt a rule: it narrows who, not what.
 */
export function anonymousWriteRules(
  rules: readonly AclRuleConfig[],
): { readonly index: number; readonly actions: string[] }[] {
  const found: { index: number; actions: string[] }[] = [];
  const anonymous: MatchInput = { account: '', labels: {}, service: '' };
  rules.forEach((rule, index) => {
    const account = rule.match.account;
    try {
      if (account !== undefined && !compilePattern(account, 'text')('', anonymous)) return;
      if (compileAclRule(rule).needsIdentity) return;
    } catch (err) {
      // compileAcl reports a broken rule, with its path; here it is no anonymous write.
      if (err instanceof AclRuleError) return;
      throw err;
    }
    const actions = rule.actions.filter((a) => WRITE_ACTIONS.includes(a));
    if (actions.length > 0) found.push({ index, actions });
  });
  return found;
}
