import { RegauthError } from '../errors/regauth-error.js';
import { MAX_OIDC_LEEWAY_S, OIDC_ALGORITHMS, type OidcAuthenticatorConfig } from './oidc-authenticator.js';
import { compileClaimTemplate } from './oidc-claim-template.js';
import { oidcUrlProblem } from './oidc-key-source.js';

type Obj = Record<string, unknown>;

/** What parseOidcConfig needs of serve.yml's config reader: path-named failures and typed reads. */
export interface OidcConfigReader {
  fail(path: string, why: string): never;
  object(value: unknown, path: string, allowed: readonly string[]): Obj;
  string(obj: Obj, key: string, path: string, fallback?: string): string;
  optionalString(obj: Obj, key: string, path: string): string | undefined;
  integer(obj: Obj, key: string, path: string, fallback: number, min: number): number;
  path(obj: Obj, key: string, path: string): string;
}

/** The keys of an `oidc:` entry of `authn:`. */
export const OIDC_CONFIG_KEYS = [
  'issuer',
  'audience',
  'user',
  'name',
  'labels',
  'leeway_seconds',
  'algorithms',
  'jwks_uri',
  'ca_file',
] as const;

/**
 * Checks an `oidc:` entry of serve.yml's `authn:` list (`path` is where it sits, such as
 * `authn[1].oidc`) and returns what createOidcAuthenticator takes. Every error names the key.
 *
 * ```yaml
 * authn:
 *   - oidc:
 *       issuer: https://token.actions.githubusercontent.com
 *       audience: https://registry.example.com
 *       user: github-actions
 *       name: repo:${repository}
 *       labels: { owner: repository_owner, ref: ref, environment: environment }
 * ```
 */
export function parseOidcConfig(
  reader: OidcConfigReader,
  raw: unknown,
  path: string,
): OidcAuthenticatorConfig {
  const entry = reader.object(raw, path, OIDC_CONFIG_KEYS);
  const at = `${path}.`;
  const issuer = reader.string(entry, 'issuer', at);
  const issuerProblem = oidcUrlProblem(issuer);
  if (issuerProblem !== undefined) reader.fail(`${at}issuer`, issuerProblem);

  const rawAudience = entry.audience;
  const audience =
    typeof rawAudience === 'string' && rawAudience !== ''
      ? rawAudience
      : Array.isArray(rawAudience) &&
          rawAudience.length > 0 &&
          rawAudience.every((a) => typeof a === 'string' && a !== '')
        ? (rawAudience as string[])
        : reader.fail(
            `${at}audience`,
            'must be the audience the CI job requests its token for (a string or a list of strings), such as https://registry.example.com',
          );

  const user = reader.optionalString(entry, 'user', at);
  const name = reader.string(entry, 'name', at);
  checkTemplate(reader, name, `${at}name`);

  const labels: Record<string, string> = {};
  if (entry.labels !== undefined && entry.labels !== null) {
    const rawLabels = entry.labels;
    if (typeof rawLabels !== 'object' || Array.isArray(rawLabels)) {
      reader.fail(
        `${at}labels`,
        'must be a mapping of label name to claim, such as { owner: repository_owner }',
      );
    }
    for (const [label, source] of Object.entries(rawLabels as Obj)) {
      const labelPath = `${at}labels.${label}`;
      if (!/^[A-Za-z0-9_.-]{1,64}$/.test(label)) {
        reader.fail(labelPath, 'a label name is letters, digits, _ . - (at most 64)');
      }
      if (typeof source !== 'string' || source === '') {
        reader.fail(
          labelPath,
          'must be a claim name such as repository_owner, or a template such as ${namespace_path}',
        );
      }
      if (source.includes('${')) checkTemplate(reader, source, labelPath);
      else if (!/^[A-Za-z0-9_][A-Za-z0-9_.:-]*$/.test(source)) {
        reader.fail(labelPath, `"${source}" is not a claim name; write one such as repository_owner`);
      }
      labels[label] = source;
    }
  }

  const leewaySeconds = reader.integer(entry, 'leeway_seconds', at, 30, 0);
  if (leewaySeconds > MAX_OIDC_LEEWAY_S) {
    reader.fail(
      `${at}leeway_seconds`,
      `must be at most ${MAX_OIDC_LEEWAY_S}: a longer leeway lets expired CI tokens in (got ${leewaySeconds})`,
    );
  }

  let algorithms: string[] | undefined;
  if (entry.algorithms !== undefined) {
    const list = entry.algorithms;
    if (
      !Array.isArray(list) ||
      list.length === 0 ||
      !list.every((a) => typeof a === 'string' && (OIDC_ALGORITHMS as readonly string[]).includes(a))
    ) {
      reader.fail(
        `${at}algorithms`,
        `must be a list of some of ${OIDC_ALGORITHMS.join(', ')} (none and HS* are never accepted)`,
      );
    }
    algorithms = list as string[];
  }

  const jwksUri = reader.optionalString(entry, 'jwks_uri', at);
  if (jwksUri !== undefined) {
    const problem = oidcUrlProblem(jwksUri);
    if (problem !== undefined) reader.fail(`${at}jwks_uri`, problem);
  }
  const caFile = entry.ca_file === undefined ? undefined : reader.path(entry, 'ca_file', at);

  return {
    issuer,
    audience,
    name,
    labels,
    leewaySeconds,
    ...(user === undefined ? {} : { user }),
    ...(algorithms === undefined ? {} : { algorithms }),
    ...(jwksUri === undefined ? {} : { jwksUri }),
    ...(caFile === undefined ? {} : { caFile }),
  };
}

function checkTemplate(reader: OidcConfigReader, template: string, path: string): void {
  try {
    compileClaimTemplate(template, path);
  } catch (error) {
    if (!(error instanceof RegauthError)) throw error;
    reader.fail(path, error.message.slice(path.length + 2));
  }
}
