import { readFileSync } from 'node:fs';
import { decodeJwt, errors, type JWTPayload, jwtVerify } from 'jose';
import { RegauthError } from '../errors/regauth-error.js';
import type { Authentication, Authenticator, Identity, PasswordCheckRequest } from './authenticator.js';
import { ClaimError, type ClaimTemplate, claimValues, compileClaimTemplate } from './oidc-claim-template.js';
import { OidcKeySource, type OidcKeySourceOptions, oidcUrlProblem } from './oidc-key-source.js';

/**
 * Signature algorithms accepted unless configured otherwise: the asymmetric ones. `none` and the
 * HMAC ones never are: an HS256 token "signed" with the issuer's public key is the classic forgery
 * (RFC 8725 §2.1, §3.1).
 */
export const OIDC_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;

/** Clock skew allowed on `exp`, `nbf` and `iat`: CI runners' clocks drift by seconds, not minutes. */
export const DEFAULT_OIDC_LEEWAY_S = 30;
/** The most skew one may configure: a longer leeway makes an expired CI token a usable one. */
export const MAX_OIDC_LEEWAY_S = 60;
/**
 * A password longer than this is not a CI token (GitHub's and Kubernetes' are 1–2 KiB): it is
 * not decoded at all.
 */
export const MAX_OIDC_TOKEN_LENGTH = 16 * 1024;

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** An OIDC issuer whose tokens are accepted as passwords: what createOidcAuthenticator takes. */
export interface OidcAuthenticatorConfig extends Omit<OidcKeySourceOptions, 'issuer'> {
  /** The issuer identifier, exactly as the tokens' `iss` says it (`https://token.actions.githubusercontent.com`). */
  readonly issuer: string;
  /** The `aud` a token must carry (one of these); what the CI job asked its token for. */
  readonly audience: string | readonly string[];
  /**
   * The user name clients log in with (`docker login -u oidc`): other user names are left to the
   * next authenticator. Left out: any user name, as GHCR does.
   */
  readonly user?: string;
  /** The identity's name, a template of claims: `repo:${repository}`, `${sub}`. */
  readonly name: string;
  /** Label name → a claim (`repository_owner`) or a template (`${namespace_path}/${ref}`). */
  readonly labels?: Readonly<Record<string, string>>;
  /** Clock skew allowed on `exp`/`nbf`, in seconds; at most MAX_OIDC_LEEWAY_S. */
  readonly leewaySeconds?: number;
  /** Signature algorithms accepted; a subset of OIDC_ALGORITHMS. */
  readonly algorithms?: readonly string[];
  /** Called with why a token of this issuer was refused (never the token or a claim value). */
  readonly onRefused?: (why: string) => void;
  /** A PEM file of certificates to trust for the issuer's TLS (a cluster's CA), read at creation. */
  readonly caFile?: string;
}

type LabelSource = { readonly claim: string } | { readonly template: ClaimTemplate };

function invalid(message: string): never {
  throw new RegauthError('ERR_INVALID_CONFIG', message);
}

/** Why jose refused a token, in words that hold neither the token nor a claim's value. */
function refusal(error: unknown): string {
  if (error instanceof errors.JWTExpired) return 'the token has expired';
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf') return 'the token is not valid yet';
    if (error.claim === 'iat') return 'the token was issued in the future';
    return `claim ${error.claim} is not what this issuer's config accepts`;
  }
  if (error instanceof errors.JOSEAlgNotAllowed)
    return 'the token is signed with an algorithm that is not accepted';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'the signature does not verify';
  if (error instanceof errors.JWKSNoMatchingKey)
    return "no key of the issuer's key set matches the token's kid";
  if (error instanceof errors.JWKSMultipleMatchingKeys)
    return 'the token names no kid and the issuer has several keys';
  if (error instanceof errors.JOSEError) return `the token is malformed (${error.code})`;
  return 'the token could not be verified';
}

/**
 * Accepts a CI job's OIDC token (GitHub Actions, GitLab CI, a Kubernetes service account) as the
 * password: the workload-identity login of ECR, Artifact Registry and GHCR. The token is verified
 * against the issuer's published keys (OpenID Connect Core 1.0 §3.1.3.7: `iss` exact, `aud`,
 * `exp`) and the identity is built from its claims. A password that is not a JWT of this issuer
 * is `unknown`, so other authenticators (or other issuers) get their turn.
 */
