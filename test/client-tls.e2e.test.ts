import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BuiltImage, buildOciLayout } from './harness/oci-layout.js';
import { type CliHome, createCliHome } from './harness/regauth-cli.js';
import { createSkopeo, type Skopeo } from './harness/skopeo.js';
import { makeLoopbackTls } from './harness/tls.js';
import { startTokenStack, type TokenStack } from './harness/token-server.js';

const USERS = { alice: 'alice-tls-pw-77' };

describe('regauth serve over HTTPS, and --ca-file on the client', () => {
  let stack: TokenStack;
  let skopeo: Skopeo;
  let cli: CliHome;
  let work: string;
  let caFile: string;
  let otherCaFile: string;
  let image: BuiltImage;
  let tls: Awaited<ReturnType<typeof makeLoopbackTls>>;
  const env = { REGAUTH_USERNAME: 'alice', REGAUTH_PASSWORD: USERS.alice };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'regauth-tls-e2e-'));
    tls = await makeLoopbackTls();
    caFile = join(work, 'ca.pem');
    await writeFile(caFile, tls.caPem);
    otherCaFile = join(work, 'other-ca.pem');
    await writeFile(otherCaFile, (await makeLoopbackTls([], 'regauth test CA of a registry')).caPem);
    await writeFile(join(work, 'tls.crt'), tls.certPem);
    await writeFile(join(work, 'tls.key'), tls.keyPem);
    stack = await startTokenStack({
      users: USERS,
      extra: { tls: { cert: join(work, 'tls.crt'), key: join(work, 'tls.key') } },
    });
    skopeo = await createSkopeo();
    cli = await createCliHome();
    // skopeo trusts the realm's CA through a certs folder holding ca.crt.
    const certDir = join(work, 'certs');
    await mkdir(certDir);
    await writeFile(join(certDir, 'ca.crt'), tls.caPem);
    image = await buildOciLayout(join(work, 'layout'), { tag: 'v1' });
    const push = await skopeo.run([
      'copy',
      '--dest-tls-verify=false',
      '--dest-cert-dir',
      certDir,
      '--dest-creds',
      `alice:${USERS.alice}`,
      `oci:${join(work, 'layout')}:v1`,
      `docker://${stack.registry.host}/alice/app:v1`,
    ]);
    if (push.code !== 0) throw new Error(push.stderr);
  });

  afterAll(async () => {
    await stack?.stop();
    await skopeo?.dispose();
    await cli?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('serves its realm over HTTPS', () => {
    expect(stack.tokenServer.realm).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/token$/);
  });

  it('reaches an HTTPS realm signed by a private CA with --ca-file', async () => {
    const res = await cli.run(['manifest', `${stack.registry.host}/alice/app:v1`, '--ca-file', caFile], {
      env,
    });
    expect(res.stderr).toBe('');
    expect(res.stdout.toString()).toBe(image.manifest);
  });

  it('refuses the private CA without --ca-file and says what to do', async () => {
    const res = await cli.run(['manifest', `${stack.registry.host}/alice/app:v1`, '--no-token-cache'], {
      env,
    });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^regauth: error: GET https:\/\/127\.0\.0\.1:\d+: .*--ca-file/m);
  });

  it("adds --ca-file's CA to the ones Node trusts by default, as docker and containers/image do", async () => {
    // Node's defaults here are OpenSSL's store, which holds the realm's CA only; --ca-file names
    // another CA (a registry's own): the realm must stay trusted.
    const args = [
      'manifest',
      `${stack.registry.host}/alice/app:v1`,
      '--no-token-cache',
      '--ca-file',
      otherCaFile,
    ];
    const defaults = {
      NODE_OPTIONS: '--use-openssl-ca',
      SSL_CERT_FILE: caFile,
      SSL_CERT_DIR: join(work, 'no-such-dir'),
    };
    const res = await cli.run(args, { env: { ...env, ...defaults } });
    expect(res.stderr).toBe('');
    expect(res.stdout.toString()).toBe(image.manifest);
    // And the other CA alone does not make the realm trusted.
    const alone = await cli.run(args, { env });
    expect(alone.code).toBe(1);
    expect(alone.stderr).toMatch(/^regauth: error: GET https:\/\/127\.0\.0\.1:\d+: .*--ca-file/m);
  });

  it('refuses a --ca-file that holds no certificate, or a broken one, and names it', async () => {
    const empty = join(work, 'empty.pem');
    await writeFile(empty, 'not a certificate\n');
    const broken = join(work, 'broken.pem');
    await writeFile(broken, `${tls.caPem}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n`);
    for (const [file, why] of [
      [empty, 'it holds no PEM certificate (-----BEGIN CERTIFICATE-----)'],
      [broken, 'certificate 2 of 2 is not a valid X.509 certificate'],
    ] as const) {
      const res = await cli.run(['manifest', `${stack.registry.host}/alice/app:v1`, '--ca-file', file], {
        env,
      });
      expect(res.code).toBe(2);
      expect(res.stderr).toBe(
        `regauth: error: cannot use the CA file ${file}: ${why}; check the file given to --ca-file\n`,
      );
    }
  });

  it('says which file it could not read for a wrong --ca-file', async () => {
    const res = await cli.run(
      ['manifest', `${stack.registry.host}/alice/app:v1`, '--ca-file', join(work, 'nope.pem')],
      { env },
    );
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(
      /cannot read the CA file .*nope\.pem: .*; check the file given to --ca-file$/m,
    );
  });
});
