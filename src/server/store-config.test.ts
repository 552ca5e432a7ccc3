import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RegauthError } from '../errors/regauth-error.js';
import { parseServerConfig } from './server-config.js';
import {
  checkStoreConfig,
  DEFAULT_STORE_PREFIX,
  DEFAULT_STORE_TIMEOUT_S,
  redactStoreUrl,
} from './store-config.js';
import { checkHandlerConfig } from './token-handler-config.js';

const FILE = '/etc/regauth/serve.yml';
const SECRET = 's3cr3t-pa55';

function withStore(store: unknown): Record<string, unknown> {
  return {
    token: { issuer: 'regauth', service: 'registry', key: 'key.pem', certificate: 'cert.pem' },
    acl: [],
    store,
  };
}

function storeError(store: unknown): string {
  try {
    parseServerConfig(withStore(store), FILE);
  } catch (err) {
    expect(err).toBeInstanceOf(RegauthError);
    expect((err as RegauthError).code).toBe('ERR_INVALID_CONFIG');
    return (err as RegauthError).message;
  }
  throw new Error('expected ERR_INVALID_CONFIG, but the store was accepted');
}

describe('store config', () => {
  it('is memory when left out or named so', () => {
    expect(parseServerConfig(withStore(undefined), FILE).store).toBeUndefined();
    expect(parseServerConfig(withStore('memory'), FILE).store).toBeUndefined();
  });

  it('reads secret_file, resolved against the config folder, each time it is asked', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'regauth-store-'));
    try {
      await writeFile(join(dir, 'counter-secret'), `${'b'.repeat(40)}\n`);
      const store = parseServerConfig(
        withStore({ url: 'redis://127.0.0.1:6379/0', secret_file: 'counter-secret' }),
        join(dir, 'serve.yml'),
      ).store;
      const read = store?.secret as () => Promise<string>;
      expect(await read()).toBe('b'.repeat(40));
      await writeFile(join(dir, 'counter-secret'), 'c'.repeat(40));
      expect(await read()).toBe('c'.repeat(40));
      await writeFile(join(dir, 'counter-secret'), '');
      await expect(read()).rejects.toThrow(/store\.secret_file: .*counter-secret is empty/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a secret that is neither a string nor a function', () => {
    const fail = (path: string, why: string): never => {
      throw new Error(`${path}: ${why}`);
    };
    expect(() => checkStoreConfig({ url: 'redis://127.0.0.1', secret: 42 }, 'store', fail)).toThrow(
      /store\.secret: must be a string or a function/,
    );
  });

  it('takes a bare URL as the shorthand of { url }, with defaults', () => {
    expect(parseServerConfig(withStore('redis://127.0.0.1:6379/0'), FILE).store).toStrictEqual({
      url: 'redis://127.0.0.1:6379/0',
      prefix: DEFAULT_STORE_PREFIX,
      timeout: DEFAULT_STORE_TIMEOUT_S,
    });
  });

  it('reads every key, resolving files against the config folder, and the password file at start', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'regauth-store-'));
    try {
      await writeFile(join(dir, 'redis-password'), `${SECRET}\n`);
      const store = parseServerConfig(
        withStore({
          url: 'rediss://redis.internal:6380/2',
          prefix: 'reg-a:',
          timeout: 0.1,
          ca_file: 'ca.pem',
          password_file: 'redis-password',
        }),
        join(dir, 'serve.yml'),
      ).store;
      expect(store).toMatchObject({
        url: 'rediss://redis.internal:6380/2',
        prefix: 'reg-a:',
        timeout: 0.1,
        ca: { file: join(dir, 'ca.pem') },
      });
      expect(typeof store?.password).toBe('function');
      const readPassword = store?.password as () => Promise<string>;
      expect(await readPassword()).toBe(SECRET);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('names the key path of every mistake and never shows a password', () => {
    expect(storeError('memcached://127.0.0.1')).toMatch(/store: .*only redis:\/\/ and rediss:\/\//);
    expect(storeError({ url: 'http://h' })).toContain('store.url:');
    expect(storeError({ url: 'redis://h', timeout: 0 })).toContain('store.timeout:');
    expect(storeError({ url: 'redis://h', timeout: '1s' })).toContain('store.timeout:');
    expect(storeError({ url: 'redis://h', prefix: 'a b' })).toContain('store.prefix:');
    expect(storeError({ url: 'redis://h', ca_file: 'ca.pem' })).toContain('store.ca_file:');
    expect(storeError({ url: 'redis://h', colour: 'red' })).toContain('store.colour: unknown key');
    expect(storeError({ prefix: 'x:' })).toContain('store.url:');
    expect(storeError(['redis://h'])).toContain('store:');
    for (const url of [
      `redis://:${SECRET}@127.0.0.1:6379/99x`,
      `ftp://user:${SECRET}@127.0.0.1/`,
      `redis://:${SECRET}@127.0.0.1/0?tls=1`,
      `${SECRET} redis://`,
    ]) {
      const message = storeError(url);
      expect(message).toContain('store');
      expect(message).not.toContain(SECRET);
    }
  });

  it('redacts user and password from URLs', () => {
    expect(redactStoreUrl(`redis://user:${SECRET}@10.0.0.5:6379/1`)).toBe('redis://10.0.0.5:6379/1');
    expect(redactStoreUrl(SECRET)).toBe('(not a URL)');
  });

  it('checks the programmatic option alike', () => {
    const base = { token: { issuer: 'i', service: 's', key: { pem: 'k' }, certificate: { pem: 'c' } } };
    expect(checkHandlerConfig({ ...base, store: 'memory' }).store).toBeUndefined();
    expect(
      checkHandlerConfig({ ...base, store: { url: 'redis://127.0.0.1', timeout: 1 } }).store,
    ).toMatchObject({
      url: 'redis://127.0.0.1',
      timeout: 1,
    });
    expect(() => checkHandlerConfig({ ...base, store: { url: 'redis://h', timeout: 60 } })).toThrow(
      /token handler config: store\.timeout:/,
    );
  });
});
