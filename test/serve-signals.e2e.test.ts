import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { mkdtemp, open, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { freePort, type Spawned, spawnLogged } from './harness/processes.js';
import { htpasswdLine, REGAUTH_BIN } from './harness/token-server.js';

const run = promisify(execFile);
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/**
 * Holds the first read of `fifo` (a named pipe) until the test has seen it begin, then serves
 * `secret` and puts a regular file with the same text in the pipe's place, so every later read
 * finds it at once. `opened` resolves when the first read began: the process is inside its
 * start-up then, and stays there until this read is served.
 */
function holdFirstRead(fifo: string, secret: string) {
  let firstOpened: () => void = () => {};
  const opened = new Promise<void>((resolve) => {
    firstOpened = resolve;
  });
  let ended = false;
  const done = (async () => {
    const handle = await open(fifo, 'w');
    firstOpened();
    try {
      if (ended) return;
      await handle.write(secret);
      await writeFile(`${fifo}.file`, secret);
      await rename(`${fifo}.file`, fifo);
    } finally {
      await handle.close();
    }
  })();
  return {
    opened,
    /** Releases a writer still waiting for a reader (a reader of our own), then waits for it. */
    end: async () => {
      ended = true;
      const reader = await open(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
      await done.catch(() => {});
      await reader.close();
    },
  };
}

/** A `regauth serve` whose start-up waits on a FIFO (the metrics bearer token file). */
async function startHeld(): Promise<{
  spawned: Spawned;
  url: string;
  feeder: ReturnType<typeof holdFirstRead>;
}> {
  const dir = await mkdtemp(join(tmpdir(), 'regauth-signals-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  await run(REGAUTH_BIN, ['keygen', '--key', join(dir, 'key.pem'), '--cert', join(dir, 'cert.pem')]);
  await writeFile(join(dir, 'users.htpasswd'), `${htpasswdLine('alice', 'alice-pw')}\n`);
  await run('mkfifo', [join(dir, 'metrics.token')]);
  const port = await freePort();
  await writeFile(
    join(dir, 'serve.yml'),
    stringify({
      listen: `127.0.0.1:${port}`,
      token: { issuer: 'signals', service: 'signals', key: 'key.pem', certificate: 'cert.pem' },
      users: { htpasswd: 'users.htpasswd' },
      metrics: { enabled: true, bearer_token_file: 'metrics.token' },
      acl: [{ match: { account: 'alice' }, actions: ['pull'] }],
    }),
  );
  const feeder = holdFirstRead(join(dir, 'metrics.token'), 'metrics-secret-0123456789\n');
  const spawned = spawnLogged(REGAUTH_BIN, ['serve', '--config', join(dir, 'serve.yml')]);
  cleanups.push(async () => {
    await spawned.stop();
    await feeder.end();
  });
  return { spawned, url: `http://127.0.0.1:${port}`, feeder };
}

const exited = (spawned: Spawned) =>
  new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    const { child } = spawned;
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode });
    } else child.once('exit', (code, signal) => resolve({ code, signal }));
  });

async function waitForOutput(spawned: Spawned, text: string, timeoutMs = 20_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (spawned.output().includes(text)) return true;
    if (spawned.child.exitCode !== null || spawned.child.signalCode !== null) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

describe('regauth serve and signals during its start-up', () => {
  it('a SIGHUP before it listens is not fatal: it comes up, serves, then reloads', async () => {
    const { spawned, url, feeder } = await startHeld();
    await feeder.opened;
    expect(spawned.output()).not.toContain('"msg":"listening"');
    spawned.child.kill('SIGHUP');
    expect(await waitForOutput(spawned, '"msg":"config reloaded"'), spawned.output()).toBe(true);
    const lines = spawned.output().split('\n');
    const listeningAt = lines.findIndex((l) => l.includes('"msg":"listening"'));
    const reloadedAt = lines.findIndex((l) => l.includes('"msg":"config reloaded"'));
    expect(listeningAt).toBeGreaterThanOrEqual(0);
    expect(reloadedAt).toBeGreaterThan(listeningAt);
    const res = await fetch(`${url}/token?service=signals&scope=repository:alice/app:pull`, {
      headers: { authorization: `Basic ${Buffer.from('alice:alice-pw').toString('base64')}` },
    });
    expect(res.status).toBe(200);
    expect(spawned.child.exitCode).toBeNull();
    expect(spawned.output()).not.toContain('metrics-secret');
  });

  it('a SIGTERM during start-up ends it cleanly, without listening', async () => {
    const { spawned, feeder } = await startHeld();
    await feeder.opened;
    spawned.child.kill('SIGTERM');
    const end = await Promise.race([
      exited(spawned),
      new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000)),
    ]);
    expect(end, spawned.output()).toEqual({ code: 0, signal: null });
    expect(spawned.output()).not.toContain('"msg":"listening"');
  });
});
