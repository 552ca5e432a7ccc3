import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isRegauthError } from '../errors/regauth-error.js';
import { type RedisCallClient, type RedisSendCommandClient, RedisTokenStore } from './redis-token-store.js';

const TOKEN = 'eyJhbGciOiJFUzI1NiJ9.secret-token-value.sig';
const NOW = 1_800_000_000_000;

/** GET and SET (NX, PX) over a Map, recording every command: enough for the value handling. */
function mapClient() {
  const data = new Map<string, string>();
  const sent: string[][] = [];
  const client: RedisCallClient = {
    call: async (command, ...args) => {
      sent.push([command, ...args]);
      const [key = '', value = ''] = args;
      if (command === 'GET') return data.get(key) ?? null;
      if (command === 'SET') {
        if (args.includes('NX') && data.has(key)) return null;
        data.set(key, value);
        return 'OK';
      }
      throw new Error(`unexpected ${command}`);
    },
  };
  return { client, data, sent };
}

describe('RedisTokenStore', () => {
  it('saves a token with PX until its expiry, and reads it back', async () => {
    const { client, sent } = mapClient();
    const store = new RedisTokenStore({ client, now: () => NOW, prefix: 'ci:' });
    await store.saveToken('k', 'localhost:5000', { token: TOKEN, expiresAt: NOW + 90_000 });
    expect(sent[0]?.[0]).toBe('SET');
    expect(sent[0]?.[1]).toMatch(/^ci:token:[\w-]{43}$/);
    expect(sent[0]?.slice(3)).toEqual(['PX', '90000']);
    expect(await store.loadToken('k')).toEqual({ token: TOKEN, expiresAt: NOW + 90_000 });
    expect(await store.loadToken('other')).toBeUndefined();
  });

  it('does not save a token that has already expired', async () => {
    const { client, sent } = mapClient();
    const store = new RedisTokenStore({ client, now: () => NOW });
    await store.saveToken('k', 'r', { token: TOKEN, expiresAt: NOW });
    expect(sent).toEqual([]);
  });

  it('takes a damaged or foreign value for a miss', async () => {
    const { client, data } = mapClient();
    const store = new RedisTokenStore({ client, now: () => NOW });
    await store.saveToken('k', 'r', { token: TOKEN, expiresAt: NOW + 90_000 });
    const key = [...data.keys()][0] as string;
    for (const junk of [
      'not json',
      'null',
      '[]',
      '{"v":2,"token":"t","expiresAt":1e20}',
      '{"v":1,"token":5,"expiresAt":1e20}',
      '{"v":1,"token":"t","expiresAt":"soon"}',
      `{"v":1,"token":"t","expiresAt":${NOW - 1}}`,
      `{"v":1,"token":"${'x'.repeat(300_000)}","expiresAt":1e20}`,
    ]) {
      data.set(key, junk);
      expect(await store.loadToken('k')).toBeUndefined();
    }
  });

  it('seals values with encryptionKey: no token in Redis, and another key or a plain value is a miss', async () => {
    const { client, data } = mapClient();
    const encryptionKey = randomBytes(32);
    const store = new RedisTokenStore({ client, now: () => NOW, encryptionKey });
    await store.saveToken('k', 'registry.example', { token: TOKEN, expiresAt: NOW + 90_000 });
    await store.saveChallenge('https://registry.example', {
      scheme: 'bearer',
      params: { realm: 'https://auth.example/token' },
    });
    const raw = [...data.values()].join('\n');
    expect(raw).not.toContain('secret-token-value');
    expect(raw).not.toContain('auth.example');
    expect(await store.loadToken('k')).toEqual({ token: TOKEN, expiresAt: NOW + 90_000 });
    expect((await store.loadChallenge('https://registry.example'))?.params.realm).toBe(
      'https://auth.example/token',
    );

    const stranger = new RedisTokenStore({ client, now: () => NOW, encryptionKey: randomBytes(32) });
    expect(await stranger.loadToken('k')).toBeUndefined();
    const plain = new RedisTokenStore({ client, now: () => NOW });
    expect(await plain.loadToken('k')).toBeUndefined();

    // A value moved to another key (another registry's challenge) does not open there.
    const [tokenKey, challengeKey] = [...data.keys()] as [string, string];
    data.set(tokenKey, data.get(challengeKey) as string);
    expect(await store.loadToken('k')).toBeUndefined();

    // A plain challenge planted by someone who can write the Redis is not used.
    await plain.saveChallenge('https://registry.example', {
      scheme: 'bearer',
      params: { realm: 'https://evil.example/token' },
    });
    expect(await store.loadChallenge('https://registry.example')).toBeUndefined();
  });

  it('gives up on a command after timeoutMs, naming the command', async () => {
    const client: RedisCallClient = { call: () => new Promise(() => {}) };
    const store = new RedisTokenStore({ client, timeoutMs: 50 });
    const err = await store.loadToken('k').catch((e: unknown) => e);
    expect(isRegauthError(err) && err.code).toBe('ERR_NETWORK');
    expect((err as Error).message).toMatch(/did not answer GET within 50 ms/);
  });

  it('never repeats a value it sent in the error it reports', async () => {
    const client: RedisCallClient = {
      call: async (command, ...args) => {
        const error = new Error(`Connection is closed. ${command} ${args.join(' ')}`);
        Object.assign(error, { command: { name: command, args } });
        throw error;
      },
    };
    const store = new RedisTokenStore({ client });
    const err = await store
      .saveToken('k', 'r', { token: TOKEN, expiresAt: Date.now() + 60_000 })
      .catch((e: unknown) => e);
    expect(isRegauthError(err) && err.code).toBe('ERR_NETWORK');
    expect((err as Error).message).toMatch(/^Redis SET failed: Connection is closed\./);
    expect(JSON.stringify(err)).not.toContain('secret-token-value');
    expect((err as Error).message).not.toContain('secret-token-value');
    expect((err as Error).cause).toBeUndefined();
  });

  it('sends raw commands through node-redis sendCommand', async () => {
    const sent: string[][] = [];
    const values = new Map<string, string>();
    const client: RedisSendCommandClient = {
      sendCommand: async (args) => {
        sent.push(args);
        if (args[0] === 'SET') values.set(args[1] as string, args[2] as string);
        return args[0] === 'GET' ? (values.get(args[1] as string) ?? null) : 'OK';
      },
    };
    const store = new RedisTokenStore({ client, now: () => NOW });
    await store.saveToken('k', 'r', { token: TOKEN, expiresAt: NOW + 5_000 });
    expect(sent[0]?.slice(3)).toEqual(['PX', '5000']);
    expect((await store.loadToken('k'))?.token).toBe(TOKEN);
  });

  it('keeps the first salt written, and refuses a salt key holding something else', async () => {
    const { client, data } = mapClient();
    const a = await new RedisTokenStore({ client }).keySalt();
    const b = await new RedisTokenStore({ client }).keySalt();
    expect(a).toHaveLength(16);
    expect(Buffer.from(b).equals(Buffer.from(a))).toBe(true);
    data.set('regauth:salt', 'short');
    const err = await new RedisTokenStore({ client }).keySalt().catch((e: unknown) => e);
    expect(isRegauthError(err) && err.code).toBe('ERR_INVALID_CONFIG');
    expect((err as Error).message).toContain('regauth:salt');
  });

  it('refuses options it cannot work with', () => {
    const bad = (options: unknown) => () => new RedisTokenStore(options as never);
    expect(bad({ client: {} })).toThrow(/needs a Redis client/);
    expect(bad({ client: mapClient().client, timeoutMs: 0 })).toThrow(/timeoutMs/);
    expect(bad({ client: mapClient().client, encryptionKey: randomBytes(16) })).toThrow(/32 bytes/);
  });
});
