import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { stringify } from 'yaml';
import { parseServerConfig } from './server-config.js';
import { htpasswdLine, testServerFiles } from './testing/fixtures.js';
import { createTokenServer, type ServerLogEntry, type TokenServer } from './token-server.js';

// A folder that cannot be watched, as when the inotify watches are used up (ENOSPC) or the
// folder may be read but not watched: no reliable way to get there on a test machine as root.
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const watch = (folder: string, ...rest: unknown[]) => {
    if (folder.endsWith('unwatchable')) {
      throw Object.assign(
        new Error(`ENOSPC: System limit for number of file watchers reached, watch '${folder}'`),
        {
          code: 'ENOSPC',
        },
      );
    }
    return (fs.watch as (...args: unknown[]) => unknown)(folder, ...rest);
  };
  return { ...fs, watch, default: { ...fs, watch } };
});

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

let running: { server: TokenServer; dir: string } | undefined;
afterEach(async () => {
  if (running) {
    await running.server.close();
    await rm(running.dir, { recursive: true, force: true });
    running = undefined;
  }
});

describe('createTokenServer reload with an htpasswd folder it cannot watch', () => {
  it('still applies the reload, keeps watching what it watched, and warns', async () => {
    const files = await testServerFiles({ alice: 'alice-pw' });
    const configFile = join(files.dir, 'serve.yml');
    await writeFile(configFile, stringify(files.raw));
    const logs: ServerLogEntry[] = [];
    const server = await createTokenServer(parseServerConfig(files.raw, configFile), {
      log: (e) => logs.push(e),
      watchUsers: true,
    });
    running = { server, dir: files.dir };
    const url = await server.listen();
    const team = join(files.dir, 'unwatchable', 'team.htpasswd');
    await mkdir(join(files.dir, 'unwatchable'));
    await writeFile(team, `${htpasswdLine('bob', 'bob-pw')}\n`);
    await writeFile(
      configFile,
      stringify({
        ...files.raw,
        users: {},
        authn: [{ htpasswd: { file: 'users.htpasswd' } }, { htpasswd: { file: team } }],
      }),
    );
    await expect(server.reload()).resolves.toBeUndefined();
    expect(logs).toContainEqual(
      expect.objectContaining({ msg: 'users file not watched', level: 'warn', file: team }),
    );
    expect(logs).toContainEqual(expect.objectContaining({ msg: 'config reloaded' }));
    const status = (user: string, password: string) =>
      fetch(`${url}/token?scope=repository:${user}/app:pull`, {
        headers: { authorization: basic(user, password) },
      }).then((r) => r.status);
    expect(await status('bob', 'bob-pw')).toBe(200);
    // The first file's watcher survived the reload: a user added to it arrives by itself.
    await writeFile(
      files.htpasswd,
      `${htpasswdLine('alice', 'alice-pw')}\n${htpasswdLine('carol', 'carol-pw')}\n`,
    );
    const deadline = Date.now() + 10_000;
    while (!logs.some((e) => e.msg === 'users reloaded') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await status('carol', 'carol-pw')).toBe(200);
  });
});
