import { createHash, randomBytes } from 'node:crypto';
import { isIP, connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Client, ClientOptions, Entry } from 'ldapts';
import { RegauthError } from '../errors/regauth-error.js';
import type {
  AuthenticateOptions,
  Authentication,
  Authenticator,
  Identity,
  PasswordCheckRequest,
} from './authenticator.js';
import { importOptional } from './import-optional.js';
import { fillLdapFilter, firstRdnValue } from './ldap-escape.js';
import { type PemSource, readPem, readValue, type ValueSource } from './token-handler-config.js';

/** OpenLDAP's and most directories' user filter; AD uses `(sAMAccountName=${user})`. */
export const DEFAULT_LDAP_USER_FILTER = '(uid=${user})';
/**
 * Seconds for connecting and for each LDAP operation: a directory answers a bind or an indexed
 * search in milliseconds, and a login must fail with a clear error well before a client gives up.
 */
export const DEFAULT_LDAP_TIMEOUT_S = 10;
/**
 * Idle connections kept for user binds: as many as bcrypt checks run at once by default, so a
 * burst of logins reuses connections instead of paying TCP and TLS set-up each time.
 */
export const DEFAULT_LDAP_IDLE_CONNECTIONS = 4;

/** Where a label's values come from. */
export type LdapLabelSource =
  | {
      /** An attribute of the user's entry, such as `memberOf`. */
      readonly attribute: string;
      /** Values are DNs: keep only the first RDN's `cn` (`cn=dev,ou=groups,…` → `dev`). */
      readonly cnOnly?: boolean;
    }
  | {
      /**
       * A search as the service account, such as groups whose `member` is the user:
       * `filter` may use `${dn}` (the user's DN) and `${user}` (the login name), both RFC
       * 4515-escaped; `attribute` of each entry found is a value (`cn`).
       */
      readonly search: { readonly baseDn: string; readonly filter: string; readonly attribute: string };
    };

/** What the LDAP authenticator logs: never a password, only what an operator must fix. */
export type LdapLogEntry =
  | {
      readonly msg: 'ldap user filter matched several entries';
      readonly level: 'warn';
      readonly user: string;
      /** How many matched (3: at least 3). */
      readonly entries: number;
    }
  | {
      readonly msg: 'ldap entry has no name attribute';
      readonly level: 'warn';
      readonly dn: string;
      readonly attribute: string;
    };

/** An LDAP or Active Directory server that checks passwords and says which groups a user is in. */
export interface LdapAuthenticatorConfig {
  /** `ldap://host:port` or `ldaps://host:port`. */
  readonly url: string;
  /** Upgrade an `ldap://` connection with StartTLS (RFC 4511 §4.14) before any bind. */
  readonly startTls?: boolean;
  /** The CA that signed the server's certificate. Left out: Node's default CAs. */
  readonly ca?: PemSource;
  /**
   * Allow a plain-text `ldap://` connection without StartTLS to a host other than loopback, where
   * the service account's and users' passwords cross the network readable.
   */
  readonly insecure?: boolean;
  /** The service account that searches users. Left out: searches run anonymously. */
  readonly bindDn?: string;
  readonly bindPassword?: ValueSource;
  /** Where users are searched (subtree). */
  readonly baseDn: string;
  /** Left out: DEFAULT_LDAP_USER_FILTER. `${user}` is the login name, RFC 4515-escaped. */
  readonly userFilter?: string;
  /** The attribute of the user's entry that names the identity. Left out: the login name. */
  readonly nameAttribute?: string;
  /** Label name → where its values come from. */
  readonly labels?: Readonly<Record<string, LdapLabelSource>>;
  /** Seconds for connecting and for each operation. Left out: DEFAULT_LDAP_TIMEOUT_S. */
  readonly timeoutSeconds?: number;
  /** Left out: DEFAULT_LDAP_IDLE_CONNECTIONS. */
  readonly idleConnections?: number;
  /** Names this backend in messages, such as the config key path `authn[0].ldap`. */
  readonly source?: string;
  /** Receives what an operator must fix in the directory; `regauth serve` writes it to its log. */
  readonly log?: (entry: LdapLogEntry) => void;
}

