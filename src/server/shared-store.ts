import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { withFileSystemErrors } from '../errors/file-system-error.js';
import { importOptional } from './import-optional.js';
import type { ServerLogEntry } from './server-log-entry.js';
import { type CheckedStoreConfig, redactStoreUrl } from './store-config.js';

/**
 * After Redis failed or timed out, requests skip it for this long and use the replica's own
 * counters; then one request tries again. Short, so a restarted Redis is back in use within a
 * second; long enough that a dead one costs a flood of requests nothing but this check.
 */
export const STORE_RETRY_MS = 1_000;
/** While Redis stays unreachable, at most one log line per this interval (with a count of errors). */
export const STORE_LOG_INTERVAL_MS = 30_000;
/** How often the client tries to reconnect to a Redis that went away. */
export const STORE_RECONNECT_MS = 500;
/** How long start-up waits for the first connection before it goes on degraded. */
const STORE_CONNECT_WAIT_MS = 2_000;

/** `up`: Redis answers; `unreachable`: requests go on with this replica's own counters. */
export type StoreHealth = 'up' | 'unreachable';
/** How one command against the store ended, for the metrics. */
export type StoreResult = 'ok' | 'error' | 'timeout';

/** A Lua script run with EVALSHA (loaded again by the client when Redis answers NOSCRIPT). */
export interface StoreScript {
  /** A name unique among scripts, such as `loginWaits`. */
  readonly name: string;
  readonly keys: number;
  readonly lua: string;
}

/** What a command sees of the Redis connection: one call is one round trip. */
export interface StoreClient {
  /** Runs a Lua script with its keys (under the store's prefix) and arguments. */
  script(script: StoreScript, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown>;
  /** Any other Redis command, such as `call('GET', key)`. */
  call(command: string, ...args: (string | number)[]): Promise<unknown>;
}

/** What the store reports about itself (createTokenMetrics implements it). */
export interface StoreObserver {
  /**
   * One command: its operation (`login_waits`, …), how it ended and how long it took; or, without
   * `seconds`, a connection that failed or was lost (operation `connection`).
   */
  observeStore(operation: string, result: StoreResult, seconds?: number): void;
  /** The store became reachable (true) or unreachable (false). */
  setStoreUp(up: boolean): void;
}

/**
 * The connection a token server's replicas share, one per server, with its health. Features
 * (login counters, revocations) build their keys under `prefix` and run their commands through
 * `run`, which never throws and never waits longer than the timeout: on any failure the caller
 * goes on with what it keeps in memory.
 */
export interface SharedStore {
  /** The URL without user or password, for messages. */
  readonly description: string;
  /** Prefix of every key. */
  readonly prefix: string;
  /** Runs `command` (meant to be one round trip); undefined when Redis is skipped, failed or was too slow. */
  run<T>(operation: string, command: (client: StoreClient) => Promise<T>): Promise<T | undefined>;
  /** Whether Redis answered the last command (or the connection is up again). */
  health(): StoreHealth;
  /**
   * Listens on a pub/sub channel over a second connection (a subscribing one can send nothing
   * else). `onReady` is called each time the subscription is (re)established, so the caller can
   * read again what it may have missed while it was not. Never throws; returns what ends it.
   */
  subscribe(channel: string, onMessage: (message: string) => void, onReady: () => void): () => void;
  /** Closes the connection; `run` then skips Redis. */
  close(): Promise<void>;
}

/** The part of ioredis the store uses. */
interface RedisConnection {
  status: string;
  connect(): Promise<void>;
  quit(): Promise<unknown>;
  disconnect(): void;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  defineCommand(name: string, definition: { numberOfKeys: number; lua: string }): void;
  call(command: string, ...args: (string | number)[]): Promise<unknown>;
  duplicate(options: Record<string, unknown>): RedisConnection;
  subscribe(channel: string): Promise<unknown>;
}

/**
 * The store's password and CA, read now (a password function is called). A config reload runs
 * it too, so a file a restart could not read fails the reload instead of the next start.
 */
export async function readStoreSecrets(
  config: CheckedStoreConfig,
): Promise<{ readonly password: string | undefined; readonly ca: string | undefined }> {
  const password = typeof config.password === 'function' ? await config.password() : config.password;
  const ca =
    config.ca === undefined
      ? undefined
      : 'pem' in config.ca
        ? config.ca.pem
        : await withFileSystemErrors('read the Redis CA (store.ca_file)', config.ca.file, () =>
            readFile((config.ca as { file: string }).file, 'utf8'),
          );
  return { password, ca };
}

/**
 * Connects to Redis with ioredis (an optional peer dependency, loaded here): no offline queue
 * and no retries per request, so a command against a Redis that is down fails at once instead
 * of waiting; the connection itself is retried every STORE_RECONNECT_MS in the background.
 * Start-up does not fail when Redis is down: the server starts degraded and says so.
 */
export async function createRedisStore(
  config: CheckedStoreConfig,
  options: {
    readonly log?: (entry: ServerLogEntry) => void;
    readonly observer?: StoreObserver;
    readonly now?: () => number;
  } = {},
): Promise<SharedStore> {
  const log = options.log ?? (() => {});
  const observer = options.observer;
  const now = options.now ?? Date.now;
  const description = redactStoreUrl(config.url);
  const timeoutMs = Math.max(1, Math.round(config.timeout * 1000));
  const { password, ca } = await readStoreSecrets(config);
  const secrets = [password, new URL(config.url).password].filter((s): s is string => !!s);
  const redact = (text: string): string =>
    secrets.reduce((out, secret) => out.split(secret).join('***'), text.split(config.url).join(description));

  const { Redis } = await importOptional(
    'ioredis',
    'a Redis store (store: redis://…)',
    () => import('ioredis'),
  );
  const parsed = new URL(config.url);
  const client = new Redis(config.url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: timeoutMs,
    connectTimeout: Math.max(timeoutMs, STORE_CONNECT_WAIT_MS),
    retryStrategy: () => STORE_RECONNECT_MS,
    ...(password === undefined ? {} : { password }),
    // SNI carries host names only (RFC 6066 §3); the certificate is checked against an IP all the same.
    ...(parsed.protocol === 'rediss:'
      ? {
          tls: {
            ...(isIP(parsed.hostname) === 0 ? { servername: parsed.hostname } : {}),
            ...(ca === undefined ? {} : { ca }),
          },
        }
      : {}),
  }) as unknown as RedisConnection;

