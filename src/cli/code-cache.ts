import { readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Module } from 'node:module';
import { dirname, join, sep } from 'node:path';
import { Script } from 'node:vm';
import {
  ownedPrivately,
  ownedPrivatelyUpTo,
  preparePrivateDir,
  regauthCacheDir,
} from './private-cache-dir.js';

/**
 * Without a cache the CLI's bundles are compiled from source at every start, and each function
 * again as it first runs; a V8 code cache (vm.Script `cachedData`, the mechanism behind
 * v8-compile-cache and Node's own compile cache) gives V8 that work back. One file per bundle,
 * written when a process ends with what that run compiled, functions included, in the user's
 * cache folder. Used on every Node: on Node 22 and 24 Node's own compile cache
 * (module.enableCompileCache) was measured slower for the CLI, a warm `regauth manifest` 5–8 ms
 * more from the entry point to exit. It is only a cache: anything wrong with it (missing,
 * damaged, made by another V8, a folder that cannot be written) means the bundle is compiled
 * from source as before.
 */
export interface CodeCacheOptions {
  /** Only files in this folder (the CLI's bundles) are compiled through the cache. */
  readonly bundleDir: string;
  /**
   * Where cache files go. Left out: codeCacheDir(process.env); none there: no cache. It and the
   * folders above it up to the `regauth` folder (with `cacheDir` given: its parent) must be this
   * user's alone.
   */
  readonly cacheDir?: string;
}

export interface CodeCache {
  /** Per bundle file: whether V8 took its cached code (`accepted`), found none or refused it. */
  readonly outcomes: ReadonlyMap<string, 'accepted' | 'missing' | 'rejected'>;
  /** Writes the cache of every bundle compiled without one (runs at process exit by itself). */
  flush(): void;
  /** Compiles as Node does again (for tests). */
  uninstall(): void;
}

/**
 * `$XDG_CACHE_HOME/regauth/v8/<node>-<arch>`, else under `~/.cache`; undefined with no home. The
 * name keys the folder by runtime: V8 refuses another version's data anyway (its header carries
 * a version hash), so one folder per version keeps two installed Nodes from rewriting each other's.
 */
export function codeCacheDir(
  env: Readonly<Record<string, string | undefined>> = process.env,
): string | undefined {
  return regauthCacheDir(join('v8', `${process.version}-${process.arch}`), env);
}

/** 32-bit FNV-1a: a short, stable name part for a bundle's path. */
function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

interface CompiledModule {
  exports: unknown;
  require(id: string): unknown;
}

type Compile = (this: CompiledModule, content: string, filename: string) => unknown;

/**
 * Compiles the bundles in `bundleDir` through a V8 code cache from now on. The cache file of a
 * bundle is named after its path, size, modification time and inode: a rebuilt bundle gets a new
 * file, never another build's code (V8 itself checks only the source's length).
 */
export function installCodeCache(options: CodeCacheOptions): CodeCache {
  const cacheDir = options.cacheDir ?? codeCacheDir();
  const outcomes = new Map<string, 'accepted' | 'missing' | 'rejected'>();
  if (cacheDir === undefined) return { outcomes, flush() {}, uninstall() {} };
  const bundleDir = options.bundleDir.endsWith(sep) ? options.bundleDir : `${options.bundleDir}${sep}`;
  const proto = (Module as unknown as { prototype: { _compile: Compile } }).prototype;
  const original = proto._compile;
  const pending: { script: Script; file: string; prefix: string }[] = [];
  // codeCacheDir's `regauth/v8/<runtime>`: up to the `regauth` folder.
  const top = options.cacheDir === undefined ? dirname(dirname(cacheDir)) : dirname(cacheDir);
  const dirTrusted = ownedPrivatelyUpTo(cacheDir, top);

  proto._compile = function compile(this: CompiledModule, content: string, filename: string) {
    if (!filename.startsWith(bundleDir)) return original.call(this, content, filename);
    let file: string;
    let prefix: string;
    try {
      const st = statSync(filename, { bigint: true });
      prefix = `${filename.slice(bundleDir.length).replace(/[^\w.-]/g, '_')}-${fnv1a(filename)}-`;
      file = join(cacheDir, `${prefix}${st.size}-${st.mtimeNs}-${st.ino}.bin`);
    } catch {
      return original.call(this, content, filename);
    }
    let cachedData: Buffer | undefined;
    if (dirTrusted && ownedPrivately(file)) {
      try {
        cachedData = readFileSync(file);
      } catch {
        cachedData = undefined;
      }
    }
    const script = new Script((Module as unknown as { wrap(s: string): string }).wrap(content), {
      filename,
      ...(cachedData === undefined ? {} : { cachedData }),
    });
    const outcome =
      cachedData === undefined ? 'missing' : script.cachedDataRejected ? 'rejected' : 'accepted';
    outcomes.set(filename, outcome);
    if (outcome !== 'accepted') pending.push({ script, file, prefix });
    const fn = script.runInThisContext({ displayErrors: true }) as (...args: unknown[]) => unknown;
    // The bundles use require for Node's built-ins, their dependencies and each other, and
    // nothing else of it (no require.resolve, require.main or require.cache).
    const require = (id: string) => this.require(id);
    return fn.call(this.exports, this.exports, require, this, filename, dirname(filename));
  };

  const flush = () => {
    const todo = pending.splice(0);
    if (todo.length === 0) return;
    if (!preparePrivateDir(cacheDir, top)) return;
    // Where earlier versions let Node 22+ keep its compile cache: nothing reads it any more.
    if (options.cacheDir === undefined) {
      const stale = join(top, 'node-compile-cache');
      try {
        if (ownedPrivately(stale)) rmSync(stale, { recursive: true, force: true });
      } catch {}
    }
    let names: string[] = [];
    try {
      names = readdirSync(cacheDir);
    } catch {}
    for (const { script, file, prefix } of todo) {
      const temp = `${file}.${process.pid}.tmp`;
      try {
        writeFileSync(temp, script.createCachedData(), { mode: 0o600 });
        renameSync(temp, file);
      } catch {
        try {
          rmSync(temp, { force: true });
        } catch {}
        continue;
      }
      // An earlier build's cache of the same bundle is never read again (another process's
      // temporary file, still being written, is left to it).
      for (const old of names) {
        if (old.startsWith(prefix) && old.endsWith('.bin') && join(cacheDir, old) !== file) {
          try {
            rmSync(join(cacheDir, old), { force: true });
          } catch {}
        }
      }
    }
  };
  process.once('exit', flush);

  return {
    outcomes,
    flush,
    uninstall() {
      proto._compile = original;
      process.removeListener('exit', flush);
    },
  };
}
