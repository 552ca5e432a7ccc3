import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loopbackServers } from '../src/testing/loopback-server.js';
import { type CliHome, createCliHome } from './harness/regauth-cli.js';

const servers = loopbackServers();
afterEach(() => servers.closeAll());

const MANIFEST = JSON.stringify({
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: {
    mediaType: 'application/vnd.oci.image.config.v1+json',
    digest: `sha256:${'a'.repeat(64)}`,
    size: 2,
  },
  layers: [],
});

/** Docker Hub's answer once the anonymous pull quota is spent (https://docs.docker.com/docker-hub/usage/pulls/). */
const TOO_MANY =
  '{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your unauthenticated pull rate limit. https://www.docker.com/increase-rate-limit"}]}';

describe("Docker Hub's pull quota and short rate limits", () => {
  let cli: CliHome;
  beforeAll(async () => {
    cli = await createCliHome();
  });
  afterAll(() => cli?.dispose());

  it('fails at once on a spent quota (ratelimit-remaining: 0, no Retry-After), naming the limit and when it ends', async () => {
    const registry = await servers.start((_req, res) => {
      res.writeHead(429, {
        'content-type': 'application/json',
        'ratelimit-limit': '100;w=21600',
        'ratelimit-remaining': '0;w=21600',
        'docker-ratelimit-source': '203.0.113.7',
      });
      res.end(TOO_MANY);
    });
    const before = Date.now();
    const res = await cli.run(['manifest', `${registry.host}/library/alpine:3.20`]);
    expect(res.code).toBe(1);
    expect(registry.requests.map((r) => `${r.method} ${r.target}`)).toEqual([
      'GET /v2/library/alpine/manifests/3.20',
    ]);
    expect(res.stderr).toMatch(/429 TOOMANYREQUESTS/);
    expect(res.stderr).toMatch(
      /quota of 100 pulls per 6 h is used up: it frees up within 6 h, by (\d{4}-\d\d-\d\d \d\d:\d\d) UTC/,
    );
    const by = /by (\d{4}-\d\d-\d\d \d\d:\d\d) UTC/.exec(res.stderr)?.[1] ?? '';
    const end = Date.parse(`${by.replace(' ', 'T')}:00Z`);
    // Six hours from now, to the minute it was printed with.
    expect(end).toBeGreaterThanOrEqual(before + 21600_000 - 60_000);
    expect(end).toBeLessThanOrEqual(Date.now() + 21600_000);
    expect(res.stderr.split('\n').filter((l) => l !== '')).toHaveLength(1);
  });

  it('still waits out a 429 with a short Retry-After and succeeds', async () => {
    let calls = 0;
    const registry = await servers.start((_req, res) => {
      calls++;
      if (calls === 1) {
        res.writeHead(429, {
          'content-type': 'application/json',
          'retry-after': '1',
          'ratelimit-limit': '100;w=21600',
          'ratelimit-remaining': '0;w=21600',
        });
        res.end(TOO_MANY);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
      res.end(MANIFEST);
    });
    const res = await cli.run(['manifest', `${registry.host}/library/alpine:3.20`]);
    expect(res.stderr).toBe('');
    expect(res.stdout.toString()).toBe(MANIFEST);
    expect(registry.requests).toHaveLength(2);
  });
});
