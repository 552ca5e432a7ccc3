import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { limitConnections } from './connection-limits.js';

let server: Server | undefined;
const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

async function listen(options: Parameters<typeof limitConnections>[1]) {
  server = createServer(() => {});
  const open = limitConnections(server, options);
  await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { port, open };
}

/** Opens `count` connections from `from`; resolves to how many the server left open after a moment. */
async function holdOpen(port: number, from: string, count: number): Promise<number> {
  const states = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<boolean>((resolve) => {
          const socket = connect({ host: '127.0.0.1', port, localAddress: from });
          sockets.push(socket);
          socket.on('error', () => {});
          socket.once('close', () => resolve(false));
          socket.once('connect', () => setTimeout(() => resolve(!socket.destroyed), 200));
        }),
    ),
  );
  return states.filter(Boolean).length;
}

describe('limitConnections', () => {
  it('closes connections past the per-address cap at once, and counts those it keeps', async () => {
    const { port, open } = await listen({ maxConnections: 100, perAddress: 2, exempt: () => false });
    expect(await holdOpen(port, '127.0.0.1', 5)).toBe(2);
    expect(await holdOpen(port, '127.0.0.2', 1)).toBe(1);
    expect(open()).toBe(3);
  });

  it('does not cap a trusted proxy, which carries many clients', async () => {
    const { port, open } = await listen({
      maxConnections: 100,
      perAddress: 1,
      exempt: (a) => a === '127.0.0.9',
    });
    expect(await holdOpen(port, '127.0.0.9', 4)).toBe(4);
    expect(open()).toBe(4);
  });

  it('keeps no more connections than its total cap', async () => {
    const { port } = await listen({ maxConnections: 3, perAddress: 10, exempt: () => false });
    expect(await holdOpen(port, '127.0.0.1', 6)).toBe(3);
  });
});
