import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RegauthError } from '../errors/regauth-error.js';
import { generateSigningKey } from '../server/generate-signing-key.js';
import { runModuleScript } from '../testing/run-module-script.js';
import { readCaFile } from './trusted-secure-context.js';

describe('readCaFile', () => {
  let dir: string;
  const [first, second] = rootCertificates;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'regauth-ca-file-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function file(name: string, text: string): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  }

  function failure(path: string): RegauthError {
    try {
      readCaFile(path);
    } catch (err) {
      return err as RegauthError;
    }
    throw new Error(`${path} was accepted`);
  }

  it('keeps every certificate of a bundle, comments and CRLF line ends around them', async () => {
    const text = `# a bundle\r\n${first?.replaceAll('\n', '\r\n')}\r\nsubject=…\n${second}\n`;
    const pem = readCaFile(await file('bundle.pem', text));
    expect(pem.match(/-----BEGIN CERTIFICATE-----/g)).toHaveLength(2);
    expect(pem.replaceAll('\r', '')).toContain(second?.trim());
    expect(pem).not.toContain('a bundle');
  });

  it('refuses a file without a certificate, naming it', async () => {
    for (const text of [
      '',
      'not a certificate\n',
      '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n',
    ]) {
      const path = await file('none.pem', text);
      const err = failure(path);
      expect(err.code).toBe('ERR_USAGE');
      expect(err.message).toBe(
        `cannot use the CA file ${path}: it holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
      );
      expect(err.hint).toEqual({ kind: 'ca-file', path });
    }
  });

  it('refuses a broken certificate among good ones, saying which', async () => {
    const path = await file(
      'broken.pem',
      `${first}\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n${second}`,
    );
    const err = failure(path);
    expect(err.message).toBe(
      `cannot use the CA file ${path}: certificate 2 of 3 is not a valid X.509 certificate`,
    );
    expect(err.hint).toEqual({ kind: 'ca-file', path });
  });

  it("keeps OpenSSL's TRUSTED CERTIFICATE blocks, and refuses one whose certificate is broken", async () => {
    const der = Buffer.from(first?.replace(/-----[^-]+-----|\s/g, '') ?? '', 'base64');
    const block = (bytes: Buffer) =>
      `-----BEGIN TRUSTED CERTIFICATE-----\n${bytes.toString('base64')}\n-----END TRUSTED CERTIFICATE-----\n`;
    const good = block(Buffer.concat([der, Buffer.from([0x30, 0x00])]));
    expect(readCaFile(await file('trusted.pem', `${good}${second}`))).toBe(
      `${good.trim()}\n${second?.trim()}`,
    );
    const path = await file(
      'trusted-broken.pem',
      block(Buffer.concat([der.subarray(0, 100), Buffer.from([0x30, 0x00])])),
    );
    expect(failure(path).message).toBe(
      `cannot use the CA file ${path}: certificate 1 of 1 is not a valid X.509 certificate`,
    );
  });

  it('refuses a file whose last certificate is cut off, and takes the older X509 CERTIFICATE label', async () => {
    const cut = await file('cut.pem', `${first}\n${second?.slice(0, 400)}`);
    expect(failure(cut).message).toBe(
      `cannot use the CA file ${cut}: it is cut off or damaged: a certificate has no END line`,
    );
    const old = (first ?? '').replaceAll('CERTIFICATE-----', 'X509 CERTIFICATE-----');
    expect(readCaFile(await file('x509.pem', old))).toBe(old.trim());
  });

  it('checks the DER of every block of a large bundle without parsing each', async () => {
    const bundle = rootCertificates.slice(0, 40).join('\n');
    expect(readCaFile(await file('bundle40.pem', bundle)).match(/-----BEGIN CERTIFICATE-----/g)).toHaveLength(
      40,
    );
    // Block 30, its base64 shortened by one 4-character group: its DER length no longer fits.
    const damaged = rootCertificates
      .slice(0, 40)
      .map((pem, i) => (i === 29 ? pem.replace(/\n[A-Za-z0-9+/]{4}/, '\n') : pem))
      .join('\n');
    const path = await file('bundle40-damaged.pem', damaged);
    expect(failure(path).message).toBe(
      `cannot use the CA file ${path}: certificate 30 of 40 is not a valid X.509 certificate`,
    );
  });

  it('says why a file cannot be read', () => {
    const path = join(dir, 'missing.pem');
    const err = failure(path);
    expect(err.message).toMatch(new RegExp(`^cannot read the CA file ${path}: ENOENT`));
    expect(err.hint).toEqual({ kind: 'ca-file', path });
  });
});

describe('trustedSecureContext', () => {
  let dir: string;
  const servers: Server[] = [];
  const ports: number[] = [];
  const certFiles: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'regauth-trust-'));
    // Two HTTPS servers on loopback, each with a self-signed certificate of its own (its own CA).
    for (const name of ['a', 'b']) {
      const pair = await generateSigningKey({ algorithm: 'ES256', subject: `regauth test server ${name}` });
      const server = createServer({ cert: pair.certPem, key: pair.keyPem }, (_req, res) => res.end('ok'));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      servers.push(server);
      ports.push((server.address() as AddressInfo).port);
      const file = join(dir, `${name}.pem`);
      await writeFile(file, pair.certPem);
      certFiles.push(file);
      // The same certificate as OpenSSL's TRUSTED CERTIFICATE: its DER, then trust settings
      // (X509_CERT_AUX), here an empty SEQUENCE.
      const der = Buffer.from(pair.certPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
      const trusted = Buffer.concat([der, Buffer.from([0x30, 0x00])]).toString('base64');
      await writeFile(
        join(dir, `${name}-trusted.pem`),
        `-----BEGIN TRUSTED CERTIFICATE-----\n${trusted.replace(/.{64}/g, '$&\n')}\n-----END TRUSTED CERTIFICATE-----\n`,
      );
    }
  });
  afterAll(async () => {
    for (const server of servers) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    await rm(dir, { recursive: true, force: true });
  });

  /**
   * Which of the two servers each context trusts, in a process of its own (NODE_EXTRA_CA_CERTS is
   * read at start-up): server a's certificate is a default CA there when `extraDefault`.
   */
  async function trusted(extraDefault: boolean): Promise<Record<string, [boolean, boolean]>> {
    const script = `
      import { readFileSync } from 'node:fs';
      import { get } from 'node:https';
      import { createSecureContext } from 'node:tls';
      const { readCaFile, trustedSecureContext } = await import(${JSON.stringify(new URL('./trusted-secure-context.ts', import.meta.url).pathname)});
      const ports = ${JSON.stringify(ports)};
      // Only the chain is in question: the certificates name no host.
      const reach = (port, secureContext) => new Promise((resolve) =>
        get({ host: '127.0.0.1', port, secureContext, agent: false, checkServerIdentity: () => undefined }, (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        }).on('error', () => resolve(false)));
      const both = async (context) => [await reach(ports[0], context), await reach(ports[1], context)];
      const out = {};
      out.defaults = await both(createSecureContext());
      out.withB = await both(await trustedSecureContext(readFileSync(${JSON.stringify(certFiles[1])}, 'utf8')));
      out.without = await both(await trustedSecureContext());
      out.withTrustedB = await both(await trustedSecureContext(readCaFile(${JSON.stringify(join(dir, 'b-trusted.pem'))})));
      out.defaultsAfter = await both(createSecureContext());
      console.log(JSON.stringify(out));`;
    const { NODE_EXTRA_CA_CERTS: _, ...env } = process.env;
    const child = await runModuleScript(script, {
      env: extraDefault ? { ...env, NODE_EXTRA_CA_CERTS: certFiles[0] } : env,
    });
    expect(child.stderr).toBe('');
    return JSON.parse(child.stdout) as Record<string, [boolean, boolean]>;
  }

  it("adds the CA to Node's defaults, NODE_EXTRA_CA_CERTS included, and leaves the defaults as they were", async () => {
    expect(await trusted(true)).toEqual({
      defaults: [true, false],
      withB: [true, true],
      withTrustedB: [true, true],
      without: [true, false],
      defaultsAfter: [true, false],
    });
  });

  it('trusts the CA given and not a certificate Node does not trust by default', async () => {
    expect(await trusted(false)).toEqual({
      defaults: [false, false],
      withB: [false, true],
      withTrustedB: [false, true],
      without: [false, false],
      defaultsAfter: [false, false],
    });
  });
});
