import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REGAUTH_BIN, startTokenServer } from './harness/token-server.js';

function run(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(REGAUTH_BIN, args, { timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

describe('regauth keygen', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'regauth-keygen-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes a 0600 key and a certificate for it, valid for the days asked', async () => {
    const key = join(dir, 'rsa.pem');
    const cert = join(dir, 'rsa.crt');
    const res = await run([
      'keygen',
      '--key',
      key,
      '--cert',
      cert,
      '--algorithm',
      'RS256',
      '--days',
      '30',
      '--subject',
      'my signer',
    ]);
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(/key id \(kid\): ([A-Z2-7]{4}:){11}[A-Z2-7]{4}/);
    expect((await stat(key)).mode & 0o777).toBe(0o600);
    const x509 = new X509Certificate(await readFile(cert));
    expect(x509.subject).toBe('CN=my signer');
    expect(x509.publicKey.asymmetricKeyType).toBe('rsa');
    const days = (Date.parse(x509.validTo) - Date.parse(x509.validFrom)) / 86_400_000;
    expect(days).toBe(30);
  });

  it('refuses to overwrite an existing key or certificate and leaves both as they were', async () => {
    const key = join(dir, 'k.pem');
    const cert = join(dir, 'c.pem');
    expect((await run(['keygen', '--key', key, '--cert', cert])).code).toBe(0);
    const before = [await readFile(key, 'utf8'), await readFile(cert, 'utf8')];
    const again = await run(['keygen', '--key', key, '--cert', cert]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/k\.pem exists already/);
    const other = join(dir, 'new-key.pem');
    const certExists = await run(['keygen', '--key', other, '--cert', cert]);
    expect(certExists.code).toBe(1);
    expect(certExists.stderr).toMatch(/c\.pem exists already/);
    await expect(stat(other)).rejects.toThrow();
    expect([await readFile(key, 'utf8'), await readFile(cert, 'utf8')]).toEqual(before);
  });

  it('answers a bad option with a usage error (exit 2)', async () => {
    const res = await run([
      'keygen',
      '--key',
      join(dir, 'x'),
      '--cert',
      join(dir, 'y'),
      '--algorithm',
      'PS256',
    ]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/PS256/);
  });
});

describe('regauth serve as a process', () => {
  it('stops at start-up on a config error, naming the key path', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'regauth-serve-'));
    try {
      const file = join(dir, 'serve.yml');
      await writeFile(file, 'token:\n  issuer: x\n  service: y\n  expiry: 300\n');
      const res = await run(['serve', '--config', file]);
      expect(res.code).toBe(1);
      expect(res.stderr).toBe(
        `regauth: error: ${file}: token.expiry: unknown key (known here: issuer, service, expiration, refresh_expiration, reuse_seconds, key, certificate, keys)\n`,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('stops at start-up on a trusted_proxies entry that is no address, naming the entry', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'regauth-serve-'));
    try {
      const file = join(dir, 'serve.yml');
      await writeFile(
        file,
        'token:\n  issuer: x\n  service: y\n  key: k.pem\n  certificate: c.pem\ntrusted_proxies: [10.0.0.0/8, proxy.local]\n',
      );
      const res = await run(['serve', '--config', file]);
      expect(res.code).toBe(1);
      expect(res.stderr).toBe(
        `regauth: error: ${file}: trusted_proxies[1]: "proxy.local" is not an IP address or CIDR network, such as 10.0.0.0/8 or 2001:db8::/32\n`,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reloads its config on SIGHUP and drains, then exits 0, on SIGTERM', async () => {
    const server = await startTokenServer({ users: { alice: 'pw-1' } });
    try {
      const until = async (what: string, check: () => boolean) => {
        const deadline = Date.now() + 10_000;
        while (!check()) {
          if (Date.now() > deadline) throw new Error(`${what} did not happen:\n${server.output()}`);
          await new Promise((r) => setTimeout(r, 25));
        }
      };
      server.process.kill('SIGHUP');
      await until('reload', () => server.output().includes('"msg":"config reloaded"'));
      expect(server.logEntries()).toContainEqual(
        expect.objectContaining({ msg: 'config reloaded', changed: [] }),
      );
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
      const exited = new Promise<number | null>((r) => server.process.once('exit', (code) => r(code)));
      server.process.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(server.output()).toContain('"msg":"shutting down"');
      await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
    } finally {
      await server.stop();
    }
  });
});
