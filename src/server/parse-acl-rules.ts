import { type AclResourceType, type AclRuleConfig, AclRuleError, compileAclRule } from './acl.js';

const RULE_KEYS = ['match', 'actions', 'comment'];
const MATCH_KEYS = ['account', 'type', 'name', 'service', 'ip', 'labels'];

/**
 * Checks the `acl:` list of a config file: every problem is reported through `fail` with its
 * key path (`acl[2].match.labels.group`, `acl[0].actions[1]`). A config without `acl` is
 * refused rather than read as "nothing granted": a forgotten or mis-indented list would
 * otherwise start a server that denies everything, or, worse, look like it works for anonymous
 * pulls someone expected to be closed. `acl: []` says "deny all" on purpose.
 */
export function parseAclRules(value: unknown, fail: (path: string, why: string) => never): AclRuleConfig[] {
  if (value === undefined || value === null) {
    fail(
      'acl',
      'missing: list the rules that grant access (first match wins; see the README), ' +
        'or write `acl: []` to deny everything to everyone',
    );
  }
  if (!Array.isArray(value)) fail('acl', 'must be a list of rules; `acl: []` denies everything');
  return value.map((item, i): AclRuleConfig => {
    const path = `acl[${i}]`;
    const mapping = (
      v: unknown,
      at: string,
      allowed: readonly string[] | undefined,
    ): Record<string, unknown> => {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(at, 'must be a mapping');
      for (const key of Object.keys(v)) {
        if (allowed !== undefined && !allowed.includes(key)) {
          fail(`${at}.${key}`, `unknown key (known here: ${allowed.join(', ')})`);
        }
      }
      return v as Record<string, unknown>;
    };
    const rule = mapping(item, path, RULE_KEYS);
    const match = mapping(rule.match ?? {}, `${path}.match`, MATCH_KEYS);
    const out: {
      account?: string;
      type?: AclResourceType;
      name?: string;
      service?: string;
      ip?: string;
      labels?: Record<string, string>;
    } = {};
    for (const key of ['account', 'type', 'name', 'service', 'ip'] as const) {
      const v = match[key];
      if (v === undefined) continue;
      if (typeof v !== 'string') {
        fail(
          `${path}.match.${key}`,
          key === 'ip'
            ? 'must be an address or CIDR network, such as 10.0.0.0/8'
            : key === 'type'
              ? 'must be repository or registry'
              : 'must be a string (exact, glob or /regex/)',
        );
      }
      (out as Record<string, string>)[key] = v;
    }
    if (match.labels !== undefined) {
      const labels = mapping(match.labels, `${path}.match.labels`, undefined);
      for (const [label, pattern] of Object.entries(labels)) {
        if (typeof pattern !== 'string') {
          fail(`${path}.match.labels.${label}`, 'must be a string (exact, glob or /regex/)');
        }
      }
      out.labels = labels as Record<string, string>;
    }
    const actions = rule.actions;
    if (!Array.isArray(actions) || !actions.every((a) => typeof a === 'string')) {
      fail(`${path}.actions`, 'must be a list of actions such as [pull, push] or ["*"]; [] denies');
    }
    if (rule.comment !== undefined && typeof rule.comment !== 'string') {
      fail(`${path}.comment`, 'must be a string');
    }
    const parsed: AclRuleConfig = {
      match: out,
      actions: actions as string[],
      ...(typeof rule.comment === 'string' ? { comment: rule.comment } : {}),
    };
    try {
      compileAclRule(parsed);
    } catch (err) {
      if (err instanceof AclRuleError) fail(`${path}.${err.path}`, err.message);
      throw err;
    }
    return parsed;
  });
}
