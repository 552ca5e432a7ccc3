export type { RegauthErrorCode, RegauthErrorOptions } from './errors/regauth-error.js';
export { isRegauthError, RegauthError } from './errors/regauth-error.js';
export { isValidRepositoryName } from './reference/repository-name.js';
export { formatScope } from './scope/format-scope.js';
export type { ResourceScope } from './scope/parse-scope.js';
export { parseScope, parseScopeList } from './scope/parse-scope.js';
