import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushImage } from '../src/image/push-image.js';
import { createRegistryClients, createTransport, isRegauthError, staticCredentials } from '../src/index.js';
import type { TraceEvent } from '../src/transport/trace.js';
import { type BuiltImage, buildOciLayout } from './harness/oci-layout.js';
import { makeLoopbackTls } from './harness/tls.js';
import { startTokenStack, type TokenStack } from './harness/token-server.js';

const USERS = { alice: 'alice-opts-pw-41' };
const ALICE = staticCredentials({ username: 'alice', password: USERS.alice });

describe('createRegistryClients options that would be ignored together', () => {
  let stack: TokenStack;
  let work: string;
  let caFile: string;
  let image: BuiltImage;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'regauth-options-e2e-'));
    const tls = await makeLoopbackTls();
    caFile = join(work, 'ca.pem');
    await writeFile(caFile, tls.caPem);
    await writeFile(join(work, 'tls.crt'), tls.certPem);
    await writeFile(join(work, 'tls.key'), tls.keyPem);
    // The realm speaks HTTPS with a private CA: a client that does not trust it gets no token.
    stack = await startTokenStack({
      users: USERS,
      extra: { tls: { cert: join(work, 'tls.crt'), key: join(work, 'tls.key') } },
    });
    image = await buildOciLayout(join(work, 'layout'), { tag: 'v1' });
    const seed = createRegistryClients({ credentials: ALICE, caFile, env: {} });
    await pushImage(join(work, 'layout'), seed.forRegistry(stack.registry.host), 'alice/app', 'v1');
  });

  afterAll(async () => {
    await stack?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('refuses caFile with a send of the caller’s own at creation, saying where the CA goes', () => {
    let err: unknown;
    try {
      createRegistryClients({ send: createTransport({ env: {} }), caFile, credentials: ALICE, env: {} });
    } catch (e) {
      err = e;
    }
    expect(isRegauthError(err, 'ERR_INVALID_OPTIONS')).toBe(true);
    expect((err as Error).message).toContain('createTransport({ caFile })');
    expect((err as Error).message).not.toMatch(/--ca-file/);
    // The same for maxRetries: the caller's transport retries as it was told.
    expect(() =>
      createRegistryClients({ send: createTransport({ env: {} }), maxRetries: 0, env: {} }),
    ).toThrow(
      expect.objectContaining({
        code: 'ERR_INVALID_OPTIONS',
        message: expect.stringContaining('createTransport({ maxRetries })'),
      }),
    );
  });

  it('trusts the CA given to the transport passed as send', async () => {
    const clients = createRegistryClients({
      send: createTransport({ caFile, env: {} }),
      credentials: ALICE,
      env: {},
    });
    const manifest = await clients.forRegistry(stack.registry.host).getManifest('alice/app', 'v1');
    expect(manifest.digest).toBe(image.manifestDigest);
  });

  it('finds a plain-HTTP loopback registry by a TLS probe of its own, and through a send of the caller’s own by its ping', async () => {
    const host = stack.registry.host;
    const events: TraceEvent[] = [];
    const own = createRegistryClients({ credentials: ALICE, env: {}, trace: (e) => events.push(e) });
    expect((await own.baseUrl(host)).href).toBe(`http://${host}/`);
    // No HTTPS request went out: the probe's answer (a plain-HTTP status line) was enough.
    expect(events.filter((e) => e.kind === 'request')).toEqual([]);
    expect(events).toContainEqual({
      kind: 'note',
      text: `${host} answers HTTPS with plain HTTP; speaking plain HTTP to it`,
    });

    const sent: string[] = [];
    const transport = createTransport({ env: {} });
    const theirs = createRegistryClients({
      send: (req) => {
        sent.push(`${req.method} ${req.url.href}`);
        return transport(req);
      },
      credentials: ALICE,
      env: {},
    });
    expect((await theirs.baseUrl(host)).href).toBe(`http://${host}/`);
    expect(sent).toEqual([`GET https://${host}/v2/`]);
  });

  it('keeps insecure and trace with a send of the caller’s own: the URLs and the auth notes', async () => {
    const notes: string[] = [];
    const clients = createRegistryClients({
      send: createTransport({ caFile, env: {} }),
      credentials: ALICE,
      env: {},
      insecure: true,
      trace: (e) => {
        if (e.kind === 'note') notes.push(e.text);
      },
    });
    expect((await clients.baseUrl(stack.registry.host)).protocol).toBe('http:');
    await clients.forRegistry(stack.registry.host).getManifest('alice/app', 'v1');
    expect(notes.some((n) => n.includes('asks for bearer authorization'))).toBe(true);
  });
});