  let health: StoreHealth = 'up';
  let skipUntil = 0;
  let probing = false;
  let errorsSinceLog = 0;
  let lastLog = 0;
  let lastError = '';
  let closed = false;
  observer?.setStoreUp(true);

  const down = (error: string): void => {
    if (closed) return;
    errorsSinceLog++;
    lastError = redact(error);
    skipUntil = now() + STORE_RETRY_MS;
    const t = now();
    if (health === 'up' || t - lastLog >= STORE_LOG_INTERVAL_MS) {
      log({
        msg: 'store unreachable',
        level: 'warn',
        store: description,
        error: lastError,
        errors: errorsSinceLog,
        hint: 'logins go on with this replica’s own failure counters until Redis answers again',
      });
      lastLog = t;
      errorsSinceLog = 0;
    }
    if (health === 'up') observer?.setStoreUp(false);
    health = 'unreachable';
  };
  const up = (): void => {
    if (health === 'up' || closed) return;
    health = 'up';
    skipUntil = 0;
    observer?.setStoreUp(true);
    log({ msg: 'store reachable again', store: description });
    lastLog = 0;
    errorsSinceLog = 0;
  };
  // ioredis reports a lost connection as events: without a listener it would print them itself.
  client.on('error', (err) => {
    if (!closed) observer?.observeStore('connection', 'error');
    down((err as Error)?.message ?? String(err));
  });
  client.on('close', () => {
    if (health !== 'up' || closed) return;
    observer?.observeStore('connection', 'error');
    down('connection closed');
  });
  client.on('ready', up);

  const subscribers = new Set<() => void>();
  const defined = new Set<string>();
  const storeClient: StoreClient = {
    script: (script, keys, args) => {
      if (!defined.has(script.name)) {
        client.defineCommand(script.name, { numberOfKeys: script.keys, lua: script.lua });
        defined.add(script.name);
      }
      const run = (client as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[
        script.name
      ];
      return (run as (...a: (string | number)[]) => Promise<unknown>).call(client, ...keys, ...args);
    },
    call: (command, ...args) => client.call(command, ...args),
  };

  await Promise.race([
    client.connect().catch(() => {}),
    new Promise<void>((resolve) => setTimeout(resolve, STORE_CONNECT_WAIT_MS).unref()),
  ]);
  if (client.status !== 'ready') down(lastError || `no connection within ${STORE_CONNECT_WAIT_MS} ms`);

  return {
    description,
    prefix: config.prefix,
    health: () => health,
    async run(operation, command) {
      if (closed) return undefined;
      if (health === 'unreachable') {
        // One request at a time tries again once the pause is over; the rest skip Redis.
        if (now() < skipUntil || probing) return undefined;
        probing = true;
      }
      const start = performance.now();
      let timer: NodeJS.Timeout | undefined;
      try {
        const result = await Promise.race([
          command(storeClient),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new StoreTimeout(timeoutMs)), timeoutMs);
          }),
        ]);
        observer?.observeStore(operation, 'ok', (performance.now() - start) / 1000);
        up();
        return result;
      } catch (err) {
        const timedOut = err instanceof StoreTimeout || /timed? ?out/i.test((err as Error)?.message ?? '');
        observer?.observeStore(operation, timedOut ? 'timeout' : 'error', (performance.now() - start) / 1000);
        down((err as Error)?.message ?? String(err));
        return undefined;
      } finally {
        clearTimeout(timer);
        probing = false;
      }
    },
    subscribe(channel, onMessage, onReady) {
      // Same address, password and TLS; its failures show on the main connection already.
      const subscriber = client.duplicate({ lazyConnect: true, autoResubscribe: false });
      let ended = false;
      subscriber.on('error', () => {});
      subscriber.on('message', (...args) => {
        if (!ended && args[0] === channel && typeof args[1] === 'string') onMessage(args[1]);
      });
      subscriber.on('ready', () => {
        subscriber.subscribe(channel).then(
          () => {
            if (!ended) onReady();
          },
          () => {},
        );
      });
      subscriber.connect().catch(() => {});
      const end = () => {
        if (ended) return;
        ended = true;
        subscriber.disconnect();
      };
      subscribers.add(end);
      return end;
    },
    async close() {
      if (closed) return;
      for (const end of subscribers) end();
      closed = true;
      await Promise.race([
        client.quit().catch(() => {}),
        new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref()),
      ]);
      client.disconnect();
    },
  };
}

class StoreTimeout extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
  }
}