export function createOidcAuthenticator(config: OidcAuthenticatorConfig): Authenticator {
  const issuerProblem = oidcUrlProblem(config.issuer);
  if (issuerProblem !== undefined) invalid(`OIDC issuer "${config.issuer}" ${issuerProblem}`);
  if (config.jwksUri !== undefined) {
    const problem = oidcUrlProblem(config.jwksUri);
    if (problem !== undefined) invalid(`OIDC jwks_uri "${config.jwksUri}" ${problem}`);
  }
  const audience = typeof config.audience === 'string' ? [config.audience] : [...config.audience];
  if (audience.length === 0 || audience.some((a) => typeof a !== 'string' || a === '')) {
    invalid(`OIDC issuer ${config.issuer}: audience must be one or more non-empty strings`);
  }
  const leeway = config.leewaySeconds ?? DEFAULT_OIDC_LEEWAY_S;
  if (!Number.isInteger(leeway) || leeway < 0 || leeway > MAX_OIDC_LEEWAY_S) {
    invalid(
      `OIDC issuer ${config.issuer}: leeway must be a whole number of seconds from 0 to ${MAX_OIDC_LEEWAY_S}`,
    );
  }
  const algorithms = [...(config.algorithms ?? OIDC_ALGORITHMS)];
  const unknownAlg = algorithms.find((a) => !(OIDC_ALGORITHMS as readonly string[]).includes(a));
  if (unknownAlg !== undefined || algorithms.length === 0) {
    invalid(
      `OIDC issuer ${config.issuer}: algorithm ${JSON.stringify(unknownAlg ?? '(none)')} is not accepted; use some of ${OIDC_ALGORITHMS.join(', ')}`,
    );
  }
  const name = compileClaimTemplate(config.name, `OIDC issuer ${config.issuer}: name`);
  const labels = Object.entries(config.labels ?? {}).map(([label, source]): [string, LabelSource] => [
    label,
    source.includes('${')
      ? { template: compileClaimTemplate(source, `OIDC issuer ${config.issuer}: labels.${label}`) }
      : { claim: source },
  ]);
  let ca = config.ca;
  if (config.caFile !== undefined) {
    try {
      ca = readFileSync(config.caFile, 'utf8');
    } catch (cause) {
      throw new RegauthError(
        'ERR_INVALID_CONFIG',
        `OIDC issuer ${config.issuer}: cannot read ca_file ${config.caFile}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`,
        { cause },
      );
    }
  }
  const keys = new OidcKeySource({ ...config, ...(ca === undefined ? {} : { ca }) });
  const refused = (why: string): Authentication => {
    config.onRefused?.(why);
    return { outcome: 'refused' };
  };

  const verify = async (token: string): Promise<JWTPayload> => {
    const options = {
      issuer: config.issuer,
      audience,
      algorithms,
      clockTolerance: leeway,
      requiredClaims: ['exp'],
      ...(config.now === undefined ? {} : { currentDate: new Date(config.now()) }),
    };
    const started = (config.now ?? Date.now)();
    const used = await keys.current();
    try {
      return (await jwtVerify(token, used, options)).payload;
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey)) throw error;
      // The issuer may have rotated its keys since they were fetched (a new kid): fetch them once more.
      const fresh = await keys.refreshForUnknownKid(used, started);
      if (fresh === undefined) throw error;
      return (await jwtVerify(token, fresh, options)).payload;
    }
  };

  const identityOf = (payload: JWTPayload): Identity => {
    const identityLabels: Record<string, string[]> = {};
    for (const [label, source] of labels) {
      let values: string[];
      if ('claim' in source) {
        values = claimValues(payload, source.claim);
      } else {
        try {
          values = [source.template.render(payload)];
        } catch (error) {
          // A template label whose claims the token lacks is left out, like a missing claim.
          if (error instanceof ClaimError && / is missing$/.test(error.message)) values = [];
          else throw error;
        }
      }
      if (values.length > 0) identityLabels[label] = values;
    }
    return { name: name.render(payload), labels: identityLabels };
  };

  return {
    kind: 'oidc',
    unguessable: true,
    // The configured user name is no secret (every CI job sends it): log lines may name it, and
    // the guard knows which logins are this issuer's even when the password is junk.
    knows: (user: string) => config.user !== undefined && user === config.user,
    async authenticate(request: PasswordCheckRequest): Promise<Authentication> {
      if (config.user !== undefined && request.user !== config.user) return { outcome: 'unknown' };
      const token = request.password;
      if (token.length > MAX_OIDC_TOKEN_LENGTH || !JWT_SHAPE.test(token)) return { outcome: 'unknown' };
      let unverified: JWTPayload;
      try {
        unverified = decodeJwt(token);
      } catch {
        return { outcome: 'unknown' };
      }
      // Another issuer's token is another authenticator's business; this issuer's decides here.
      if (unverified.iss !== config.issuer) return { outcome: 'unknown' };
      let payload: JWTPayload;
      try {
        payload = await verify(token);
      } catch (error) {
        // The issuer cannot be reached: not the client's fault, so not a failed login either.
        if (error instanceof RegauthError) throw error;
        return refused(refusal(error));
      }
      try {
        return {
          outcome: 'accepted',
          identity: identityOf(payload),
          expiresAt: (payload.exp as number) * 1000,
        };
      } catch (error) {
        if (error instanceof ClaimError) return refused(error.message);
        throw error;
      }
    },
    close: () => keys.close(),
  };
}