/** The loopback host names and addresses a plain-text connection may go to without `insecure`. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (bare === 'localhost' || bare.endsWith('.localhost')) return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  return bare === '::1' || /^(?:0{0,4}:){1,7}:?0{0,3}1$/.test(bare);
}

/** Checks the URL and TLS choice; the message names `where` (a config key path). */
export function checkLdapTransport(
  config: Pick<LdapAuthenticatorConfig, 'url' | 'startTls' | 'insecure' | 'ca'>,
  where: string,
): URL {
  let url: URL;
  try {
    url = new URL(config.url);
  } catch {
    throw new RegauthError(
      'ERR_INVALID_CONFIG',
      `${where}.url: ${JSON.stringify(config.url)} is not a URL such as ldaps://ldap.example.org`,
    );
  }
  if (url.protocol !== 'ldap:' && url.protocol !== 'ldaps:') {
    throw new RegauthError('ERR_INVALID_CONFIG', `${where}.url: must start with ldap:// or ldaps://`);
  }
  if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.username !== '') {
    throw new RegauthError(
      'ERR_INVALID_CONFIG',
      `${where}.url: give only scheme, host and port (the base DN and filter have their own keys)`,
    );
  }
  if (url.protocol === 'ldaps:' && config.startTls) {
    throw new RegauthError(
      'ERR_INVALID_CONFIG',
      `${where}.start_tls: ldaps:// is TLS already; use ldap:// with start_tls, or ldaps:// without`,
    );
  }
  const tls = url.protocol === 'ldaps:' || config.startTls === true;
  if (!tls && config.ca !== undefined) {
    throw new RegauthError(
      'ERR_INVALID_CONFIG',
      `${where}.ca_file: only used with TLS; use ldaps:// or set start_tls: true`,
    );
  }
  if (!tls && !config.insecure && !isLoopbackHost(url.hostname)) {
    throw new RegauthError(
      'ERR_INVALID_CONFIG',
      `${where}.url: ${url.host} would get passwords in plain text: use ldaps:// or start_tls: true (or insecure: true if the network is trusted)`,
    );
  }
  return url;
}

/**
 * An Authenticator that checks passwords against an LDAP directory or Active Directory, as
 * docker_auth's LDAP backend (cesanta/docker_auth auth_server/authn/ldap_auth.go): bind as the
 * service account, search the user with the configured filter, bind as the entry found with the
 * password, and read the entry's groups into labels.
 *
 * The CA and bind password are read here, so a missing file fails start-up rather than the first
 * login. Connections are opened on first use and kept: one for searches, bound as the service
 * account, and up to `idleConnections` for user binds.
 */
