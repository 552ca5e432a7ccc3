import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BENCH_PASSWORD, BENCH_USER, type BenchStack, startBenchStack } from '../bench/stack.js';
import { type BuiltImage, buildOciLayout } from './harness/oci-layout.js';
import { type CliHome, createCliHome } from './harness/regauth-cli.js';

const MINIMAL_CLIENT = resolve(import.meta.dirname, '..', 'bench', 'peers', 'minimal-client.cjs');

function runMinimal(args: readonly string[]): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [MINIMAL_CLIENT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', fail);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code: code ?? -1, stdout: Buffer.concat(out), stderr: err });
    });
  });
}

const sha256 = (bytes: Buffer | string) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

describe('the minimal Node client of the bench (bench/peers/minimal-client.cjs)', () => {
  let stack: BenchStack;
  let cli: CliHome;
  let work: string;
  let image: BuiltImage;
  let tokenFile: string;
  const env = { REGAUTH_USERNAME: BENCH_USER, REGAUTH_PASSWORD: BENCH_PASSWORD };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'regauth-minimal-client-test-'));
    stack = await startBenchStack(0);
    cli = await createCliHome();
    image = await buildOciLayout(join(work, 'small'), { tag: 'v1' });
    const pushed = await cli.run(['push', join(work, 'small'), `${stack.host}/bench/small:v1`, '--quiet'], {
      env,
    });
    expect(pushed.stderr).toBe('');
    const token = await cli.run(['token', `${stack.host}/bench/small:v1`, '--no-token-cache'], { env });
    expect(token.code).toBe(0);
    tokenFile = join(work, 'token');
    await writeFile(tokenFile, token.stdout.toString().trim(), { mode: 0o600 });
  });

  afterAll(async () => {
    await Promise.all([stack?.stop(), cli?.dispose()]);
    await rm(work, { recursive: true, force: true });
  });

  it("prints the manifest regauth prints, with one request on one connection and the registry's digest", async () => {
    const viaRegauth = await cli.run(['manifest', `${stack.host}/bench/small:v1`], { env });
    expect(viaRegauth.code).toBe(0);
    stack.resetCounters();
    const r = await runMinimal(['manifest', `http://${stack.host}/v2/bench/small/manifests/v1`, tokenFile]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe(viaRegauth.stdout.toString());
    expect(sha256(r.stdout)).toBe(image.manifestDigest);
    const counts = stack.counters();
    expect(counts.requests).toBe(1);
    expect(counts.connections).toBe(1);
  });

  it('fetches blobs into files named by their digests, each checked against the digest in its URL', async () => {
    const manifest = JSON.parse(image.manifest) as {
      config: { digest: string };
      layers: { digest: string }[];
    };
    const digests = [manifest.config.digest, ...manifest.layers.map((l) => l.digest)];
    const dir = await mkdtemp(join(work, 'blobs-'));
    const r = await runMinimal([
      'blobs',
      tokenFile,
      dir,
      ...digests.map((d) => `http://${stack.host}/v2/bench/small/blobs/${d}`),
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect((await readdir(dir)).sort()).toEqual(digests.map((d) => d.slice('sha256:'.length)).sort());
    for (const d of digests) expect(sha256(await readFile(join(dir, d.slice('sha256:'.length))))).toBe(d);
  });

  it('fails on an answer other than 200, naming the path and the status', async () => {
    const r = await runMinimal(['manifest', `http://${stack.host}/v2/bench/other/manifests/v1`, tokenFile]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('minimal-client: /v2/bench/other/manifests/v1: HTTP 401\n');
    expect(r.stdout.length).toBe(0);
  });

  it('fails with one line on a token file it cannot read, or a URL that does not parse', async () => {
    const missing = join(work, 'no-such-token');
    const noToken = await runMinimal([
      'manifest',
      `http://${stack.host}/v2/bench/small/manifests/v1`,
      missing,
    ]);
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toBe(`minimal-client: ENOENT: no such file or directory, open '${missing}'\n`);
    const badUrl = await runMinimal(['manifest', 'not a url', tokenFile]);
    expect(badUrl.code).toBe(1);
    expect(badUrl.stderr).toBe('minimal-client: Invalid URL\n');
  });

  it('fails on a bad usage line, and on a blob URL that does not end in a digest', async () => {
    const usage = await runMinimal(['blobs', tokenFile]);
    expect(usage.code).toBe(1);
    expect(usage.stderr).toMatch(/^minimal-client: usage: /);
    const url = `http://${stack.host}/v2/bench/small/blobs/latest`;
    const notDigest = await runMinimal(['blobs', tokenFile, work, url]);
    expect(notDigest.code).toBe(1);
    expect(notDigest.stderr).toBe(`minimal-client: ${url}: its last part is not a sha256 digest\n`);
  });

  describe('against a server whose bytes do not match their digests', () => {
    let liar: Server;
    let origin: string;
    const body = Buffer.from('{"schemaVersion":2}');

    beforeAll(async () => {
      liar = createServer((req, res) => {
        if (req.url?.includes('/cut/')) {
          // Promises more than it sends, then hangs up: the body is cut off.
          res.writeHead(200, { 'content-length': '1000', 'docker-content-digest': sha256(body) });
          res.write(body, () => res.socket?.destroy());
          return;
        }
        // The right length, the wrong bytes: only hashing them finds out.
        if (req.url?.includes('/manifests/')) {
          res.writeHead(200, { 'docker-content-digest': sha256('something else') }).end(body);
        } else res.writeHead(200).end(body);
      });
      await new Promise<void>((ready) => liar.listen(0, '127.0.0.1', ready));
      origin = `http://127.0.0.1:${(liar.address() as AddressInfo).port}`;
    });

    afterAll(async () => {
      await new Promise((closed) => liar.close(closed));
    });

    it('fails a manifest whose digest header is not its hash, printing nothing', async () => {
      const r = await runMinimal(['manifest', `${origin}/v2/a/manifests/v1`, tokenFile]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `minimal-client: the manifest's SHA-256 is ${sha256(body)}, the registry said ${sha256('something else')}\n`,
      );
      expect(r.stdout.length).toBe(0);
    });

    it('fails a blob whose bytes are not its digest, naming the file', async () => {
      const wanted = sha256('the blob asked for');
      const dir = await mkdtemp(join(work, 'lied-'));
      const file = join(dir, wanted.slice('sha256:'.length));
      const r = await runMinimal(['blobs', tokenFile, dir, `${origin}/v2/a/blobs/${wanted}`]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`minimal-client: ${file}: its SHA-256 is ${sha256(body)}, not ${wanted}\n`);
    });

    it('fails a manifest whose body is cut off, printing nothing', async () => {
      const r = await runMinimal(['manifest', `${origin}/v2/a/cut/manifests/v1`, tokenFile]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe('minimal-client: /v2/a/cut/manifests/v1: aborted\n');
      expect(r.stdout.length).toBe(0);
    });

    it('fails a blob whose body is cut off', async () => {
      const wanted = sha256(body);
      const url = `${origin}/v2/a/cut/blobs/${wanted}`;
      const r = await runMinimal(['blobs', tokenFile, await mkdtemp(join(work, 'cut-')), url]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`minimal-client: ${url}: aborted\n`);
    });
  });
});
