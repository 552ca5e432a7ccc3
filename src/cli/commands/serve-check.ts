import { isIP } from 'node:net';
import { RegauthError } from '../../errors/regauth-error.js';
import { formatScope } from '../../scope/format-scope.js';
import { parseScopeList, type ResourceScope } from '../../scope/parse-scope.js';
import { ACL_RESOURCE_TYPES, type AclRuleConfig, compileAcl } from '../../server/acl.js';
import type { Identity } from '../../server/authenticator.js';
import { type ChainDecision, createConfiguredAuthorizer } from '../../server/authorizer-chain.js';
import { normalizeAddress } from '../../server/client-address.js';
import { loadServerConfig } from '../../server/server-config.js';
import { handlerConfigFromServerConfig } from '../../server/token-handler-config.js';
import { createTokenServer, type ServerLogEntry } from '../../server/token-server.js';

export interface ServeCheckOptions {
  readonly config: string;
  readonly account?: string;
  readonly label?: readonly string[];
  readonly ip?: string;
  readonly scope?: readonly string[];
}

/** `--label group=ci --label group=dev` → `{ group: ['ci', 'dev'] }`. */
function parseLabels(entries: readonly string[]): Record<string, string[]> {
  const labels: Record<string, string[]> = {};
  for (const entry of entries) {
    const eq = entry.indexOf('=');
    if (eq <= 0) {
      throw new RegauthError(
        'ERR_USAGE',
        `--label ${JSON.stringify(entry)} is not NAME=VALUE, such as group=ci`,
      );
    }
    const name = entry.slice(0, eq);
    labels[name] = [...(labels[name] ?? []), entry.slice(eq + 1)];
  }
  return labels;
}

function describeRule(rule: AclRuleConfig): string {
  const match = Object.entries(rule.match)
    .map(([key, value]) => `${key}: ${JSON.stringify(value)}`)
    .join(', ');
  const comment = rule.comment === undefined ? '' : ` # ${rule.comment}`;
  return `{ match: { ${match} }, actions: ${JSON.stringify(rule.actions)} }${comment}`;
}

/**
 * `regauth serve --check`: everything `regauth serve` checks at start-up (the config, the key
 * and certificate, the users file), without listening; then, given scopes, what the ACL would
 * grant an account with those labels from that address, and which rule decided (or that the
 * ext_authz program did: it is run, as the server would): a dry run an operator can paste into a
 * review.
 */
export async function serveCheckCommand(opts: ServeCheckOptions): Promise<void> {
  const labelEntries = opts.label ?? [];
  const scopeTexts = opts.scope ?? [];
  if (
    scopeTexts.length === 0 &&
    (opts.account !== undefined || labelEntries.length > 0 || opts.ip !== undefined)
  ) {
    throw new RegauthError('ERR_USAGE', '--account, --label and --ip need --scope: the scopes to check');
  }
  if (labelEntries.length > 0 && (opts.account === undefined || opts.account === '')) {
    throw new RegauthError('ERR_USAGE', '--label needs --account: the anonymous user has no labels');
  }
  const labels = parseLabels(labelEntries);
  let address = '';
  if (opts.ip !== undefined) {
    address = normalizeAddress(opts.ip);
    if (isIP(address) === 0) {
      throw new RegauthError('ERR_USAGE', `--ip ${JSON.stringify(opts.ip)} is not an IPv4 or IPv6 address`);
    }
  }
  let requested: ResourceScope[];
  try {
    requested = scopeTexts.flatMap((text) => parseScopeList(text));
  } catch (err) {
    if (err instanceof RegauthError) throw new RegauthError('ERR_USAGE', `--scope: ${err.message}`);
    throw err;
  }

  const config = await loadServerConfig(opts.config);
  const warnings: ServerLogEntry[] = [];
  const server = await createTokenServer(config, {
    log: (entry) => {
      if ('level' in entry && entry.level === 'warn') warnings.push(entry);
    },
  });
  await server.close();
  const out: string[] = [];
  for (const warning of warnings) {
    const { msg, level: _level, ...details } = warning as ServerLogEntry & { level: string };
    out.push(`warning: ${msg} ${JSON.stringify(details)}`);
  }
  const ext = config.extAuthz;
  out.push(
    `${opts.config}: valid; ${config.acl.length} acl rule${config.acl.length === 1 ? '' : 's'}` +
      (ext !== undefined
        ? `, then ext_authz ${ext.command} for what no rule matches`
        : config.acl.length === 0
          ? ' (acl: [] denies everything to everyone)'
          : ''),
  );

  if (requested.length > 0) {
    const identity: Identity | undefined =
      opts.account === undefined || opts.account === '' ? undefined : { name: opts.account, labels };
    const who =
      identity === undefined
        ? 'the anonymous user'
        : `account ${JSON.stringify(identity.name)}` +
          (labelEntries.length === 0 ? '' : ` with labels ${labelEntries.join(', ')}`);
    out.push(
      `${who}, from ${address === '' ? 'no address (rules with ip never match; give --ip)' : address}, ` +
        `service ${JSON.stringify(config.token.service)}:`,
    );
    // The chain the server runs, the ext_authz program included: a dry run that tells the truth.
    const chain = createConfiguredAuthorizer(
      compileAcl(config.acl),
      handlerConfigFromServerConfig(config).authorizers,
    );
    let decisions: ChainDecision[];
    try {
      decisions = await chain.explain(identity, requested, { service: config.token.service, address });
    } catch (err) {
      process.stdout.write(`${out.join('\n')}\n`);
      throw new RegauthError(
        'ERR_AUTH_BACKEND',
        `${(err as Error).message}; the server would answer this token request 503`,
      );
    }
    for (const decision of decisions) {
      const asked = formatScope(decision.requested);
      const verdict = decision.granted.length === 0 ? 'denied' : `granted ${decision.granted.join(',')}`;
      const rule = decision.rule === undefined ? undefined : config.acl[decision.rule];
      const why =
        rule !== undefined
          ? `acl[${decision.rule}] ${describeRule(rule)}`
          : decision.by === 'ext_authz' && ext !== undefined
            ? `no acl rule matched; ext_authz ${ext.command} decided`
            : (ACL_RESOURCE_TYPES as readonly string[]).includes(decision.requested.type)
              ? 'no rule matched'
              : `rules grant only ${ACL_RESOURCE_TYPES.join(' and ')} scopes`;
      out.push(`  ${asked}: ${verdict} (${why})`);
    }
  }
  process.stdout.write(`${out.join('\n')}\n`);
}