export async function createLdapAuthenticator(config: LdapAuthenticatorConfig): Promise<Authenticator> {
  const where = config.source ?? 'ldap';
  const url = checkLdapTransport(config, where);
  const timeoutSeconds = config.timeoutSeconds ?? DEFAULT_LDAP_TIMEOUT_S;
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) {
    throw new RegauthError('ERR_INVALID_CONFIG', `${where}.timeout_seconds: must be above 0`);
  }
  if ((config.bindDn === undefined) !== (config.bindPassword === undefined)) {
    throw new RegauthError(
      'ERR_INVALID_CONFIG',
      `${where}: bind_dn and its password go together (give both, or neither for anonymous searches)`,
    );
  }
  const ca = config.ca === undefined ? undefined : await readPem(config.ca, `${where}.ca_file`);
  const bindPassword =
    config.bindPassword === undefined
      ? undefined
      : await readValue(config.bindPassword, `${where} bind password`);
  if (bindPassword === '') {
    // An empty password makes the bind unauthenticated (RFC 4513 §5.1.2): anonymous, not the account.
    throw new RegauthError('ERR_INVALID_CONFIG', `${where}: the bind password is empty`);
  }
  const ldapts = await importOptional('ldapts', 'the LDAP authenticator', () => import('ldapts'));
  const timeoutMs = Math.round(timeoutSeconds * 1000);
  const tlsOptions = { ...(ca === undefined ? {} : { ca }), servername: serverName(url.hostname) };
  const clientOptions: ClientOptions = {
    url: `${url.protocol}//${url.host}`,
    timeout: timeoutMs,
    connectTimeout: timeoutMs,
    ...(url.protocol === 'ldaps:' ? { tlsOptions } : {}),
  };
  const userFilter = config.userFilter ?? DEFAULT_LDAP_USER_FILTER;
  const loginAttribute = loginAttributeOf(userFilter);
  const labels = Object.entries(config.labels ?? {});
  const attributes = [
    ...new Set([
      ...(loginAttribute === undefined ? [] : [loginAttribute]),
      ...(config.nameAttribute ? [config.nameAttribute] : []),
      ...labels.flatMap(([, s]) => ('attribute' in s ? [s.attribute] : [])),
    ]),
  ];
  const idleLimit = config.idleConnections ?? DEFAULT_LDAP_IDLE_CONNECTIONS;
  const idle: Client[] = [];
  let service: Promise<Client> | undefined;
  let closed = false;

  const describe = (err: unknown): string => {
    const message = err instanceof Error ? err.message : String(err);
    // The password is never in ldapts' messages, but a server's diagnostic could echo anything.
    return bindPassword === undefined ? message : message.split(bindPassword).join('[redacted]');
  };
  const unreachable = (err: unknown, doing: string): RegauthError =>
    err instanceof RegauthError
      ? err
      : new RegauthError(
          'ERR_NETWORK',
          `${where}: LDAP server ${url.host} failed while ${doing}: ${describe(err)}${
            err instanceof ldapts.ResultCodeError ? '' : `; check that it runs and that ${where}.url is right`
          }`,
        );

  const open = async (): Promise<Client> => {
    // ldapts reconnects a dropped client on its next operation, without StartTLS and without the
    // bind: a password would then cross in plain text, or a search run anonymously and find
    // nobody. Each client gets one connection (and one TLS layer); a dropped one is replaced here.
    // ldapts also misses the close of a connection upgraded by StartTLS (it listens on the TLS
    // layer only): the socket's own close marks the client dead.
    const state = { closed: false };
    const watch = <S extends NodeJS.EventEmitter>(socket: S): S => {
      socket.once('close', () => {
        state.closed = true;
      });
      return socket;
    };
    const client = new ldapts.Client({
      ...clientOptions,
      createConnection: once(((...args: Parameters<typeof netConnect>) =>
        watch(netConnect(...args))) as typeof netConnect),
      createSecureConnection: once(((...args: Parameters<typeof tlsConnect>) =>
        watch(tlsConnect(...args))) as typeof tlsConnect),
    });
    states.set(client, state);
    try {
      // A copy: ldapts writes the socket into the options it is given.
      if (config.startTls) await withTimeout(client.startTLS({ ...tlsOptions }), timeoutMs, 'StartTLS');
      return client;
    } catch (err) {
      await discard(client);
      throw err;
    }
  };

  const states = new WeakMap<Client, { closed: boolean }>();
  /** Connected and not closed under ldapts' feet. */
  const alive = (client: Client): boolean => client.isConnected && states.get(client)?.closed !== true;
  let serviceReady: Client | undefined;

  const serviceClient = (): Promise<Client> => {
    if (serviceReady !== undefined && !alive(serviceReady)) {
      void discard(serviceReady);
      serviceReady = undefined;
      service = undefined;
    }
    service ??= (async () => {
      const client = await open();
      if (config.bindDn !== undefined && bindPassword !== undefined) {
        try {
          await client.bind(config.bindDn, bindPassword);
        } catch (err) {
          await discard(client);
          if (err instanceof ldapts.InvalidCredentialsError) {
            throw new RegauthError(
              'ERR_INVALID_CONFIG',
              `${where}: the LDAP server refused the service account ${config.bindDn} (invalid credentials): check bind_dn and the bind password`,
            );
          }
          throw err;
        }
      }
      serviceReady = client;
      return client;
    })();
    const pending = service;
    pending.catch(() => {
      if (service === pending) service = undefined;
    });
    return pending;
  };

  /** Runs `op` on the service connection; a broken connection is replaced once. */
  const asService = async <T>(op: (client: Client) => Promise<T>, doing: string): Promise<T> => {
    for (let attempt = 0; ; attempt++) {
      let client: Client | undefined;
      try {
        client = await serviceClient();
        return await op(client);
      } catch (err) {
        if (err instanceof ldapts.ResultCodeError || err instanceof RegauthError) {
          throw unreachable(err, doing);
        }
        // A dropped or timed-out connection: start afresh, once (the server may have closed an
        // idle connection, which is routine).
        const broken = service;
        service = undefined;
        serviceReady = undefined;
        if (broken) void broken.then(discard, () => {});
        if (attempt >= 1 || client === undefined) throw unreachable(err, doing);
      }
    }
  };

  const userBind = async (dn: string, password: string): Promise<boolean> => {
    for (let attempt = 0; ; attempt++) {
      let client = idle.pop();
      const reused = client !== undefined;
      if (client !== undefined && !alive(client)) {
        void discard(client);
        client = undefined;
      }
      try {
        client ??= await open();
      } catch (err) {
        throw unreachable(err, 'connecting');
      }
      try {
        await client.bind(dn, password);
      } catch (err) {
        if (err instanceof ldapts.InvalidCredentialsError) {
          release(client);
          return false;
        }
        void discard(client);
        // An idle connection the server closed meanwhile fails on first use: once more on a new one.
        if (reused && attempt === 0 && !(err instanceof ldapts.ResultCodeError)) continue;
        throw unreachable(err, 'checking a password');
      }
      release(client);
      return true;
    }
  };

  const release = (client: Client): void => {
    if (!closed && idle.length < idleLimit && alive(client)) idle.push(client);
    else void discard(client);
  };

  const labelsOf = async (entry: Entry, user: string): Promise<Record<string, string[]>> => {
    const result: Record<string, string[]> = {};
    for (const [label, source] of labels) {
      let values: string[];
      if ('attribute' in source) {
        values = attributeValues(entry, source.attribute);
        if (source.cnOnly) values = values.flatMap((dn) => firstRdnValue(dn, 'cn') ?? []);
      } else {
        const { baseDn, filter, attribute } = source.search;
        const found = await asService(
          (client) =>
            client.search(baseDn, {
              scope: 'sub',
              filter: fillLdapFilter(filter, { dn: entry.dn, user }),
              attributes: [attribute],
            }),
          'searching the groups of a user',
        );
        values = found.searchEntries.flatMap((e) => attributeValues(e, attribute));
      }
      result[label] = [...new Set(values)].sort();
    }
    return result;
  };

  /** An entry that is never there: binds to it cost a user bind and always fail. */
  const absentDn = `cn=regauth-absent-${randomBytes(8).toString('hex')},${config.baseDn}`;

  /** The one entry `filter` finds; undefined for none, 'several' (logged) for an ambiguous filter. */
  const searchUser = async (filter: string, user: string): Promise<Entry | undefined | 'several'> => {
    const found = await asService(async (client) => {
      try {
        const result = await client.search(config.baseDn, {
          scope: 'sub',
          filter,
          attributes: attributes.length === 0 ? ['1.1'] : attributes,
          // Two are enough to know the filter is ambiguous.
          sizeLimit: 2,
        });
        return result.searchEntries;
      } catch (err) {
        // The size limit hit means more than two entries matched: ambiguous all the same.
        if (err instanceof ldapts.SizeLimitExceededError) return 'several' as const;
        throw err;
      }
    }, 'searching the user');
    if (found !== 'several' && found.length === 0) return undefined;
    if (found === 'several' || found.length > 1) {
      config.log?.({
        msg: 'ldap user filter matched several entries',
        level: 'warn',
        user,
        // More than the size limit of 2 when the server stopped counting.
        entries: found === 'several' ? 3 : found.length,
      });
      return 'several';
    }
    return found[0] as Entry;
  };

  return {
    kind: 'ldap',
    id: `ldap:${createHash('sha256')
      .update(JSON.stringify([clientOptions.url, config.baseDn, userFilter, config.nameAttribute ?? null]))
      .digest('hex')
      .slice(0, 16)}`,
    async authenticate(
      { user, password }: PasswordCheckRequest,
      options?: AuthenticateOptions,
    ): Promise<Authentication> {
      if (closed) throw new RegauthError('ERR_ABORTED', `${where}: the LDAP authenticator was closed`);
      if (user === '') return { outcome: 'unknown' };
      /**
       * A name this directory does not hold is answered after a search and a user bind, as a
       * wrong password is: without the bind it would come one round trip sooner and tell who
       * exists. The bind names an entry that is not there, so it fails (RFC 4513 §6.3.1: a
       * server answers invalidCredentials, whether the DN or the password is wrong). Not the
       * last backend: the next one decides, and spends its own time.
       */
      const absent = async (outcome: 'unknown' | 'refused'): Promise<Authentication> => {
        if (options?.last !== false && password !== '') await userBind(absentDn, password);
        return { outcome };
      };
      const entry = await searchUser(fillLdapFilter(userFilter, { user }), user);
      if (entry === undefined) return absent('unknown');
      if (entry === 'several') return absent('refused');
      // Directory matching ignores case and surrounding spaces (uid is caseIgnoreMatch, RFC 4519):
      // `ALICE` and ` alice` find alice. Only the exact spelling logs in, so an ACL rule or a
      // lock-out for `alice` cannot be stepped around by writing the name another way.
      if (loginAttribute !== undefined && !attributeValues(entry, loginAttribute).includes(user)) {
        return absent('unknown');
      }
      // An empty password would be an unauthenticated bind, which many servers accept as
      // anonymous (RFC 4513 §5.1.2, §6.3.1): never send it.
      if (password === '') return { outcome: 'refused' };
      if (!(await userBind(entry.dn, password))) return { outcome: 'refused' };
      let name = user;
      if (config.nameAttribute !== undefined) {
        const value = attributeValues(entry, config.nameAttribute)[0];
        if (value === undefined || value === '') {
          config.log?.({
            msg: 'ldap entry has no name attribute',
            level: 'warn',
            dn: entry.dn,
            attribute: config.nameAttribute,
          });
          return { outcome: 'refused' };
        }
        name = value;
      }
      return { outcome: 'accepted', identity: { name, labels: await labelsOf(entry, user) } };
    },
    /**
     * The account as the directory holds it now, for a refresh token: searched as the service
     * account (no user bind: there is no password), by the name it logged in under (`name_attribute`
     * when set, else the filter's attribute), groups read again. Gone, ambiguous, or spelled
     * otherwise: undefined. A server that fails throws, as for a login.
     */
    async lookup(name: string): Promise<Identity | undefined> {
      if (closed) throw new RegauthError('ERR_ABORTED', `${where}: the LDAP authenticator was closed`);
      if (name === '') return undefined;
      const attribute = config.nameAttribute ?? loginAttribute;
      const filter =
        config.nameAttribute === undefined
          ? fillLdapFilter(userFilter, { user: name })
          : fillLdapFilter(`(${config.nameAttribute}=\${user})`, { user: name });
      const entry = await searchUser(filter, name);
      if (entry === undefined || entry === 'several') return undefined;
      // The same exact-spelling rule as a login: `ALICE` is not alice's refresh token.
      if (attribute !== undefined) {
        const values = attributeValues(entry, attribute);
        if (!(config.nameAttribute === undefined ? values.includes(name) : values[0] === name))
          return undefined;
      }
      const user =
        config.nameAttribute === undefined || loginAttribute === undefined
          ? name
          : (attributeValues(entry, loginAttribute)[0] ?? name);
      return { name, labels: await labelsOf(entry, user) };
    },
    async close(): Promise<void> {
      closed = true;
      const pending = service;
      service = undefined;
      serviceReady = undefined;
      const clients = idle.splice(0);
      if (pending) clients.push(await pending.catch(() => undefined as unknown as Client));
      await Promise.all(clients.filter(Boolean).map(discard));
    },
  };
}

