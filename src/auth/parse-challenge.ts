import { RegauthError } from '../errors/regauth-error.js';

/**
 * One authentication challenge from a `WWW-Authenticate` header (RFC 7235 §4.1), such as
 * `Bearer realm="https://auth.docker.io/token",service="registry.docker.io"`.
 */
export interface Challenge {
  /** The auth scheme, lowercased (`bearer`, `basic`): schemes are case-insensitive. */
  readonly scheme: string;
  /**
   * The auth-params, names lowercased and quoted values unescaped. The object has no prototype,
   * so a name such as `constructor` is only present when the server sent it.
   */
  readonly params: Readonly<Record<string, string>>;
  /**
   * The token68 form that some schemes use instead of params (`Negotiate YIIB…==`). Kept in its
   * own field rather than under a made-up param name so it can never clash with a real param.
   */
  readonly token68?: string;
}

/**
 * Far above any real challenge (Docker Hub's is ~150 bytes, a cross-repository mount scope a
 * few hundred) yet small enough that a hostile header costs nothing to scan.
 */
export const MAX_CHALLENGE_HEADER_LENGTH = 16 * 1024;

// RFC 9110 §5.6.2 tchar: ! # $ % & ' * + - . ^ _ ` | ~ DIGIT ALPHA
const TCHAR = new Set("!#$%&'*+-.^_`|~");
// RFC 7235 §2.1 token68 characters, before the trailing '=' padding.
const TOKEN68_CHAR = new Set('-._~+/');

