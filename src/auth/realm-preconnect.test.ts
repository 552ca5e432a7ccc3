import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { loopbackServers } from '../testing/loopback-server.js';
import { createTransport } from '../transport/create-transport.js';
import type { Send } from '../transport/http-types.js';
import { createAuthClient } from './create-auth-client.js';
import type { CredentialSource } from './credentials/credential.js';

const servers = loopbackServers();
const realms: { server: Server; sockets: Set<Socket> }[] = [];
afterEach(async () => {
  await servers.closeAll();
  for (const { server, sockets } of realms.splice(0)) {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

/** A token realm on loopback that counts its connections. */
async function countingRealm() {
  const sockets = new Set<Socket>();
  const seen = { connections: 0, tokenRequests: 0 };
  const server = createServer((_req, res) => {
    seen.tokenRequests++;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ token: 'tok-realm-preconnect', expires_in: 300 }));
  });
  server.on('connection', (socket) => {
    seen.connections++;
    sockets.add(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  realms.push({ server, sockets });
  return { seen, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/token` };
}

describe('the token realm is connected to as soon as a challenge names it', () => {
  it('while the credential is looked up, and the token request uses that connection', async () => {
    const realm = await countingRealm();
    const registry = await servers.start((req, res) => {
      if (req.headers.authorization === 'Bearer tok-realm-preconnect') {
        res.end('{}');
        return;
      }
      res.statusCode = 401;
      res.setHeader(
        'www-authenticate',
        `Bearer realm="${realm.url}",service="s",scope="repository:a/b:pull"`,
      );
      res.end();
    });
    let connectedDuringLookup = false;
    const credentials: CredentialSource = {
      // Waits (bounded) for the realm to see a connection: it opens only if the client opened it ahead.
      find: async () => {
        for (let i = 0; i < 200 && realm.seen.connections === 0; i++) {
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        connectedDuringLookup = realm.seen.connections > 0;
        return { credential: { username: 'alice', password: 'pw-realm-1' }, source: 'test' };
      },
    };
    const send: Send = createTransport({ env: {}, maxRetries: 0, sleep: async () => {} });
    const client = createAuthClient({ send, credentials });
    const res = await client.send({
      method: 'GET',
      url: new URL(`${registry.origin}/v2/a/b/manifests/v1`),
      registry: registry.host,
      scopes: [{ type: 'repository', name: 'a/b', actions: ['pull'] }],
    });
    await res.dump();
    expect(res.status).toBe(200);
    expect(connectedDuringLookup).toBe(true);
    expect(realm.seen).toEqual({ connections: 1, tokenRequests: 1 });
  });
});
