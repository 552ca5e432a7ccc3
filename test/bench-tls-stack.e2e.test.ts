import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BENCH_PASSWORD, BENCH_USER } from '../bench/stack.js';
import { remoteLookingLoopbackName, startTlsBenchStack, type TlsBenchStack } from '../bench/tls-stack.js';
import { buildOciLayout } from './harness/oci-layout.js';
import { type CliHome, createCliHome } from './harness/regauth-cli.js';
import { createSkopeo, type Skopeo } from './harness/skopeo.js';

describe('startTlsBenchStack (bench scenario 11)', () => {
  let stack: TlsBenchStack;
  let cli: CliHome;
  let skopeo: Skopeo;
  let work: string;
  let ref: string;
  /** Whether the registry is named 127.0.0.1: regauth then pings it first (see tls-stack.ts). */
  let byAddress: boolean;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'regauth-bench-tls-test-'));
    const name = await remoteLookingLoopbackName();
    byAddress = name === undefined;
    stack = await startTlsBenchStack(
      1,
      name === undefined ? { registry: '127.0.0.1', realm: 'localhost' } : { registry: name, realm: name },
    );
    cli = await createCliHome();
    skopeo = await createSkopeo();
    ref = `${stack.host}/bench/small:v1`;
    await buildOciLayout(join(work, 'small'), { tag: 'v1' });
    const env = { REGAUTH_USERNAME: BENCH_USER, REGAUTH_PASSWORD: BENCH_PASSWORD };
    const pushed = await cli.run(['push', join(work, 'small'), ref, '--quiet', '--ca-file', stack.caFile], {
      env,
    });
    expect(pushed.stderr).toBe('');
  });

  afterAll(async () => {
    await Promise.all([stack?.stop(), cli?.dispose(), skopeo?.dispose()]);
    await rm(work, { recursive: true, force: true });
  });

  it('serves the realm on another origin than the registry, both over TLS', () => {
    expect(stack.realm).toMatch(/^https:\/\//);
    expect(new URL(stack.realm).port).not.toBe(new URL(`https://${stack.host}`).port);
  });

  it("counts a cached regauth manifest as one request on one connection, the servers' count", async () => {
    const env = { REGAUTH_USERNAME: BENCH_USER, REGAUTH_PASSWORD: BENCH_PASSWORD };
    await stack.resetCounters();
    const first = await cli.run(['manifest', ref, '--ca-file', stack.caFile], { env });
    expect(first.code).toBe(0);
    const firstCounts = await stack.counters();
    // The push above cached a token, so nothing new is asked for, or the ping-challenge-token
    // flow ran: either way the manifest GET is counted by the registry and each origin is one TLS
    // connection at most.
    expect(firstCounts.requests).toBeGreaterThanOrEqual(1);
    expect(firstCounts.connections).toBeLessThanOrEqual(2);
    await stack.resetCounters();
    const warm = await cli.run(['manifest', ref, '--ca-file', stack.caFile], { env });
    expect(JSON.parse(warm.stdout.toString()).schemaVersion).toBe(2);
    const counts = await stack.counters();
    expect(counts.connections).toBe(1);
    expect(counts.requests).toBe(byAddress ? 2 : 1);
    expect(counts.bytesUp).toBeGreaterThan(0);
  });

  it("counts skopeo's token request at the realm as well as its registry requests", async () => {
    await stack.resetCounters();
    const res = await skopeo.run([
      'inspect',
      '--raw',
      '--cert-dir',
      stack.certDir,
      '--creds',
      `${BENCH_USER}:${BENCH_PASSWORD}`,
      `docker://${ref}`,
    ]);
    expect(res.stderr).toBe('');
    const counts = await stack.counters();
    // The ping (401), the token at the realm, the manifest; a connection to each origin at least.
    expect(counts.requests).toBe(3);
    expect(counts.connections).toBeGreaterThanOrEqual(2);
  });
});
