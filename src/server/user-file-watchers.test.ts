import { type FSWatcher, watch } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ServerLogEntry } from './server-log-entry.js';
import { UserFileWatchers, type WatchFolder } from './user-file-watchers.js';

const dirs: string[] = [];
const open: UserFileWatchers[] = [];
afterEach(async () => {
  for (const watchers of open.splice(0)) watchers.close();
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function folder(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'regauth-watch-'));
  dirs.push(dir);
  return dir;
}

/** fs.watch, but a folder in `refused` fails as a full inotify table does. */
function watchRefusing(refused: Set<string>, calls: string[]): WatchFolder {
  return (dir, listener) => {
    calls.push(dir);
    if (refused.has(dir)) {
      throw Object.assign(
        new Error(`ENOSPC: System limit for number of file watchers reached, watch '${dir}'`),
        {
          code: 'ENOSPC',
        },
      );
    }
    return watch(dir, listener) as FSWatcher;
  };
}

describe('UserFileWatchers', () => {
  it('logs a folder it cannot watch as a warning, keeps watching the others, and never throws', async () => {
    const [a, b] = [await folder(), await folder()];
    const logs: ServerLogEntry[] = [];
    const calls: string[] = [];
    let changes = 0;
    const watchers = new UserFileWatchers(
      () => changes++,
      (e) => logs.push(e),
      watchRefusing(new Set([b]), calls),
    );
    open.push(watchers);
    watchers.update([join(a, 'users.htpasswd')]);
    expect(() => watchers.update([join(a, 'users.htpasswd'), join(b, 'team.htpasswd')])).not.toThrow();
    expect(logs).toEqual([
      expect.objectContaining({
        msg: 'users file not watched',
        level: 'warn',
        file: join(b, 'team.htpasswd'),
        error: expect.stringContaining('ENOSPC'),
      }),
    ]);
    // The watcher that worked before the reload is the same one, not closed and opened again.
    expect(calls).toEqual([a, b]);
    expect(watchers.files).toEqual([join(a, 'users.htpasswd')]);
    await writeFile(join(a, 'users.htpasswd'), 'x\n');
    const deadline = Date.now() + 5000;
    while (changes === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(changes).toBe(1);
  });

  it('tries a refused folder again at the next update, and closes the watchers of files no longer named', async () => {
    const [a, b] = [await folder(), await folder()];
    const refused = new Set([b]);
    const calls: string[] = [];
    const watchers = new UserFileWatchers(
      () => {},
      () => {},
      watchRefusing(refused, calls),
    );
    open.push(watchers);
    watchers.update([join(b, 'u')]);
    expect(watchers.files).toEqual([]);
    refused.clear();
    watchers.update([join(b, 'u')]);
    expect(watchers.files).toEqual([join(b, 'u')]);
    watchers.update([join(a, 'u')]);
    expect(watchers.files).toEqual([join(a, 'u')]);
    expect(calls).toEqual([b, b, a]);
  });
});
