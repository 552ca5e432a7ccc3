import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createMetricsEndpoint } from './metrics-endpoint.js';
import { createTokenMetrics } from './token-metrics.js';

const TOKEN = '0123456789abcdef0123456789abcdef';
let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

async function mount(bearerToken?: string): Promise<number> {
  const handle = createMetricsEndpoint({
    metrics: await createTokenMetrics(),
    path: '/metrics',
    ...(bearerToken === undefined ? {} : { bearerToken }),
  });
  server = createServer((req, res) => {
    if (handle(req, res)) return;
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** A raw request, so headers reach the server exactly as written. */
function status(
  port: number,
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('createMetricsEndpoint', () => {
  it('answers only the exact token, whatever else a client sends', async () => {
    const port = await mount(TOKEN);
    expect(await status(port, '/metrics', { authorization: `Bearer ${TOKEN}` })).toBe(200);
    expect(await status(port, '/metrics?x=1', { authorization: `bearer ${TOKEN}` })).toBe(200);
    for (const authorization of [
      '',
      'Bearer',
      `Bearer ${TOKEN.slice(0, -1)}`,
      `Bearer ${TOKEN}0`,
      `Bearer ${TOKEN} ${TOKEN}`,
      `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`,
      `Bearer ${TOKEN.toUpperCase()}`,
      `Bearer ${'a'.repeat(8000)}`,
    ]) {
      expect(await status(port, '/metrics', { authorization }), authorization.slice(0, 40)).toBe(401);
    }
    expect(await status(port, '/metrics', { authorization: `Bearer ${TOKEN}` }, 'POST')).toBe(405);
    expect(await status(port, '/metrics/', { authorization: `Bearer ${TOKEN}` })).toBe(404);
    expect(await status(port, '/METRICS', { authorization: `Bearer ${TOKEN}` })).toBe(404);
  });

  it('refuses a bearer token too short to protect anything', async () => {
    const metrics = await createTokenMetrics();
    expect(() => createMetricsEndpoint({ metrics, path: '/metrics', bearerToken: 'secret' })).toThrow(
      /at least 16 random ones/,
    );
  });

  it('counts only token log entries, with closed label values', async () => {
    const metrics = await createTokenMetrics();
    const entry = {
      msg: 'token',
      method: 'GET',
      grantType: 'basic',
      account: 'mallory"} 1\nregauth_evil 9',
      address: '10.0.0.1',
      requested: ['repository:a:pull', 'repository:b:pull'],
      granted: ['repository:a:pull'],
      outcome: 'issued',
      status: 200,
      reason: 'x"\n',
    } as const;
    metrics.observe(entry);
    metrics.observe({ msg: 'listening', url: 'http://x' });
    const { body } = await metrics.scrape();
    expect(body).toContain('regauth_token_grants_total{result="partial"} 1');
    expect(body).toContain('regauth_token_requests_total{outcome="issued"} 1');
    expect(body).not.toContain('mallory');
    expect(body).not.toContain('regauth_evil');
    expect(body).not.toContain('10.0.0.1');
  });
});
