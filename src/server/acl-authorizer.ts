import type { Acl } from './acl.js';
import type { Authorizer } from './authenticator.js';

/**
 * The static ACL (acl.ts) as an Authorizer: docker_auth's `acl:` (cesanta/docker_auth
 * auth_server/authz/acl.go): rules match the identity's name and labels, the service and the
 * client's address. Pass a function to follow a reload that compiles a new ACL.
 */
export function createAclAuthorizer(acl: Acl | (() => Acl)): Authorizer {
  const current = typeof acl === 'function' ? acl : () => acl;
  return {
    async authorize(identity, requested, context) {
      return current().authorize(identity, requested, context);
    },
  };
}
