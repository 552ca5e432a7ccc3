import { readFile } from 'node:fs/promises';
import { withFileSystemErrors } from '../errors/file-system-error.js';
import { RegauthError } from '../errors/regauth-error.js';
import type { Authenticator } from './authenticator.js';
import { UserStore } from './htpasswd.js';
import { createHtpasswdAuthenticator } from './htpasswd-authenticator.js';
import type { ServerLogEntry } from './server-log-entry.js';
import { readValue, type ValueSource } from './token-handler-config.js';

/**
 * One entry of the `authn:` list before it is built: an htpasswd file or text (read again by a
 * reload), or a factory for any other backend (`ext_auth`, `ldap`…), called once at start-up.
 */
export type AuthnSource =
  | { readonly htpasswd: string }
  | { readonly entries: ValueSource }
  | {
      /** Builds the authenticator; `log` is the server's log, for what the backend must report. */
      readonly create: (log: (entry: ServerLogEntry) => void) => Authenticator | Promise<Authenticator>;
    };

/** Authenticators given as values, or a function returning them (called again on reload). */
export type AuthenticatorsSource =
  | readonly Authenticator[]
  | (() => readonly Authenticator[] | Promise<readonly Authenticator[]>);

/** The authenticators the token endpoint asks, in order, and how to read them again. */
export interface AuthnList {
  /** The list now; a reload swaps it for the next request. */
  current(): readonly Authenticator[];
  /** Reads every htpasswd source again, and calls an authenticators function again. */
  reload(): Promise<void>;
  close(): Promise<void>;
}

/** An htpasswd source with its current users; a reload replaces them. */
class HtpasswdSource {
  users: UserStore = UserStore.empty();
  readonly authenticator = createHtpasswdAuthenticator(() => this.users);

  constructor(
    readonly source: { readonly htpasswd: string } | { readonly entries: ValueSource },
    readonly log: (entry: ServerLogEntry) => void,
  ) {}

  async read(): Promise<{ text: string; label: string }> {
    if ('htpasswd' in this.source) {
      const file = this.source.htpasswd;
      const text = await withFileSystemErrors('read the users file (users.htpasswd)', file, () =>
        readFile(file, 'utf8'),
      );
      return { text, label: file };
    }
    // No users at all (the YAML file without `users.htpasswd`) is logged as no file.
    const label = this.source.entries === '' ? '' : 'users.entries';
    return { text: await readValue(this.source.entries, 'users (users.entries)'), label };
  }

  async load(): Promise<void> {
    const { text, label } = await this.read();
    this.users = text === '' ? UserStore.empty() : await UserStore.fromText(text, label);
    this.warnCosts(label);
  }

  warnCosts(label: string): void {
    const costs = this.users.costs();
    if (costs.size < 2) return;
    const lowest = [...costs.keys()][0];
    this.log({
      msg: 'bcrypt costs differ',
      level: 'warn',
      file: label,
      costs: Object.fromEntries(costs),
      hint: `answer times group users by cost, which tells an observer something; re-hash every entry at one cost (htpasswd -B -C ${lowest} or higher)`,
    });
  }

  async reload(): Promise<void> {
    let loaded: { text: string; label: string };
    try {
      loaded = await this.read();
    } catch (err) {
      // Nothing is known about the new entries (a file may be mid-rename): keep serving everyone.
      this.log({
        msg: 'reload failed',
        level: 'error',
        error: (err as Error).message,
        kept: this.users.size,
        dropped: 0,
      });
      return;
    }
    try {
      this.users =
        loaded.text === '' ? UserStore.empty() : await UserStore.fromText(loaded.text, loaded.label);
      this.log({ msg: 'users reloaded', users: this.users.size, file: loaded.label });
      this.warnCosts(loaded.label);
    } catch (err) {
      // The entries changed and are broken. Refusing everyone would turn a typo into an outage;
      // keeping everyone would keep a user the operator just removed — often removed because a
      // password leaked — or a changed password's old value working until someone notices.
      // So the users whose entry the new text holds unchanged stay; removed, changed and broken
      // entries are refused; and the error says how many of each, at error level.
      const kept = this.users.retainUnchanged(loaded.text);
      this.log({
        msg: 'reload failed',
        level: 'error',
        error: (err as Error).message,
        kept: kept.size,
        dropped: this.users.size - kept.size,
      });
      this.users = kept;
    }
  }
}

async function readAuthenticators(source: AuthenticatorsSource): Promise<readonly Authenticator[]> {
  const list = typeof source === 'function' ? await source() : source;
  if (!Array.isArray(list) || !list.every((a) => typeof a?.authenticate === 'function')) {
    throw new RegauthError(
      'ERR_INVALID_CONFIG',
      'authenticators: must be a list of Authenticators (objects with an authenticate method), or a function returning one',
    );
  }
  return [...list];
}

/**
 * Builds the `authn:` list: the sources in order, then `extra` (the programmatic
 * `authenticators`). Reads every htpasswd source now, so a broken file fails start-up.
 */
export async function createAuthnList(
  sources: readonly AuthnSource[],
  extra: AuthenticatorsSource | undefined,
  log: (entry: ServerLogEntry) => void,
): Promise<AuthnList> {
  const htpasswd: HtpasswdSource[] = [];
  const built: Authenticator[] = [];
  let added: readonly Authenticator[];
  try {
    for (const source of sources) {
      if ('create' in source) {
        built.push(await source.create(log));
      } else {
        const entry = new HtpasswdSource(source, log);
        await entry.load();
        htpasswd.push(entry);
        built.push(entry.authenticator);
      }
    }
    added = extra === undefined ? [] : await readAuthenticators(extra);
  } catch (err) {
    // A later entry failed: the clients the earlier ones opened (LDAP) would otherwise stay open,
    // once per failed start-up or config reload.
    for (const authenticator of built) await authenticator.close?.().catch(() => {});
    throw err;
  }
  let list: readonly Authenticator[] = [...built, ...added];

  return {
    current: () => list,
    async reload() {
      for (const entry of htpasswd) await entry.reload();
      if (typeof extra !== 'function') return;
      let fresh: readonly Authenticator[];
      try {
        fresh = await readAuthenticators(extra);
      } catch (err) {
        log({ msg: 'reload failed', level: 'error', error: (err as Error).message, kept: 0, dropped: 0 });
        return;
      }
      const old = added;
      added = fresh;
      list = [...built, ...added];
      for (const authenticator of old) {
        if (!fresh.includes(authenticator)) await authenticator.close?.().catch(() => {});
      }
    },
    async close() {
      for (const authenticator of list) await authenticator.close?.().catch(() => {});
    },
  };
}
