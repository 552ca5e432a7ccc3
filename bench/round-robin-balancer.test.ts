import { createServer, get, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type RoundRobinBalancer, startRoundRobinBalancer } from './round-robin-balancer.js';

const servers: Server[] = [];
let balancer: RoundRobinBalancer | undefined;
afterEach(async () => {
  await balancer?.close();
  balancer = undefined;
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A backend that answers its own name. */
async function backend(name: string): Promise<{ host: string; port: number }> {
  const server = createServer((_req, res) => res.end(name));
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { host: '127.0.0.1', port: (server.address() as AddressInfo).port };
}

/** One request on a connection of its own. */
function ask(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c.toString();
      });
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

describe('startRoundRobinBalancer', () => {
  it('hands each new connection to the next backend in turn', async () => {
    balancer = await startRoundRobinBalancer([await backend('a'), await backend('b'), await backend('c')]);
    const answers: string[] = [];
    for (let i = 0; i < 6; i++) answers.push(await ask(balancer.port));
    expect(answers).toEqual(['a', 'b', 'c', 'a', 'b', 'c']);
    expect(balancer.connectionsPerBackend()).toEqual([2, 2, 2]);
  });

  it('skips a backend that refuses the connection, and one marked down', async () => {
    const dead = await backend('dead');
    await new Promise((r) => (servers.pop() as Server).close(r));
    balancer = await startRoundRobinBalancer([await backend('a'), dead, await backend('c')]);
    const answers: string[] = [];
    for (let i = 0; i < 4; i++) answers.push(await ask(balancer.port));
    expect(answers).toEqual(['a', 'c', 'a', 'c']);
    balancer.setDown(0, true);
    expect([await ask(balancer.port), await ask(balancer.port)]).toEqual(['c', 'c']);
    expect(balancer.connectionsPerBackend()).toEqual([2, 0, 4]);
  });

  it('refuses a backend that is not on loopback', async () => {
    await expect(startRoundRobinBalancer([{ host: '192.0.2.1', port: 80 }])).rejects.toThrow(
      /not a loopback/,
    );
    await expect(startRoundRobinBalancer([])).rejects.toThrow(/at least one backend/);
  });
});