/**
 * The attribute the user filter compares with the login name (`uid` in `(uid=${user})`,
 * `sAMAccountName` in `(&(objectClass=user)(sAMAccountName=${user}))`), whose value must then be
 * the name exactly; undefined when the filter uses the name some other way.
 */
export function loginAttributeOf(filter: string): string | undefined {
  return /\(([A-Za-z][A-Za-z0-9-]*)=\$\{user\}\)/.exec(filter)?.[1];
}

/** TLS server names must be host names; an IP address is checked against the certificate's IP SANs. */
function serverName(host: string): string | undefined {
  const bare = host.replace(/^\[|\]$/g, '');
  return isIP(bare) === 0 ? bare : undefined;
}

function attributeValues(entry: Entry, attribute: string): string[] {
  const key = Object.keys(entry).find((k) => k.toLowerCase() === attribute.toLowerCase());
  const value = key === undefined ? undefined : entry[key];
  if (value === undefined) return [];
  const list = Array.isArray(value) ? value : [value];
  return list.map((v) => (Buffer.isBuffer(v) ? v.toString('utf8') : String(v)));
}

async function discard(client: Client): Promise<void> {
  // unbind closes the socket; on a broken connection it may fail, which changes nothing. Callers
  // do not wait for a dead one: ldapts may wait for its operation timeout to give up on it.
  await client.unbind().catch(() => {});
}

/** `connect` for one use; later calls fail, so a dropped connection is never silently remade. */
function once<F extends (...args: never[]) => unknown>(connect: F): F {
  let used = false;
  return ((...args: Parameters<F>) => {
    if (used) throw new Error('the connection was closed');
    used = true;
    return connect(...args);
  }) as F;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
