import { RegauthError } from '../errors/regauth-error.js';
import { isValidRepositoryName } from '../reference/repository-name.js';

/**
 * One resource scope: `type[(class)]:name:action[,action…]` (distribution docs/spec/auth/scope.md).
 * `repository:library/alpine:pull`, `repository(plugin):vieux/sshfs:pull`, `registry:catalog:*`.
 */
export interface ResourceScope {
  readonly type: string;
  /** The resource class in `repository(plugin)`; the registry ignores it when it checks access. */
  readonly class?: string;
  readonly name: string;
  readonly actions: readonly string[];
}

const TYPE_RE = /^([a-z0-9]+)(?:\(([a-z0-9]+)\))?$/;
const ACTION_RE = /^(?:[a-z]+|\*)$/;
/** Long enough for any real name plus a host part; stops pathological input early. */
const MAX_SCOPE_LENGTH = 1024;

/**
 * Parses one resource scope. The name may itself hold a `:` (a `host:port` prefix), so the type
 * runs to the first `:` and the actions start after the last one
 * (https://distribution.github.io/distribution/spec/auth/scope/).
 * Repository names are checked against the reference grammar; other types (such as
 * `registry:catalog`) need only a non-empty name without spaces.
 */
export function parseScope(text: string): ResourceScope {
  const bad = (why: string): RegauthError =>
    new RegauthError(
      'ERR_INVALID_SCOPE',
      `invalid scope ${JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text)}: ${why}; ` +
        'expected type:name:action[,action…] such as repository:library/alpine:pull',
    );
  if (text.length > MAX_SCOPE_LENGTH) throw bad(`longer than ${MAX_SCOPE_LENGTH} characters`);
  const first = text.indexOf(':');
  const last = text.lastIndexOf(':');
  if (first <= 0 || last === first) throw bad('it needs a type, a name and actions separated by ":"');
  const typePart = text.slice(0, first);
  const name = text.slice(first + 1, last);
  const actionPart = text.slice(last + 1);
  const typeMatch = TYPE_RE.exec(typePart);
  if (!typeMatch?.[1])
    throw bad(`resource type ${JSON.stringify(typePart)} is not lowercase letters and digits`);
  const type = typeMatch[1];
  if (name === '' || /\s/.test(name)) throw bad('the resource name is empty or holds white space');
  if (type === 'repository' && !isValidRepositoryName(name)) {
    throw bad(
      `${JSON.stringify(name)} is not a valid repository name (lowercase path components, at most 255 characters)`,
    );
  }
  const actions = actionPart.split(',').filter((a) => a !== '');
  if (actions.length === 0) throw bad('it names no action');
  for (const action of actions) {
    if (!ACTION_RE.test(action))
      throw bad(`action ${JSON.stringify(action)} is not lowercase letters or "*"`);
  }
  const scope: ResourceScope = { type, name, actions: [...new Set(actions)] };
  return typeMatch[2] === undefined ? scope : { ...scope, class: typeMatch[2] };
}

/**
 * Parses a scope value that may list several resources separated by spaces, as a challenge's
 * `scope` parameter and the OAuth2 `scope` form field (RFC 6749 §3.3) do.
 */
export function parseScopeList(text: string): ResourceScope[] {
  return text
    .split(' ')
    .filter((part) => part !== '')
    .map(parseScope);
}
