import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushImage } from '../src/image/push-image.js';
import {
  type Challenge,
  type ChallengeStore,
  createRegistryClients,
  MemoryTokenStore,
  type RegistryClients,
  type RegistryClientsOptions,
  staticCredentials,
  TokenCache,
  type TokenInfo,
  type TokenStore,
  type TraceEvent,
} from '../src/index.js';
import { type BuiltImage, buildOciLayout } from './harness/oci-layout.js';
import { startTokenStack, type TokenStack } from './harness/token-server.js';

const USERS = { alice: 'alice-pw-5310' };
const ALICE = staticCredentials({ username: 'alice', password: USERS.alice });

interface Shape {
  salt: string;
  tokens: Record<string, TokenInfo>;
  challenges: Record<string, Challenge>;
  scopeNames: Record<string, Record<string, readonly string[]>>;
}

/**
 * A store whose every call goes through fs/promises, reading or rewriting one JSON file: its
 * answers come back on a later turn of the event loop, as a Redis or database store's do.
 */
class FsPromisesStore implements TokenStore, ChallengeStore {
  readonly calls: string[] = [];
  #writing: Promise<void> = Promise.resolve();
  constructor(readonly file: string) {}

  async #read(): Promise<Shape> {
    try {
      return JSON.parse(await readFile(this.file, 'utf8')) as Shape;
    } catch {
      return { salt: Buffer.alloc(16, 3).toString('base64'), tokens: {}, challenges: {}, scopeNames: {} };
    }
  }

  #update(change: (data: Shape) => void): Promise<void> {
    this.#writing = this.#writing.then(async () => {
      const data = await this.#read();
      change(data);
      await writeFile(`${this.file}.tmp`, JSON.stringify(data));
      await rename(`${this.file}.tmp`, this.file);
    });
    return this.#writing;
  }

  async keySalt(): Promise<Uint8Array> {
    this.calls.push('keySalt');
    return Buffer.from((await this.#read()).salt, 'base64');
  }
  async loadToken(key: string): Promise<TokenInfo | undefined> {
    this.calls.push('loadToken');
    return (await this.#read()).tokens[key];
  }
  saveToken(key: string, _registry: string, token: TokenInfo): Promise<void> {
    this.calls.push('saveToken');
    return this.#update((d) => {
      d.tokens[key] = token;
    });
  }
  async loadChallenge(origin: string): Promise<Challenge | undefined> {
    this.calls.push('loadChallenge');
    return (await this.#read()).challenges[origin];
  }
  saveChallenge(origin: string, challenge: Challenge): Promise<void> {
    this.calls.push('saveChallenge');
    return this.#update((d) => {
      d.challenges[origin] = challenge;
    });
  }
  forgetChallenge(origin: string): Promise<void> {
    return this.#update((d) => {
      delete d.challenges[origin];
    });
  }
  async loadScopeNames(origin: string, requested: string): Promise<readonly string[] | undefined> {
    return (await this.#read()).scopeNames[origin]?.[requested];
  }
  saveScopeNames(origin: string, requested: string, named: readonly string[]): Promise<void> {
    return this.#update((d) => {
      d.scopeNames[origin] = { ...d.scopeNames[origin], [requested]: named };
    });
  }
}

/** A store every method of which rejects (a Redis that is down), or throws at once. */
const brokenStore = (): TokenStore & ChallengeStore => ({
  loadToken: () => Promise.reject(new Error('ECONNREFUSED redis://:s3cret@127.0.0.1:6379')),
  saveToken: () => Promise.reject(new Error('ECONNREFUSED')),
  keySalt: () => Promise.reject(new Error('ECONNREFUSED')),
  loadChallenge: () => {
    throw new Error('ECONNREFUSED');
  },
  saveChallenge: () => Promise.reject(new Error('ECONNREFUSED')),
  forgetChallenge: () => Promise.reject(new Error('ECONNREFUSED')),
});

/** Client sets that record what they send; `realm` counts the token requests. */
function recorded(options: RegistryClientsOptions = {}) {
  const events: TraceEvent[] = [];
  const clients: RegistryClients = createRegistryClients({
    credentials: ALICE,
    env: {},
    trace: (e) => events.push(e),
    ...options,
  });
  const requests = () => events.flatMap((e) => (e.kind === 'request' ? [new URL(e.url)] : []));
  return {
    clients,
    events,
    realm: () => requests().filter((u) => u.pathname === '/token').length,
    registry: (path: string) => requests().filter((u) => u.pathname === path).length,
  };
}

let stack: TokenStack;
let host: string;
let work: string;
let image: BuiltImage;

