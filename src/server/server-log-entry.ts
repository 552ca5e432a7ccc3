import type { LdapLogEntry } from './ldap-authenticator.js';
import type { TokenLogEntry } from './token-service.js';

/** What the token server and handler log: token requests and lifecycle events. */
export type ServerLogEntry =
  | TokenLogEntry
  | LdapLogEntry
  | { readonly msg: 'listening'; readonly url: string }
  | { readonly msg: 'metrics listening'; readonly url: string }
  | { readonly msg: 'admin listening'; readonly url: string }
  /** A wrong or missing admin bearer secret (never the secret sent). */
  | { readonly msg: 'admin unauthorized'; readonly level: 'warn'; readonly address: string }
  | {
      readonly msg: 'revocation recorded';
      readonly account: string;
      /** The epoch in force now, RFC 3339. */
      readonly before: string;
      readonly address: string;
    }
  | {
      readonly msg: 'plain HTTP on a network address';
      readonly level: 'warn';
      readonly url: string;
      readonly hint: string;
    }
  | { readonly msg: 'users reloaded'; readonly users: number; readonly file: string }
  | {
      /** The folder of an htpasswd file cannot be watched: its changes are read on SIGHUP only. */
      readonly msg: 'users file not watched';
      readonly level: 'warn';
      readonly file: string;
      readonly error: string;
      readonly hint: string;
    }
  | { readonly msg: 'request failed'; readonly level: 'error'; readonly error: string }
  | {
      readonly msg: 'reload failed';
      readonly level: 'error';
      readonly error: string;
      /** Users still served: those whose entry the new file holds unchanged. */
      readonly kept: number;
      /** Users refused from now on: the new file drops, changes or breaks their entry. */
      readonly dropped: number;
    }
  | { readonly msg: 'bad request target'; readonly address: string; readonly status: 400 }
  | {
      readonly msg: 'certificate expires soon';
      readonly level: 'warn';
      readonly notAfter: string;
      /** Which one, as a config key path: `token.certificate` or `token.keys[1].certificate`. */
      readonly certificate: string;
    }
  | {
      readonly msg: 'bcrypt costs differ';
      readonly level: 'warn';
      readonly file: string;
      /** Users per cost. */
      readonly costs: Readonly<Record<string, number>>;
      readonly hint: string;
    }
  | {
      readonly msg: 'acl lets anonymous users write';
      readonly level: 'warn';
      /** The rule's position in `acl:`, from 0. */
      readonly rule: number;
      readonly actions: readonly string[];
    }
  | {
      readonly msg: 'X-Forwarded-For ignored';
      readonly level: 'warn';
      readonly peer: string;
      readonly hint: string;
    }
  | {
      /** Why an OIDC issuer's token was refused (never the token or a claim's value). */
      readonly msg: 'oidc token refused';
      readonly issuer: string;
      readonly reason: string;
    }
  | {
      /** A config reload (SIGHUP) changed nothing: the old config keeps serving. */
      readonly msg: 'config reload failed';
      readonly level: 'error';
      /** What was wrong, with the config file and key path. */
      readonly error: string;
      readonly hint: string;
    }
  | {
      readonly msg: 'config reloaded';
      /** Top-level sections whose content changed (names only, never values). */
      readonly changed: readonly string[];
      /** Present when the TLS certificate and key were loaded again. */
      readonly tls?: 'reloaded';
    }
  | {
      readonly msg: 'config change needs a restart';
      readonly level: 'warn';
      /** The key paths that keep their started value (RESTART_ONLY_KEYS). */
      readonly keys: readonly string[];
      readonly hint: string;
    }
  | {
      /** Redis failed or timed out: logged when it happens, then at most once per STORE_LOG_INTERVAL_MS. */
      readonly msg: 'store unreachable';
      readonly level: 'warn';
      /** The store's URL without user or password. */
      readonly store: string;
      readonly error: string;
      /** Failures since the last such line. */
      readonly errors: number;
      readonly hint: string;
    }
  | { readonly msg: 'store reachable again'; readonly store: string }
  | { readonly msg: 'shutting down' };
