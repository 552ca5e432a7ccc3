// One "CI worker" of test/redis-token-store.e2e.test.ts, in a process of its own: reads a
// manifest through createRegistry with a RedisTokenStore and prints one JSON line saying what it
// got, how many token requests it made, and which store calls failed (with their messages).
// Usage: tsx redis-token-worker.ts <redis url> <prefix> <image reference>; REGISTRY_USER and
// REGISTRY_PASSWORD in the environment.
import { Redis } from 'ioredis';
import { createRegistry, RedisTokenStore, type TraceEvent } from '../../src/index.js';

const [url, prefix, reference] = process.argv.slice(2);
if (url === undefined || prefix === undefined || reference === undefined) {
  throw new Error('usage: redis-token-worker.ts <redis url> <prefix> <image reference>');
}
const client = new Redis(url, { maxRetriesPerRequest: 1 });
client.on('error', () => {});
let tokenRequests = 0;
const storeErrors: { operation: string; message: string }[] = [];
const registry = createRegistry({
  credentials: { username: process.env.REGISTRY_USER ?? '', password: process.env.REGISTRY_PASSWORD ?? '' },
  env: {},
  store: new RedisTokenStore({ client, prefix }),
  onStoreError: (error, operation) => storeErrors.push({ operation, message: String(error) }),
  trace: (event: TraceEvent) => {
    if (event.kind === 'request' && new URL(event.url).pathname === '/token') tokenRequests++;
  },
});
try {
  const digest = await registry.digest(reference);
  process.stdout.write(`${JSON.stringify({ digest, tokenRequests, storeErrors })}\n`);
} finally {
  client.disconnect();
}