beforeAll(async () => {
  stack = await startTokenStack({ users: USERS });
  host = stack.registry.host;
  work = await mkdtemp(join(tmpdir(), 'regauth-token-store-'));
  image = await buildOciLayout(join(work, 'image'), { tag: 'v1' });
  const seed = createRegistryClients({ credentials: ALICE, env: {} });
  await pushImage(join(work, 'image'), seed.forRegistry(host), 'alice/app', 'v1');
});

afterAll(async () => {
  await stack?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('an asynchronous token store', () => {
  it('keeps one token fetch for parallel requests, and serves the next client set without one', async () => {
    const store = new FsPromisesStore(join(work, 'async-store.json'));
    const first = recorded({ store });
    const manifests = await Promise.all(
      Array.from({ length: 8 }, () => first.clients.forRegistry(host).getManifest('alice/app', 'v1')),
    );
    expect(new Set(manifests.map((m) => m.digest))).toEqual(new Set([image.manifestDigest]));
    expect(first.realm()).toBe(1);
    // The reads really were shared: one store read of the token key for 8 requests.
    expect(store.calls.filter((c) => c === 'loadToken')).toHaveLength(1);

    // Another client set on the same store (another process, in effect): no token request, and
    // the token up front, so one request per manifest.
    const second = recorded({ store: new FsPromisesStore(store.file) });
    const again = await Promise.all(
      Array.from({ length: 4 }, () => second.clients.forRegistry(host).getManifest('alice/app', 'v1')),
    );
    expect(again.map((m) => m.digest)).toEqual(Array(4).fill(image.manifestDigest));
    expect(second.realm()).toBe(0);
    expect(second.registry('/v2/alice/app/manifests/v1')).toBe(4);
  });

  it('does not fail a request when every store method throws or rejects, and tells onStoreError', async () => {
    const failed: string[] = [];
    const run = recorded({ store: brokenStore(), onStoreError: (_e, operation) => failed.push(operation) });
    const manifest = await run.clients.forRegistry(host).getManifest('alice/app', 'v1');
    expect(manifest.digest).toBe(image.manifestDigest);
    expect(run.realm()).toBe(1);
    expect(new Set(failed)).toEqual(
      new Set(['loadChallenge', 'saveChallenge', 'keySalt', 'loadToken', 'saveToken']),
    );
    // The trace names the failed method, never what the store said (it could hold a secret).
    const notes = run.events.flatMap((e) => (e.kind === 'note' ? [e.text] : []));
    expect(notes).toContain("the token store's loadToken failed; going on without it");
    expect(notes.join('\n')).not.toContain('s3cret');
  });
});

describe('one token cache shared by client sets', () => {
  it('shares tokens and the in-flight fetch: two client sets started together cause one token request', async () => {
    const tokenCache = new TokenCache();
    const a = recorded({ tokenCache });
    const b = recorded({ tokenCache });
    const both = await Promise.all(
      [a, b].flatMap((set) =>
        Array.from({ length: 4 }, () => set.clients.forRegistry(host).getManifest('alice/app', 'v1')),
      ),
    );
    expect(new Set(both.map((m) => m.digest))).toEqual(new Set([image.manifestDigest]));
    expect(a.realm() + b.realm()).toBe(1);
    // A third set later: the challenge is learned once (a 401), the token comes from the cache.
    const c = recorded({ tokenCache });
    await c.clients.forRegistry(host).getManifest('alice/app', 'v1');
    expect(c.realm()).toBe(0);
  });

  it('with a MemoryTokenStore in the cache, shares the challenge too: one request per manifest', async () => {
    const tokenCache = new TokenCache({ store: new MemoryTokenStore() });
    const a = recorded({ tokenCache });
    await a.clients.forRegistry(host).getManifest('alice/app', 'v1');
    expect(a.realm()).toBe(1);
    const b = recorded({ tokenCache });
    await b.clients.forRegistry(host).getManifest('alice/app', 'v1');
    expect(b.realm()).toBe(0);
    expect(b.registry('/v2/alice/app/manifests/v1')).toBe(1);
  });

  it('refuses a store that the shared cache does not use, saying what to pass instead', () => {
    const err = (() => {
      try {
        createRegistryClients({ tokenCache: new TokenCache(), store: new MemoryTokenStore() });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toMatchObject({ code: 'ERR_INVALID_OPTIONS' });
    expect((err as Error).message).toContain('new TokenCache({ store })');
    const store = new MemoryTokenStore();
    expect(() => createRegistryClients({ tokenCache: new TokenCache({ store }), store })).not.toThrow();
  });
});
