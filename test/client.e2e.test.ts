import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createRegistryClients,
  getImageConfig,
  isRegauthError,
  parseReference,
  staticCredentials,
  type TraceEvent,
} from '../src/index.js';
import {
  type BuiltImage,
  type BuiltIndex,
  buildOciIndexLayout,
  buildOciLayout,
} from './harness/oci-layout.js';
import { type CliHome, createCliHome } from './harness/regauth-cli.js';
import { type RegistryHandle, startRegistry } from './harness/registry.js';
import { createSkopeo, type Skopeo } from './harness/skopeo.js';
import { htpasswdLine, startTokenStack, type TokenStack } from './harness/token-server.js';

const USERS = { admin: 'admin-pw-4411', alice: 'alice-pw-8823', bob: 'bob-pw-1209' };
const sha256 = (data: Uint8Array | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** Pushes an OCI layout to the registry with skopeo (the peer's bytes are the reference). */
async function skopeoPush(
  skopeo: Skopeo,
  layout: string,
  tag: string,
  dest: string,
  creds?: string,
): Promise<void> {
  const res = await skopeo.run([
    'copy',
    '--all',
    '--dest-tls-verify=false',
    ...(creds ? ['--dest-creds', creds] : []),
    `oci:${layout}:${tag}`,
    `docker://${dest}`,
  ]);
  if (res.code !== 0) throw new Error(`skopeo copy failed: ${res.stderr}`);
}

async function skopeoRaw(skopeo: Skopeo, ref: string, creds?: string): Promise<string> {
  const res = await skopeo.run([
    'inspect',
    '--raw',
    '--tls-verify=false',
    ...(creds ? ['--creds', creds] : []),
    `docker://${ref}`,
  ]);
  if (res.code !== 0) throw new Error(`skopeo inspect failed: ${res.stderr}`);
  return res.stdout;
}

/** A docker-credential-<name> helper script on a PATH folder; it logs each call to `log`. */
async function writeHelper(
  dir: string,
  name: string,
  user: string,
  secret: string,
): Promise<{ path: string; log: string }> {
  const bin = join(dir, 'bin');
  await mkdir(bin, { recursive: true });
  const log = join(dir, `${name}.log`);
  const script = `#!/bin/sh
read -r server
echo "$1 $server" >> '${log}'
if [ "$1" = get ]; then
  printf '{"ServerURL":"%s","Username":"${user}","Secret":"${secret}"}' "$server"
fi
`;
  const file = join(bin, `docker-credential-${name}`);
  await writeFile(file, script);
  await chmod(file, 0o755);
  return { path: bin, log };
}

describe('regauth client against the real registry with token auth (regauth serve)', () => {
  let stack: TokenStack;
  let skopeo: Skopeo;
  let cli: CliHome;
  let work: string;
  let host: string;
  let single: BuiltImage;
  let multi: BuiltIndex;
  const alice = { REGAUTH_USERNAME: 'alice', REGAUTH_PASSWORD: USERS.alice };

  beforeAll(async () => {
    stack = await startTokenStack({ users: USERS });
    host = stack.registry.host;
    skopeo = await createSkopeo();
    cli = await createCliHome();
    work = await mkdtemp(join(tmpdir(), 'regauth-client-e2e-'));
    single = await buildOciLayout(join(work, 'single'), { tag: 'v1' });
    await skopeoPush(skopeo, join(work, 'single'), 'v1', `${host}/alice/app:v1`, `alice:${USERS.alice}`);
    multi = await buildOciIndexLayout(join(work, 'multi'), {
      tag: 'v2',
      platforms: ['linux/amd64', 'linux/arm64/v8'],
    });
    await skopeoPush(skopeo, join(work, 'multi'), 'v2', `${host}/public/multi:v2`, `admin:${USERS.admin}`);
  });

  afterAll(async () => {
    await stack?.stop();
    await skopeo?.dispose();
    await cli?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('prints manifest bytes and digests equal to what skopeo inspect --raw returns', async () => {
    const peer = await skopeoRaw(skopeo, `${host}/alice/app:v1`, `alice:${USERS.alice}`);
    const manifest = await cli.run(['manifest', `${host}/alice/app:v1`], { env: alice });
    expect(manifest.stderr).toBe('');
    expect(manifest.code).toBe(0);
    expect(manifest.stdout.toString()).toBe(peer);
    expect(peer).toBe(single.manifest);

    const digest = await cli.run(['digest', `${host}/alice/app:v1`], { env: alice });
    expect(digest.stdout.toString()).toBe(`${sha256(peer)}\n`);

    const index = await cli.run(['manifest', `${host}/public/multi:v2`]);
    expect(index.stdout.toString()).toBe(await skopeoRaw(skopeo, `${host}/public/multi:v2`));
    expect(index.stdout.toString()).toBe(multi.index);
  });

  it('works as a library: one token fetch shared by parallel requests, typed errors', async () => {
    const events: TraceEvent[] = [];
    const clients = createRegistryClients({
      credentials: staticCredentials({ username: 'alice', password: USERS.alice }),
      trace: (e) => events.push(e),
    });
    const ref = parseReference(`${host}/alice/app:v1`);
    const registry = clients.forRegistry(ref.registry);
    const manifests = await Promise.all(
      Array.from({ length: 8 }, () => registry.getManifest(ref.repository, 'v1')),
    );
    expect(new Set(manifests.map((m) => m.digest))).toEqual(new Set([single.manifestDigest]));
    const tokenRequests = events.filter((e) => e.kind === 'request' && new URL(e.url).pathname === '/token');
    expect(tokenRequests).toHaveLength(1);
    const config = JSON.parse((await getImageConfig(registry, ref.repository, 'v1')).toString());
    expect(config.architecture).toBe('amd64');
    const missing = await registry.getManifest(ref.repository, 'missing').catch((e: unknown) => e);
    expect(isRegauthError(missing, 'ERR_MANIFEST_UNKNOWN')).toBe(true);
    expect((missing as { status: number }).status).toBe(404);
  });

  it('picks a platform from an index for manifest, digest and config', async () => {
    const arm = multi.images['linux/arm64/v8'];
    const manifest = await cli.run(['manifest', `${host}/public/multi:v2`, '--platform', 'linux/arm64']);
    expect(manifest.stdout.toString()).toBe(arm?.manifest);
    const digest = await cli.run(['digest', `${host}/public/multi:v2`, '--platform', 'linux/arm64']);
    expect(digest.stdout.toString().trim()).toBe(arm?.manifestDigest);
    const config = await cli.run(['config', `${host}/public/multi:v2`, '--platform', 'linux/amd64']);
    expect(JSON.parse(config.stdout.toString())).toEqual(
      JSON.parse(multi.images['linux/amd64']?.config ?? ''),
    );
    const none = await cli.run(['manifest', `${host}/public/multi:v2`, '--platform', 'windows/amd64']);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no manifest for windows\/amd64 .*linux\/amd64, linux\/arm64\/v8/);
  });

  it('makes three requests cold, one warm, and two when only the challenge is still cached', async () => {
    const home = await createCliHome();
    try {
      const ref = `${host}/alice/app:v1`;
      const cold = await home.run(['manifest', ref, '--trace'], { env: alice });
      expect(cold.code).toBe(0);
      expect(cold.requests).toBe(3);
      const warm = await home.run(['manifest', ref, '--trace'], { env: alice });
      expect(warm.stdout.toString()).toBe(single.manifest);
      expect(warm.requests).toBe(1);

      const cacheFile = join(home.dir, 'cache', 'regauth', 'tokens.json');
      const cache = JSON.parse(await readFile(cacheFile, 'utf8'));
      expect((await import('node:fs')).statSync(cacheFile).mode & 0o777).toBe(0o600);
      for (const t of Object.values(cache.tokens) as { expiresAt: number }[]) t.expiresAt = Date.now() - 1000;
      await writeFile(cacheFile, JSON.stringify(cache));
      const expired = await home.run(['manifest', ref, '--trace'], { env: alice });
      expect(expired.code).toBe(0);
      // The plain-HTTP scheme remembered for this loopback registry stands in for the ping until
      // a password would go to the kept realm: then the ping confirms it first.
      expect(expired.stderr.toString()).toContain('spoke plain HTTP when last pinged');
      expect(expired.stderr.toString()).toContain('answers HTTPS with plain HTTP');
      expect(expired.requests).toBe(2);
      expect(warm.stderr.toString()).not.toContain('answers HTTPS with plain HTTP');

      const uncached = await home.run(['manifest', ref, '--trace', '--no-token-cache'], { env: alice });
      expect(uncached.requests).toBe(3);
    } finally {
      await home.dispose();
    }
  });

  it("never serves one identity's cached token to another or to an anonymous call", async () => {
    const home = await createCliHome();
    try {
      const ref = `${host}/alice/app:v1`;
      expect((await home.run(['manifest', ref], { env: alice })).code).toBe(0);
      const anonymous = await home.run(['manifest', ref]);
      expect(anonymous.code).toBe(1);
      expect(anonymous.stderr).toMatch(/401/);
      const bob = await home.run(['manifest', ref], {
        env: { REGAUTH_USERNAME: 'bob', REGAUTH_PASSWORD: USERS.bob },
      });
      expect(bob.code).toBe(1);
    } finally {
      await home.dispose();
    }
  });

  it('shows the exchange with --trace the way the seed does, with every secret redacted', async () => {
    const res = await cli.run(['manifest', `${host}/alice/app:v1`, '--trace', '--no-token-cache'], {
      env: alice,
    });
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(/^GET \/v2\/alice\/app\/manifests\/v1 HTTP\/1\.1$/m);
    expect(res.stderr).toMatch(/^HTTP\/1\.1 401 Unauthorized$/m);
    expect(res.stderr).toMatch(
      /^Www-Authenticate: Bearer realm="http:\/\/127\.0\.0\.1:\d+\/token",service="test-registry"/m,
    );
    expect(res.stderr).toMatch(/"code": "UNAUTHORIZED"/);
    expect(res.stderr).toMatch(/^Authorization: Basic <redacted>$/m);
    expect(res.stderr).toMatch(/^Authorization: Bearer <redacted>$/m);
    expect(res.stderr).toMatch(/"token": "<redacted>"/);
    expect(res.stderr).not.toContain(USERS.alice);
    expect(res.stderr).not.toContain(Buffer.from(`alice:${USERS.alice}`).toString('base64'));
    expect(res.stderr).not.toMatch(/eyJ[\w-]{10,}/);
  });

  it('prints a token, or its decoded claims, for a repository', async () => {
    const res = await cli.run(['token', `${host}/public/multi`, '--decode', '--no-token-cache']);
    expect(res.code).toBe(0);
    const decoded = JSON.parse(res.stdout.toString());
    expect(decoded.header.alg).toBe('ES256');
    expect(decoded.claims.aud).toBe('test-registry');
    expect(decoded.claims.access).toEqual([{ type: 'repository', name: 'public/multi', actions: ['pull'] }]);
    const extra = await cli.run(['token', host, '--scope', 'repository:alice/app:pull,push', '--decode'], {
      env: alice,
    });
    expect(JSON.parse(extra.stdout.toString()).claims.access).toEqual([
      { type: 'repository', name: 'alice/app', actions: ['pull', 'push'] },
    ]);
  });

  it('lists tags and, for the account allowed to, the catalog', async () => {
    const tags = await cli.run(['tags', `${host}/alice/app`], { env: alice });
    expect(tags.stdout.toString()).toBe('v1\n');
    const admin = await cli.run(['catalog', host], {
      env: { REGAUTH_USERNAME: 'admin', REGAUTH_PASSWORD: USERS.admin },
    });
    expect(admin.stdout.toString().split('\n')).toEqual(
      expect.arrayContaining(['alice/app', 'public/multi']),
    );
    const denied = await cli.run(['catalog', host], { env: alice });
    expect(denied.code).toBe(1);
  });

  it('logs in through the token flow, writes a config skopeo accepts, and logs out', async () => {
    const home = await createCliHome();
    try {
      const wrong = await home.run(['login', host, '-u', 'alice', '--password-stdin'], { stdin: 'nope\n' });
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toMatch(/refused the credentials for alice/);
      await expect(readFile(join(home.dockerConfig, 'config.json'))).rejects.toThrow();

      const login = await home.run(['login', host, '-u', 'alice', '--password-stdin'], {
        stdin: `${USERS.alice}\n`,
      });
      expect(login.stderr).toMatch(/Login Succeeded/);
      expect(login.code).toBe(0);
      const configFile = join(home.dockerConfig, 'config.json');
      const config = JSON.parse(await readFile(configFile, 'utf8'));
      expect(config.auths[host].identitytoken).toMatch(/^rt1\./);
      expect(JSON.stringify(config)).not.toContain(USERS.alice);

      const viaSkopeo = await skopeo.run([
        'inspect',
        '--raw',
        '--tls-verify=false',
        '--authfile',
        configFile,
        `docker://${host}/alice/app:v1`,
      ]);
      expect(viaSkopeo.stderr).toBe('');
      expect(viaSkopeo.stdout).toBe(single.manifest);

      const stored = await home.run(['manifest', `${host}/alice/app:v1`, '--no-token-cache']);
      expect(stored.stdout.toString()).toBe(single.manifest);

      const cacheFile = join(home.dir, 'cache', 'regauth', 'tokens.json');
      const cached = () => readFile(cacheFile, 'utf8').then((t) => JSON.parse(t));
      expect(Object.keys((await cached()).challenges)).toEqual([`http://${host}`]);
      const logout = await home.run(['logout', host]);
      expect(logout.stderr).toMatch(/Removed login credentials/);
      expect(JSON.parse(await readFile(configFile, 'utf8')).auths[host]).toBeUndefined();
      // The next run asks the registry afresh: no challenge, no token is left for it.
      expect(await cached()).toMatchObject({ challenges: {}, tokens: {} });
      expect((await home.run(['manifest', `${host}/alice/app:v1`])).code).toBe(1);
    } finally {
      await home.dispose();
    }
  });

  it('uses a real credential helper through credHelpers and through credsStore', async () => {
    for (const key of ['credHelpers', 'credsStore'] as const) {
      const home = await createCliHome();
      try {
        const helper = await writeHelper(home.dir, 'regauthtest', 'alice', USERS.alice);
        const config =
          key === 'credHelpers' ? { credHelpers: { [host]: 'regauthtest' } } : { credsStore: 'regauthtest' };
        await writeFile(join(home.dockerConfig, 'config.json'), JSON.stringify(config));
        const res = await home.run(['manifest', `${host}/alice/app:v1`], {
          env: { PATH: `${helper.path}:${home.env.PATH}` },
        });
        expect(res.stderr).toBe('');
        expect(res.stdout.toString()).toBe(single.manifest);
        expect((await readFile(helper.log, 'utf8')).trim()).toBe(`get ${host}`);
      } finally {
        await home.dispose();
      }
    }
  });
});

describe('regauth client against the real registry with htpasswd Basic auth', () => {
  let registry: RegistryHandle;
  let skopeo: Skopeo;
  let cli: CliHome;
  let work: string;
  let image: BuiltImage;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'regauth-basic-e2e-'));
    const htpasswd = join(work, 'users.htpasswd');
    await writeFile(htpasswd, `${htpasswdLine('alice', USERS.alice)}\n`);
    registry = await startRegistry({ auth: { htpasswd: { realm: 'basic-realm', path: htpasswd } } });
    skopeo = await createSkopeo();
    cli = await createCliHome();
    image = await buildOciLayout(join(work, 'layout'), { tag: 'v1' });
    await skopeoPush(
      skopeo,
      join(work, 'layout'),
      'v1',
      `${registry.host}/team/app:v1`,
      `alice:${USERS.alice}`,
    );
  });

  afterAll(async () => {
    await registry?.stop();
    await skopeo?.dispose();
    await cli?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('answers the Basic challenge and prints what skopeo prints', async () => {
    const ref = `${registry.host}/team/app:v1`;
    const res = await cli.run(['manifest', ref, '--trace'], {
      env: { REGAUTH_USERNAME: 'alice', REGAUTH_PASSWORD: USERS.alice },
    });
    expect(res.code).toBe(0);
    expect(res.stdout.toString()).toBe(await skopeoRaw(skopeo, ref, `alice:${USERS.alice}`));
    expect(res.stdout.toString()).toBe(image.manifest);
    expect(res.stderr).toMatch(/^Www-Authenticate: Basic realm="basic-realm"$/m);
    expect(res.stderr).toMatch(/^Authorization: Basic <redacted>$/m);
    expect(res.stderr).not.toContain(USERS.alice);
    const digest = await cli.run(['digest', ref], {
      env: { REGAUTH_USERNAME: 'alice', REGAUTH_PASSWORD: USERS.alice },
    });
    expect(digest.stdout.toString()).toBe(`${image.manifestDigest}\n`);
  });

  it('fails with a clear message without credentials', async () => {
    const res = await cli.run(['manifest', `${registry.host}/team/app:v1`]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(
      /^regauth: error: an anonymous request may not pull from .*\(manifest .*401.*regauth login/m,
    );
  });

  it('logs in with Basic and writes an auth entry skopeo accepts', async () => {
    const login = await cli.run(['login', registry.host, '-u', 'alice', '--password-stdin'], {
      stdin: USERS.alice,
    });
    expect(login.code).toBe(0);
    const configFile = join(cli.dockerConfig, 'config.json');
    const config = JSON.parse(await readFile(configFile, 'utf8'));
    expect(Buffer.from(config.auths[registry.host].auth, 'base64').toString()).toBe(`alice:${USERS.alice}`);
    const viaSkopeo = await skopeo.run([
      'inspect',
      '--raw',
      '--tls-verify=false',
      '--authfile',
      configFile,
      `docker://${registry.host}/team/app:v1`,
    ]);
    expect(viaSkopeo.stdout).toBe(image.manifest);
  });
});

describe('regauth client against the real registry without auth', () => {
  let registry: RegistryHandle;
  let skopeo: Skopeo;
  let cli: CliHome;
  let work: string;

  beforeAll(async () => {
    registry = await startRegistry();
    skopeo = await createSkopeo();
    cli = await createCliHome();
    work = await mkdtemp(join(tmpdir(), 'regauth-open-e2e-'));
  });

  afterAll(async () => {
    await registry?.stop();
    await skopeo?.dispose();
    await cli?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('reads manifests in one request each and never runs a credential helper', async () => {
    const image = await buildOciLayout(join(work, 'layout'), { tag: 'v1' });
    await skopeoPush(skopeo, join(work, 'layout'), 'v1', `${registry.host}/open/app:v1`);
    const helper = await writeHelper(cli.dir, 'nevercalled', 'x', 'y');
    await writeFile(join(cli.dockerConfig, 'config.json'), JSON.stringify({ credsStore: 'nevercalled' }));
    const env = { PATH: `${helper.path}:${cli.env.PATH}` };
    const res = await cli.run(['manifest', `${registry.host}/open/app:v1`, '--trace'], { env });
    expect(res.stdout.toString()).toBe(await skopeoRaw(skopeo, `${registry.host}/open/app:v1`));
    expect(res.requests).toBe(1);
    const digest = await cli.run(['digest', `${registry.host}/open/app:v1`], { env });
    expect(digest.stdout.toString()).toBe(`${image.manifestDigest}\n`);
    await expect(readFile(helper.log)).rejects.toThrow();
  });

  it('reports an unknown tag as MANIFEST_UNKNOWN', async () => {
    const res = await cli.run(['manifest', `${registry.host}/open/app:nope`]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/manifest .*open\/app:nope: 404 MANIFEST_UNKNOWN/);
  });
});
