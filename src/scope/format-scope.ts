import type { ResourceScope } from './parse-scope.js';

/** The wire form of a scope: `type[(class)]:name:a,b`. Inverse of `parseScope`. */
export function formatScope(scope: ResourceScope): string {
  const type = scope.class === undefined ? scope.type : `${scope.type}(${scope.class})`;
  return `${type}:${scope.name}:${scope.actions.join(',')}`;
}
