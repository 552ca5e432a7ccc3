import { afterEach, describe, expect, it } from 'vitest';
import { loopbackServers } from '../testing/loopback-server.js';
import { createTransport } from './create-transport.js';

const servers = loopbackServers();
afterEach(() => servers.closeAll());

async function statuses(headers: Record<string, string>): Promise<{ status: number; requests: number }> {
  const server = await servers.start((_req, res) => {
    res.writeHead(429, headers);
    res.end();
  });
  const send = createTransport({ env: {}, maxRetries: 3, sleep: async () => {} });
  const res = await send({ method: 'GET', url: server.url('/v2/') });
  await res.dump();
  return { status: res.status, requests: server.requests.length };
}

describe('isQuotaExhausted, as the transport applies it', () => {
  it("does not retry Docker Hub's spent pull quota (ratelimit-remaining: 0;w=21600, no Retry-After)", async () => {
    expect(await statuses({ 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '0;w=21600' })).toEqual({
      status: 429,
      requests: 1,
    });
  });

  it('retries a 429 with quota left, or with a Retry-After, or without rate-limit headers', async () => {
    expect((await statuses({ 'ratelimit-remaining': '3;w=21600' })).requests).toBe(4);
    expect((await statuses({ 'ratelimit-remaining': '0;w=21600', 'retry-after': '0' })).requests).toBe(4);
    expect((await statuses({})).requests).toBe(4);
  });
});