function isAlnum(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

function isTchar(ch: string): boolean {
  return isAlnum(ch.charCodeAt(0)) || TCHAR.has(ch);
}

function isToken68Char(ch: string): boolean {
  return isAlnum(ch.charCodeAt(0)) || TOKEN68_CHAR.has(ch);
}

/** Optional white space; CR and LF too, so a folded (obs-fold) header still reads. */
function isSpace(ch: string | undefined): boolean {
  return ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n';
}

const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const TOKEN68_RE = /^[A-Za-z0-9\-._~+/]+=*$/;
// Control characters other than HTAB cannot appear in a quoted-string, escaped or not.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point.
const CTL_RE = /[\x00-\x08\x0a-\x1f\x7f]/;

/** A hand-written scanner: linear in the input, so no header can make it backtrack. */
class ChallengeScanner {
  private pos = 0;
  private readonly out: Challenge[] = [];
  private current: { scheme: string; params: Record<string, string>; token68?: string } | undefined;

  constructor(private readonly s: string) {}

  run(): Challenge[] {
    const { s } = this;
    while (this.pos < s.length) {
      this.skipSpace();
      if (s[this.pos] === ',') {
        this.pos++; // an empty list element (RFC 7230 §7 allows them)
        continue;
      }
      if (this.pos >= s.length) break;
      this.element();
    }
    this.flush();
    return this.out;
  }

  /** One list element: a new challenge (with its first param or token68), or one more param. */
  private element(): void {
    const { s } = this;
    const start = this.pos;
    const name = this.token();
    if (name === '') {
      this.skipElement();
      return;
    }
    this.skipSpace();
    if (s[this.pos] === '=') {
      this.pos = start;
      this.params();
      return;
    }
    // A scheme is followed by white space, a comma or the end; anything else is garbage.
    const next = s[start + name.length];
    if (next !== undefined && next !== ',' && !isSpace(next)) {
      this.pos = start + name.length;
      this.skipElement();
      return;
    }
    this.flush();
    this.current = { scheme: name.toLowerCase(), params: Object.create(null) as Record<string, string> };
    if (this.pos >= s.length || s[this.pos] === ',') return;
    if (this.tryToken68()) return;
    this.params();
  }

  /**
   * `token68 OWS` followed by a comma or the end. `realm="x"` and `realm=x` fail here (something
   * follows the `=`), so they are read as params instead.
   */
  private tryToken68(): boolean {
    const { s } = this;
    let i = this.pos;
    while (i < s.length && isToken68Char(s[i] as string)) i++;
    if (i === this.pos) return false;
    while (s[i] === '=') i++;
    const end = i;
    while (isSpace(s[i])) i++;
    if (i < s.length && s[i] !== ',') return false;
    if (this.current) this.current.token68 = s.slice(this.pos, end);
    this.pos = i;
    return true;
  }

  /**
   * `name OWS = OWS value`, repeated. Params are meant to be comma-separated, but a missing comma
   * between two params is forgiven: `realm="a" service="b"` can only mean one thing.
   */
  private params(): void {
    const { s } = this;
    for (;;) {
      const start = this.pos;
      const name = this.token();
      this.skipSpace();
      if (name === '' || s[this.pos] !== '=') {
        this.pos = start;
        this.skipElement();
        return;
      }
      this.pos++;
      this.skipSpace();
      const value = this.value();
      // A param before any scheme, a truncated quoted-string and a bare `name=` are dropped;
      // a quoted "" is a value like any other.
      if (value !== undefined && this.current) this.current.params[name.toLowerCase()] = value;
      this.skipSpace();
      if (this.pos >= s.length || s[this.pos] === ',') return;
    }
  }

  /**
   * A quoted-string (unescaped), or a bare value. Bare values are meant to be tokens, but some
   * servers send `realm=https://host/token` unquoted, so anything up to white space, a comma or a
   * quote is taken. Returns undefined for an unterminated quoted-string or an empty bare value.
   */
  private value(): string | undefined {
    const { s } = this;
    if (s[this.pos] === '"') {
      this.pos++;
      let out = '';
      let from = this.pos;
      while (this.pos < s.length) {
        const ch = s[this.pos];
        if (ch === '"') {
          out += s.slice(from, this.pos);
          this.pos++;
          return out;
        }
        if (ch === '\\') {
          out += s.slice(from, this.pos);
          this.pos++;
          from = this.pos; // the escaped character starts the next run, whatever it is
          if (this.pos < s.length) this.pos++;
          continue;
        }
        this.pos++;
      }
      return undefined;
    }
    const start = this.pos;
    while (this.pos < s.length) {
      const ch = s[this.pos];
      if (ch === ',' || ch === '"' || isSpace(ch)) break;
      this.pos++;
    }
    return this.pos === start ? undefined : s.slice(start, this.pos);
  }

  private token(): string {
    const { s } = this;
    const start = this.pos;
    while (this.pos < s.length && isTchar(s[this.pos] as string)) this.pos++;
    return s.slice(start, this.pos);
  }

  private skipSpace(): void {
    while (isSpace(this.s[this.pos])) this.pos++;
  }

  /** Skips to the next comma outside a quoted-string: the element cannot be read. */
  private skipElement(): void {
    const { s } = this;
    let quoted = false;
    while (this.pos < s.length) {
      const ch = s[this.pos];
      if (quoted) {
        if (ch === '\\') this.pos++;
        else if (ch === '"') quoted = false;
      } else if (ch === '"') {
        quoted = true;
      } else if (ch === ',') {
        return;
      }
      this.pos++;
    }
  }

  private flush(): void {
    if (this.current) this.out.push(this.current);
    this.current = undefined;
  }
}

/**
 * Parses `WWW-Authenticate` values into challenges (RFC 7235 §4.1): several challenges per
 * value and several values, case-insensitive scheme and param names, token or quoted-string
 * values. Parsing is lenient, as registries are not always exact: empty and unreadable parts are
 * skipped, a param repeated in one challenge keeps its last value (as docker and containerd do),
 * and nothing at all (`null`, `undefined`, `''`) gives `[]` (GCR answers some 401s without a
 * challenge). The only error is ERR_INVALID_CHALLENGE for input longer than
 * {@link MAX_CHALLENGE_HEADER_LENGTH} characters in all.
 */
export function parseChallenges(header: string | readonly string[] | null | undefined): Challenge[] {
  if (header === null || header === undefined) return [];
  const values = (typeof header === 'string' ? [header] : Array.isArray(header) ? header : []).filter(
    (v): v is string => typeof v === 'string',
  );
  const total = values.reduce((n, v) => n + v.length, 0);
  if (total > MAX_CHALLENGE_HEADER_LENGTH) {
    throw new RegauthError(
      'ERR_INVALID_CHALLENGE',
      `WWW-Authenticate is ${total} characters long, more than the ${MAX_CHALLENGE_HEADER_LENGTH} accepted; ` +
        'the registry or a proxy in front of it sent a broken header',
    );
  }
  return values.flatMap((v) => new ChallengeScanner(v).run());
}

/** Canonical spelling of common schemes, for headers and traces that people read. */
const SCHEME_SPELLING: Readonly<Record<string, string>> = {
  basic: 'Basic',
  bearer: 'Bearer',
  digest: 'Digest',
  negotiate: 'Negotiate',
  ntlm: 'NTLM',
};

function quote(value: string): string {
  return `"${value.replace(/["\\]/g, '\\$&')}"`;
}

/**
 * Writes a challenge as a `WWW-Authenticate` value: `Bearer realm="…",service="…"`, every value
 * quoted and escaped. Throws ERR_INVALID_CHALLENGE when the result could not be read back: a
 * scheme or param name that is not a token, a malformed token68, or a control character in a
 * value (which no quoting can carry, and which would let a value forge header lines).
 */
export function formatChallenge(challenge: Challenge): string {
  const bad = (why: string): RegauthError =>
    new RegauthError('ERR_INVALID_CHALLENGE', `cannot format challenge: ${why}`);
  const { scheme, params, token68 } = challenge;
  if (!TOKEN_RE.test(scheme)) throw bad(`scheme ${JSON.stringify(scheme)} is not a token`);
  let out = SCHEME_SPELLING[scheme.toLowerCase()] ?? scheme;
  const parts: string[] = [];
  for (const [name, value] of Object.entries(params)) {
    if (!TOKEN_RE.test(name)) throw bad(`param name ${JSON.stringify(name)} is not a token`);
    if (CTL_RE.test(value)) throw bad(`the value of ${name} holds a control character`);
    parts.push(`${name}=${quote(value)}`);
  }
  if (token68 !== undefined) {
    if (!TOKEN68_RE.test(token68)) throw bad('token68 holds characters outside A-Z a-z 0-9 - . _ ~ + / =');
    if (parts.length > 0) throw bad('a challenge has either a token68 or params, not both');
    out += ` ${token68}`;
  }
  if (parts.length > 0) out += ` ${parts.join(',')}`;
  return out;
}

/**
 * The token endpoint of a (Bearer) challenge: its `realm`, resolved against the URL of the request
 * that was challenged, since a realm may be relative (RFC 3986 §5.2). Undefined when the
 * challenge has no realm (or an empty one). Throws ERR_INVALID_CHALLENGE when the realm is not a
 * URL or not http(s): the token request could not be sent anyway. Whether an http realm may be
 * used is the token fetcher's decision, not this function's. Only Bearer realms are URLs; a Basic
 * realm is a description (`Basic realm="basic-realm"`), so do not call this for Basic challenges.
 * `requestUrl` must be absolute (URL's TypeError otherwise).
 */
export function resolveRealm(challenge: Challenge, requestUrl: string | URL): URL | undefined {
  const realm = challenge.params.realm;
  if (realm === undefined || realm.trim() === '') return undefined;
  // requestUrl comes from our own code, so a bad one is a bug: let URL's TypeError through.
  const base = new URL(requestUrl);
  // Origin and path only: a query string may carry something a message should not.
  const from = `${base.origin}${base.pathname}`;
  let url: URL;
  try {
    url = new URL(realm, base);
  } catch (err) {
    throw new RegauthError(
      'ERR_INVALID_CHALLENGE',
      `the ${challenge.scheme} challenge from ${from} has realm ${JSON.stringify(realm)}, which is not a URL; ` +
        'the registry is misconfigured (auth.token.realm in its config)',
      { cause: err },
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new RegauthError(
      'ERR_INVALID_CHALLENGE',
      `the ${challenge.scheme} challenge from ${from} has realm ${JSON.stringify(realm)}; ` +
        'a token realm must be an http or https URL',
    );
  }
  return url;
}
