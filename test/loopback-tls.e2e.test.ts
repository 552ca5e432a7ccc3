import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLoopbackServer } from '../src/testing/loopback-server.js';
import { type BuiltImage, buildOciLayout } from './harness/oci-layout.js';
import { type CliHome, createCliHome } from './harness/regauth-cli.js';
import { type RegistryHandle, startRegistry } from './harness/registry.js';
import { makeLoopbackTls } from './harness/tls.js';
import { startTokenServer, type TokenServerHandle } from './harness/token-server.js';

/** A TLS handshake starts with a handshake record (content type 22); HTTP with a method name. */
const TLS_HANDSHAKE = 0x16;

/**
 * A TCP relay in front of a registry that counts the connections made to it, split by what the
 * client spoke first: TLS or plain HTTP.
 */
async function countingRelay(targetPort: number): Promise<{
  port: number;
  counts: { tls: number; plain: number };
  /** New connections go to `port` from now on: the same address, another server behind it. */
  retarget(port: number): void;
  close(): Promise<void>;
}> {
  const counts = { tls: 0, plain: 0 };
  const sockets = new Set<Socket>();
  let target = targetPort;
  const server: Server = createServer((client) => {
    sockets.add(client);
    const upstream = connect(target, '127.0.0.1');
    sockets.add(upstream);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.once('data', (first: Buffer) => {
      if (first[0] === TLS_HANDSHAKE) counts.tls++;
      else counts.plain++;
      upstream.write(first);
      client.pipe(upstream);
    });
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    counts,
    retarget: (next) => {
      target = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('a registry on loopback: HTTPS when it speaks TLS, plain HTTP when it does not', () => {
  let work: string;
  let caFile: string;
  let tlsMaterial: Awaited<ReturnType<typeof makeLoopbackTls>>;
  let tlsRegistry: RegistryHandle;
  let plainRegistry: RegistryHandle;
  let tokenServer: TokenServerHandle;
  let authRegistry: RegistryHandle;
  let cli: CliHome;
  let image: BuiltImage;
  const USERS = { alice: 'alice-loopback-tls-31' };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'regauth-loopback-tls-'));
    const tls = await makeLoopbackTls();
    tlsMaterial = tls;
    caFile = join(work, 'ca.pem');
    await writeFile(caFile, tls.caPem);
    tokenServer = await startTokenServer({ users: USERS });
    [tlsRegistry, plainRegistry, authRegistry] = await Promise.all([
      startRegistry({ tls }),
      startRegistry(),
      // A TLS registry that sends clients to a plain-HTTP realm, both on loopback: allowed.
      startRegistry({
        tls,
        auth: {
          token: {
            realm: tokenServer.realm,
            service: tokenServer.service,
            issuer: tokenServer.issuer,
            rootcertbundle: tokenServer.certFile,
          },
        },
      }),
    ]);
    cli = await createCliHome();
    image = await buildOciLayout(join(work, 'layout'), {
      tag: 'v1',
      layers: [{ 'a.txt': 'first layer\n' }, { 'b.txt': 'second layer\n' }],
    });
  });

  afterAll(async () => {
    await Promise.all([tlsRegistry?.stop(), plainRegistry?.stop(), authRegistry?.stop()]);
    await tokenServer?.stop();
    await cli?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('pushes to and reads from a TLS registry on 127.0.0.1 with --ca-file', async () => {
    expect(tlsRegistry.url).toMatch(/^https:/);
    const push = await cli.run([
      'push',
      `${join(work, 'layout')}:v1`,
      `${tlsRegistry.host}/x:y`,
      '--ca-file',
      caFile,
    ]);
    expect(push.stderr).toBe('');
    expect(push.code).toBe(0);
    const res = await cli.run(['manifest', `${tlsRegistry.host}/x:y`, '--ca-file', caFile]);
    expect(res.stderr).toBe('');
    expect(res.stdout.toString()).toBe(image.manifest);
  });

  it('reads from the same TLS registry named localhost:PORT, over TLS only', async () => {
    const relay = await countingRelay(Number(tlsRegistry.host.split(':')[1]));
    try {
      const res = await cli.run(['manifest', `localhost:${relay.port}/x:y`, '--ca-file', caFile]);
      expect(res.stderr).toBe('');
      expect(res.stdout.toString()).toBe(image.manifest);
      expect(relay.counts.plain).toBe(0);
      expect(relay.counts.tls).toBeGreaterThan(0);
    } finally {
      await relay.close();
    }
  });

  it('never falls back to plain HTTP when the TLS certificate is not trusted', async () => {
    const res = await cli.run(['manifest', `${tlsRegistry.host}/x:y`]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^regauth: error: GET https:\/\/127\.0\.0\.1:\d+: .*--ca-file/m);
  });

  it('logs in and pulls through a token realm from a TLS registry on loopback', async () => {
    const host = authRegistry.host;
    const login = await cli.run(['login', host, '-u', 'alice', '--password-stdin', '--ca-file', caFile], {
      stdin: `${USERS.alice}\n`,
    });
    expect(login.stderr).toContain('Login Succeeded');
    const push = await cli.run([
      'push',
      `${join(work, 'layout')}:v1`,
      `${host}/alice/app:v1`,
      '--ca-file',
      caFile,
    ]);
    expect(push.stderr).toBe('');
    const res = await cli.run(['manifest', `${host}/alice/app:v1`, '--ca-file', caFile]);
    expect(res.stdout.toString()).toBe(image.manifest);
  });

  it('speaks plain HTTP to a plain-HTTP loopback registry after one failed handshake, remembered for the next process', async () => {
    const relay = await countingRelay(Number(plainRegistry.host.split(':')[1]));
    try {
      const host = `127.0.0.1:${relay.port}`;
      const push = await cli.run(['push', `${join(work, 'layout')}:v1`, `${host}/plain:v1`, '--trace']);
      expect(push.code).toBe(0);
      expect(push.stderr).toContain('answers HTTPS with plain HTTP');
      // Blob checks, uploads and the manifest: many requests, yet one TLS attempt.
      expect(push.requests).toBeGreaterThan(4);
      expect(relay.counts.tls).toBe(1);
      const res = await cli.run(['manifest', `${host}/plain:v1`, '--trace']);
      expect(res.code).toBe(0);
      expect(res.stdout.toString()).toBe(image.manifest);
      expect(res.stderr).toContain(`${host} spoke plain HTTP when last pinged; trying that first`);
      expect(relay.counts.tls).toBe(1);
    } finally {
      await relay.close();
    }
  });

  it('pings again when the port behind a remembered scheme now speaks the other one', async () => {
    const own = await createCliHome();
    const layout = `${join(work, 'layout')}:v1`;
    const plainPort = Number(plainRegistry.host.split(':')[1]);
    // Node's TLS server resets a plain-HTTP request, where Go's (the registry) answers it with a 400.
    const nodeTls = await startLoopbackServer(
      (req, res) => {
        if (req.target === '/v2/moved/manifests/v1') {
          res.setHeader('content-type', 'application/vnd.oci.image.manifest.v1+json');
          res.end(image.manifest);
        } else res.end('{}');
      },
      { tls: { cert: tlsMaterial.certPem, key: tlsMaterial.keyPem } },
    );
    const relay = await countingRelay(plainPort);
    try {
      for (const push of [
        ['push', layout, `${plainRegistry.host}/moved:v1`],
        ['push', layout, `${tlsRegistry.host}/moved:v1`, '--ca-file', caFile],
      ]) {
        expect((await own.run(push)).code).toBe(0);
      }
      const host = `127.0.0.1:${relay.port}`;
      const manifest = () => own.run(['manifest', `${host}/moved:v1`, '--ca-file', caFile, '--trace']);
      const first = await manifest();
      expect(first.stdout.toString()).toBe(image.manifest);
      expect(first.stderr).toContain('answers HTTPS with plain HTTP');

      relay.retarget(Number(tlsRegistry.host.split(':')[1]));
      const before = { ...relay.counts };
      const moved = await manifest();
      expect(moved.stdout.toString()).toBe(image.manifest);
      expect(moved.stderr).toContain(`${host} answered plain HTTP with HTTP 400; the HTTPS ping found HTTPS`);
      // One plain request, refused; then the ping and the request again, over TLS.
      expect(relay.counts.plain).toBe(before.plain + 1);
      expect(relay.counts.tls).toBeGreaterThan(before.tls);

      const after = { ...relay.counts };
      const again = await manifest();
      expect(again.stdout.toString()).toBe(image.manifest);
      expect(again.stderr).toContain(`${host} spoke HTTPS when last pinged; trying that first`);
      expect(again.stderr).not.toContain('the HTTPS ping found');
      expect(relay.counts.plain).toBe(after.plain);

      relay.retarget(plainPort);
      const back = await manifest();
      expect(back.stdout.toString()).toBe(image.manifest);
      expect(back.stderr).toContain(`${host} no longer speaks HTTPS; the HTTPS ping found plain HTTP`);
      expect(back.stderr).toContain('answers HTTPS with plain HTTP');

      relay.retarget(nodeTls.port);
      const reset = await manifest();
      expect(reset.stderr).toContain(`${host} no longer speaks plain HTTP; the HTTPS ping found HTTPS`);
      expect(reset.code).toBe(0);
      expect(reset.stdout.toString()).toBe(image.manifest);
      // The refused plain request never reached the handler: only the ping and the manifest did.
      expect(nodeTls.requests.map((r) => r.target)).toEqual(['/v2/', '/v2/moved/manifests/v1']);
    } finally {
      await relay.close();
      await nodeTls.close();
      await own.dispose();
    }
  });

  it('with --insecure speaks plain HTTP at once, as documented', async () => {
    const relay = await countingRelay(Number(plainRegistry.host.split(':')[1]));
    try {
      const res = await cli.run(['manifest', `127.0.0.1:${relay.port}/plain:v1`, '--insecure']);
      expect(res.code).toBe(0);
      expect(res.stdout.toString()).toBe(image.manifest);
      expect(relay.counts).toEqual({ tls: 0, plain: expect.any(Number) });
      expect(relay.counts.plain).toBeGreaterThan(0);
    } finally {
      await relay.close();
    }
  });
});
