/**
 * The repository-name grammar shared by image references and scopes (distribution's
 * reference package and scope.md): an optional `host[:port]` part, then path components of
 * lowercase alphanumerics joined by `.`, `_`, `__` or runs of `-`.
 */

/** distribution's reference.NameTotalLengthMax: the registry rejects longer names. */
export const MAX_REPOSITORY_NAME_LENGTH = 255;

const HOST_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const HOST = `(?:${HOST_COMPONENT}(?:\\.${HOST_COMPONENT})*(?::[0-9]+)?|\\[[0-9a-fA-F:.]+\\](?::[0-9]+)?)`;
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';

export const PATH_COMPONENT_RE = new RegExp(`^${PATH_COMPONENT}$`);
const NAME_RE = new RegExp(`^(?:${HOST}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);

/** Whether `name` is a repository name the registry accepts (with or without a host part). */
export function isValidRepositoryName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_REPOSITORY_NAME_LENGTH && NAME_RE.test(name);
}
