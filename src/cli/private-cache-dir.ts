import { mkdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, sep } from 'node:path';

/**
 * `$XDG_CACHE_HOME/regauth/<name>`, else `~/.cache/regauth/<name>`; undefined when there is no
 * home to put it in (HOME unset and a user the passwd database does not know: os.homedir throws).
 */
export function regauthCacheDir(
  name: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): string | undefined {
  let base = env.XDG_CACHE_HOME || (env.HOME ? join(env.HOME, '.cache') : undefined);
  if (base === undefined) {
    try {
      base = join(homedir(), '.cache');
    } catch {
      return undefined;
    }
  }
  return join(base, 'regauth', name);
}

/**
 * Whether `path` is this user's and nobody else can write it. Compiled code read from a cache
 * runs as this user, so a cache is only read from, or written to, such a folder (what
 * FileTokenStore asks of the token cache). Windows keeps no POSIX owner and mode: not checked.
 */
export function ownedPrivately(path: string): boolean {
  try {
    const st = statSync(path);
    if (typeof process.getuid !== 'function') return true;
    return st.uid === process.getuid() && (st.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

/** The nearest folder at or above `path` that exists. */
function nearestExisting(path: string): string | undefined {
  for (let dir = path; ; dir = dirname(dir)) {
    try {
      statSync(dir);
      return dir;
    } catch {
      if (dirname(dir) === dir) return undefined;
    }
  }
}

/**
 * Whether `dir` and every folder above it up to `top` (included) are this user's and writable by
 * nobody else: whoever can write a folder can swap what is below it for something of their own.
 * False when `top` is not `dir` or a folder above it.
 */
export function ownedPrivatelyUpTo(dir: string, top: string): boolean {
  for (let d = dir; ; d = dirname(d)) {
    if (!ownedPrivately(d)) return false;
    if (d === top) return true;
    if (dirname(d) === d) return false;
  }
}

/**
 * Makes `dir` (mode 0700) when it is missing and says whether it can hold a code cache: it and
 * every folder above it up to `top` (the `regauth` folder; left out, `dir`'s parent) are this
 * user's, writable by nobody else, so that nobody can swap any of them for a folder of their own.
 * A folder is made only below one this user owns: run as root with a user's HOME (`sudo -E`), it
 * makes nothing there, or the user would find folders of root's in their own cache and could no
 * longer write to it. Any failure means "no cache".
 */
export function preparePrivateDir(dir: string, top: string = dirname(dir)): boolean {
  if (ownedPrivately(dir)) return ownedPrivatelyUpTo(dir, top);
  const existing = nearestExisting(dir);
  if (existing === undefined || existing === dir) return false;
  // A folder of the chain that is there but not this user's alone gets nothing made in it.
  const inChain = existing === top || existing.startsWith(`${top}${sep}`);
  if (inChain && !ownedPrivatelyUpTo(existing, top)) return false;
  try {
    if (typeof process.getuid === 'function' && statSync(existing).uid !== process.getuid()) return false;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch {
    return false;
  }
  return ownedPrivatelyUpTo(dir, top);
}
