import { RegauthError } from '../errors/regauth-error.js';

/**
 * The longest claim value that goes into an identity. GitHub's longest (`job_workflow_ref`) stays
 * under 200 characters; a longer value is not a CI identity, and would bloat tokens and log lines.
 */
export const MAX_CLAIM_VALUE_LENGTH = 255;

/** Values of one label at most: a `groups` claim listing more is not something an ACL matches on. */
export const MAX_LABEL_VALUES = 64;

// C0 and C1 controls and the Unicode line separators: they forge log lines and terminal output.
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
// Glob and regex metacharacters of ACL patterns: an identity reaches patterns through the ACL's
// `${account}` and `${labels:…}` placeholders, so a claim must never carry one (git forbids them in
// ref names, GitHub and GitLab in project paths: a real CI claim has none).
const PATTERN_CHARS = /[*?[\]\\]/;
const PLACEHOLDER = /\$\{([^}]*)\}/g;
const CLAIM_PATH = /^[A-Za-z0-9_][A-Za-z0-9_.:-]*$/;

/** Why a claim could not be used; never holds the claim's value. */
export class ClaimError extends Error {}

/** A compiled `name:` or label template: literal text and `${claim}` placeholders. */
export interface ClaimTemplate {
  /** The claim paths it reads. */
  readonly claims: readonly string[];
  /** The text with each placeholder replaced once (a value is never expanded again). */
  render(payload: Readonly<Record<string, unknown>>): string;
}

/**
 * Compiles `repo:${repository}`. A placeholder names a claim; dots step into objects
 * (`kubernetes.io.namespace`, a key with a dot in it is found by the longest match). Throws
 * ERR_INVALID_CONFIG with `what` (a config path) on a malformed template.
 */
export function compileClaimTemplate(template: string, what: string): ClaimTemplate {
  const parts: ({ literal: string } | { claim: string })[] = [];
  let last = 0;
  for (const match of template.matchAll(PLACEHOLDER)) {
    const claim = (match[1] ?? '').trim();
    if (!CLAIM_PATH.test(claim)) {
      throw new RegauthError(
        'ERR_INVALID_CONFIG',
        `${what}: "\${${match[1]}}" does not name a claim; write a claim name such as \${repository}`,
      );
    }
    parts.push({ literal: template.slice(last, match.index) }, { claim });
    last = match.index + match[0].length;
  }
  const tail = template.slice(last);
  if (tail.includes('${')) {
    throw new RegauthError('ERR_INVALID_CONFIG', `${what}: a "\${" is not closed by "}"`);
  }
  parts.push({ literal: tail });
  const claims = parts.flatMap((p) => ('claim' in p ? [p.claim] : []));
  if (claims.length === 0) {
    throw new RegauthError(
      'ERR_INVALID_CONFIG',
      `${what}: names no claim, so every token would get the same identity; use a placeholder such as \${sub}`,
    );
  }
  for (const part of parts) {
    if ('literal' in part && (CONTROL.test(part.literal) || PATTERN_CHARS.test(part.literal))) {
      throw new RegauthError(
        'ERR_INVALID_CONFIG',
        `${what}: holds a control or pattern character (* ? [ ] \\)`,
      );
    }
  }
  return {
    claims,
    render(payload) {
      let out = '';
      for (const part of parts) out += 'literal' in part ? part.literal : claimText(payload, part.claim);
      if (out.length > MAX_CLAIM_VALUE_LENGTH) {
        throw new ClaimError(
          `the identity built from ${claims.join(', ')} is over ${MAX_CLAIM_VALUE_LENGTH} characters`,
        );
      }
      return out;
    },
  };
}

/** The value at a claim path, or undefined; `a.b.c` tries the key `a.b.c`, then `a.b` → `c`, then `a` → `b.c`. */
export function lookupClaim(payload: unknown, path: string): unknown {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return undefined;
  const record = payload as Record<string, unknown>;
  if (Object.hasOwn(record, path)) return record[path];
  for (let dot = path.lastIndexOf('.'); dot > 0; dot = path.lastIndexOf('.', dot - 1)) {
    const head = path.slice(0, dot);
    if (Object.hasOwn(record, head)) {
      const found = lookupClaim(record[head], path.slice(dot + 1));
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/** Checks one claim value for an identity: a non-empty bounded string without control or pattern characters. */
export function checkClaimValue(value: unknown, claim: string): string {
  if (typeof value === 'boolean') return String(value);
  if (typeof value !== 'string') throw new ClaimError(`claim ${claim} is not a string`);
  if (value === '') throw new ClaimError(`claim ${claim} is empty`);
  if (value.length > MAX_CLAIM_VALUE_LENGTH) {
    throw new ClaimError(`claim ${claim} is over ${MAX_CLAIM_VALUE_LENGTH} characters`);
  }
  if (CONTROL.test(value)) throw new ClaimError(`claim ${claim} holds a control character`);
  if (PATTERN_CHARS.test(value))
    throw new ClaimError(`claim ${claim} holds a pattern character (* ? [ ] \\)`);
  return value;
}

/** A claim that must be there, as one text: what a template placeholder reads. */
export function claimText(payload: unknown, claim: string): string {
  const value = lookupClaim(payload, claim);
  if (value === undefined || value === null) throw new ClaimError(`claim ${claim} is missing`);
  return checkClaimValue(value, claim);
}

/**
 * A label's values from a claim: none when the claim is absent (GitHub leaves `environment` out of
 * jobs without one), one for a string or boolean, each of a list of strings (`groups`).
 */
export function claimValues(payload: unknown, claim: string): string[] {
  const value = lookupClaim(payload, claim);
  if (value === undefined || value === null) return [];
  if (Array.isArray(value)) {
    if (value.length > MAX_LABEL_VALUES)
      throw new ClaimError(`claim ${claim} has over ${MAX_LABEL_VALUES} values`);
    return [...new Set(value.map((v) => checkClaimValue(v, claim)))];
  }
  return [checkClaimValue(value, claim)];
}
