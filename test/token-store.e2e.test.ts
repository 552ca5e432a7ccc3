import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushImage } from '../src/image/push-image.js';
import {
  type Challenge,
  type ChallengeStore,
  createRegistryClients,
  FileTokenStore,
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
import { type CliHome, createCliHome } from './harness/regauth-cli.js';
import { EXAMPLE_ACL, startTokenStack, type TokenStack } from './harness/token-server.js';
import {
  startVirtualRepositoryProxy,
  type VirtualRepositoryProxy,
} from './harness/virtual-repository-proxy.js';

const USERS = { alice: 'alice-pw-5310', carol: 'carol-pw-7762' };
const ALICE = staticCredentials({ username: 'alice', password: USERS.alice });
const CAROL = staticCredentials({ username: 'carol', password: USERS.carol });
/** carol may push to drop/* but not pull: a token asked for pull,push holds push only. */
const ACL = [...EXAMPLE_ACL, { match: { account: 'carol', name: 'drop/*' }, actions: ['push'] }];
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

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
  stack = await startTokenStack({ users: USERS, acl: ACL });
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

describe('a registry whose challenge names another scope than the path (Artifactory virtual repositories)', () => {
  let proxy: VirtualRepositoryProxy;
  const manifests = () =>
    proxy.registryLog.filter((l) => l === 'GET /v2/virtual/alice/app/manifests/v1').length;

  beforeAll(async () => {
    proxy = await startVirtualRepositoryProxy({
      registry: host,
      realm: stack.tokenServer.realm,
      key: 'virtual',
    });
  });
  afterAll(async () => {
    await proxy?.close();
  });

  it('names the scope the Artifactory way', async () => {
    const res = await fetch(`http://${proxy.host}/v2/virtual/alice/app/manifests/v1`);
    await res.arrayBuffer();
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('scope="repository:alice/app:pull"');
    expect(res.headers.get('www-authenticate')).toContain(`realm="http://${proxy.host}/token"`);
  });

  it('serves a new client set on the same store file with the stored token: one request per manifest', async () => {
    const file = join(work, 'virtual', 'tokens.json');
    const first = createRegistryClients({ credentials: ALICE, env: {}, store: new FileTokenStore(file) });
    const got = await first.forRegistry(proxy.host).getManifest('virtual/alice/app', 'v1');
    expect(got.digest).toBe(image.manifestDigest);
    const [realmBefore, manifestsBefore] = [proxy.realmLog.length, manifests()];

    const second = createRegistryClients({ credentials: ALICE, env: {}, store: new FileTokenStore(file) });
    for (let i = 0; i < 3; i++) {
      expect((await second.forRegistry(proxy.host).getManifest('virtual/alice/app', 'v1')).digest).toBe(
        image.manifestDigest,
      );
    }
    expect(manifests() - manifestsBefore).toBe(3);
    expect(proxy.realmLog.length - realmBefore).toBe(0);
  });

  it('asks the realm for the scope the registry names up front once the stored token is gone', async () => {
    const file = join(work, 'virtual-expired', 'tokens.json');
    const first = createRegistryClients({ credentials: ALICE, env: {}, store: new FileTokenStore(file) });
    await first.forRegistry(proxy.host).getManifest('virtual/alice/app', 'v1');
    // What a later process finds once the token expired: the challenge and the scope names only.
    const kept = JSON.parse(await readFile(file, 'utf8')) as { tokens: unknown };
    kept.tokens = {};
    await writeFile(file, JSON.stringify(kept), { mode: 0o600 });
    const [realmBefore, manifestsBefore] = [proxy.realmLog.length, manifests()];

    const later = createRegistryClients({ credentials: ALICE, env: {}, store: new FileTokenStore(file) });
    await later.forRegistry(proxy.host).getManifest('virtual/alice/app', 'v1');
    expect(manifests() - manifestsBefore).toBe(1);
    const asked = proxy.realmLog.slice(realmBefore);
    expect(asked).toHaveLength(1);
    expect(new URL(asked[0] ?? '', 'http://x').searchParams.getAll('scope')).toContain(
      'repository:alice/app:pull',
    );
  });

  it('a second regauth run with the same cache folder makes one request and no token request', async () => {
    const cli: CliHome = await createCliHome();
    try {
      const env = { REGAUTH_USERNAME: 'alice', REGAUTH_PASSWORD: USERS.alice };
      const ref = `${proxy.host}/virtual/alice/app:v1`;
      const cold = await cli.run(['manifest', ref], { env });
      expect(cold.stderr).toBe('');
      expect(cold.stdout.toString()).toBe(image.manifest);
      const [realmBefore, manifestsBefore] = [proxy.realmLog.length, manifests()];
      const warm = await cli.run(['manifest', ref, '--trace'], { env });
      expect(warm.code).toBe(0);
      expect(warm.stdout.toString()).toBe(image.manifest);
      expect(warm.requests).toBe(1);
      expect(manifests() - manifestsBefore).toBe(1);
      expect(proxy.realmLog.length - realmBefore).toBe(0);
    } finally {
      await cli.dispose();
    }
  });
});

describe('a stored token whose scopes include the needed ones', () => {
  it('serves a pull in a new client set after a push (a pull,push token) without a token request', async () => {
    const file = join(work, 'push', 'tokens.json');
    const first = recorded({ store: new FileTokenStore(file) });
    // A retag: a PUT, which asks for pull,push, and nothing else.
    await first.clients
      .forRegistry(host)
      .putManifest('alice/app', 'retagged', Buffer.from(image.manifest), OCI_MANIFEST);
    expect(first.realm()).toBe(1);

    const second = recorded({ store: new FileTokenStore(file) });
    const got = await second.clients.forRegistry(host).getManifest('alice/app', 'retagged');
    expect(got.digest).toBe(image.manifestDigest);
    expect(second.realm()).toBe(0);
    expect(second.registry('/v2/alice/app/manifests/retagged')).toBe(1);
  });

  it('serves the regauth CLI after a copy: the destination pull costs one request', async () => {
    const cli: CliHome = await createCliHome();
    try {
      const env = { REGAUTH_USERNAME: 'alice', REGAUTH_PASSWORD: USERS.alice };
      const copy = await cli.run(['copy', `${host}/alice/app:v1`, `${host}/alice/copied:v1`, '--quiet'], {
        env,
      });
      expect(copy.stderr).toBe('');
      expect(copy.code).toBe(0);
      const warm = await cli.run(['manifest', `${host}/alice/copied:v1`, '--trace'], { env });
      expect(warm.stdout.toString()).toBe(image.manifest);
      expect(warm.requests).toBe(1);
    } finally {
      await cli.dispose();
    }
  });

  it('is asked once more for the exact scope when the registry refuses it (insufficient_scope), never in a loop', async () => {
    const file = join(work, 'narrow', 'tokens.json');
    await mkdir(join(work, 'narrow'), { recursive: true, mode: 0o700 });
    // carol's token asked for pull,push on drop/x holds push only (the realm grants what she may).
    const first = recorded({ credentials: CAROL, store: new FileTokenStore(file) });
    const url = new URL(`http://${host}/v2/drop/x/blobs/uploads/`);
    const token = await first.clients.auth.token({
      method: 'POST',
      url,
      headers: {},
      registry: host,
      scopes: [{ type: 'repository', name: 'drop/x', actions: ['pull', 'push'] }],
    });
    expect(token?.token).toBeTruthy();
    expect(first.realm()).toBe(1);

    const second = recorded({ credentials: CAROL, store: new FileTokenStore(file) });
    const err = await second.clients
      .forRegistry(host)
      .getManifest('drop/x', 'v1')
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 401 });
    // The covering token went first; refused, one token for exactly pull; refused again: done.
    expect(second.registry('/v2/drop/x/manifests/v1')).toBe(2);
    const asked = second.events.flatMap((e) =>
      e.kind === 'request' && new URL(e.url).pathname === '/token'
        ? [new URL(e.url).searchParams.getAll('scope')]
        : [],
    );
    expect(asked).toEqual([['repository:drop/x:pull']]);
  });
});
