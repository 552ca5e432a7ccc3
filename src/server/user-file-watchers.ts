import { type FSWatcher, watch as fsWatch } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { TokenServerConfig } from './server-config.js';
import type { ServerLogEntry } from './server-log-entry.js';

/** Editors and `htpasswd` write a file in several steps: reload once they are done. */
export const USERS_RELOAD_DEBOUNCE_MS = 200;

/** The htpasswd files a config reads users from: `users.htpasswd`, or each htpasswd entry of `authn:`. */
export function htpasswdFiles(config: TokenServerConfig): string[] {
  if (config.authn === undefined) return config.users.htpasswd === undefined ? [] : [config.users.htpasswd];
  return config.authn.flatMap((entry) => ('htpasswd' in entry ? [entry.htpasswd.file] : []));
}

/** node:fs `watch` as these watchers call it. */
export type WatchFolder = (
  folder: string,
  listener: (event: string, name: string | null) => void,
) => FSWatcher;

const watchFolder: WatchFolder = (folder, listener) => fsWatch(folder, listener);

/**
 * Watches the htpasswd files' folders and calls `onChange` once a file has settled. Watching is a
 * convenience (SIGHUP reads the files too), so it never fails: a folder that cannot be watched
 * (EACCES, ENOSPC when the inotify watches are used up, a folder just removed) is a warning.
 * `update` keeps the watcher of a file that stays and opens new ones before closing the old,
 * so a config reload cannot lose the watchers it had over a watch that fails.
 */
export class UserFileWatchers {
  readonly #watchers = new Map<string, FSWatcher>();
  readonly #onChange: () => void;
  readonly #log: (entry: ServerLogEntry) => void;
  readonly #watch: WatchFolder;
  #timer: NodeJS.Timeout | undefined;

  constructor(onChange: () => void, log: (entry: ServerLogEntry) => void, watch: WatchFolder = watchFolder) {
    this.#onChange = onChange;
    this.#log = log;
    this.#watch = watch;
  }

  /** Watches exactly `files` from now on. */
  update(files: readonly string[]): void {
    const wanted = new Set(files);
    for (const file of wanted) {
      if (this.#watchers.has(file)) continue;
      try {
        // The folder, not the file: tools replace the file by renaming a new one over it.
        const watcher = this.#watch(dirname(file), (_event, name) => {
          if (name !== null && name !== basename(file)) return;
          clearTimeout(this.#timer);
          this.#timer = setTimeout(this.#onChange, USERS_RELOAD_DEBOUNCE_MS);
        });
        // A folder removed later makes the watcher emit 'error': without a listener that would end the process.
        watcher.on('error', (err: Error) => this.#failed(file, err));
        watcher.unref();
        this.#watchers.set(file, watcher);
      } catch (err) {
        this.#failed(file, err as Error);
      }
    }
    for (const [file, watcher] of this.#watchers) {
      if (wanted.has(file)) continue;
      watcher.close();
      this.#watchers.delete(file);
    }
  }

  #failed(file: string, err: Error): void {
    this.#watchers.get(file)?.close();
    this.#watchers.delete(file);
    this.#log({
      msg: 'users file not watched',
      level: 'warn',
      file,
      error: err?.message ?? String(err),
      hint: 'changes to this file are read on SIGHUP (or at the next reload that can watch its folder); for ENOSPC raise fs.inotify.max_user_watches',
    });
  }

  /** Files watched now. */
  get files(): readonly string[] {
    return [...this.#watchers.keys()];
  }

  close(): void {
    for (const watcher of this.#watchers.values()) watcher.close();
    this.#watchers.clear();
    clearTimeout(this.#timer);
  }
}
