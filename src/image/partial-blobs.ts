import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm, rmdir, stat, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { parseDigest } from '../digest/digest.js';

/**
 * Where a layout keeps blobs still being downloaded: a hidden folder at its top, beside `blobs/`,
 * not in it. Readers list `blobs/<alg>/` as blobs: umoci's ListBlobs takes every file name there
 * for a digest (and its gc then fails on `<hex>.partial`), so temporaries stay out of it, as
 * umoci's own `.umoci-*` folders and oras-go's `ingest/` folder do. Skopeo, umoci and oras read
 * only `oci-layout`, `index.json` and `blobs/`, so they never see this folder.
 */
export const PARTIAL_DIR = '.regauth-partial';

/**
 * A claimed partial download that has not been written for this long is abandoned whoever claims
 * it: its owner may live on another host (its process cannot be checked) or its process id may
 * have been reused. A live download writes every few seconds; an hour leaves room for a slow disk
 * hashing a large partial before it resumes.
 */
export const ABANDONED_PARTIAL_MS = 60 * 60 * 1000;

/** A partial download one writer owns: no other writer appends to `path` while it is claimed. */
export interface PartialClaim {
  readonly path: string;
  /** Bytes the file held when claimed: what a resumed download starts after (0 when fresh). */
  readonly size: number;
}

/** Claims carry the host, so a process id is only checked on the host it belongs to. */
const HOST_TAG = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);
const CLAIM = /^([0-9a-f]+)\.claim-([0-9a-f]{8})-(\d+)-[0-9a-f]+$/;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it lives, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !isZombie(pid);
}

/**
 * A process that has exited but not been waited for (a zombie, proc(5) state `Z`) still answers
 * kill(pid, 0), yet will never write again. Containers whose first process does not reap
 * orphans keep such entries around; only Linux's /proc tells them apart.
 */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // `pid (comm) state …`: comm may hold spaces and parentheses, so the state follows the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return false;
  }
}

const ignore = () => {};

/**
 * The partial downloads of one OCI layout. Between runs a partial rests under a stable name per
 * digest (`.regauth-partial/<alg>/<hex>`); a writer claims it by renaming it to a name of its own
 * (`<hex>.claim-<host>-<pid>-<random>`). A rename succeeds for one process only, so two pulls into
 * one layout never append to the same file and need no lock file that could go stale. A claim
 * whose process has died (killed, or the machine restarted) is adopted the same way by the next
 * writer. Nothing here is trusted: the resume relies on the file's length only, and the whole
 * blob's digest is checked before it moves into `blobs/`.
 */
export class PartialBlobs {
  readonly dir: string;
  readonly #now: () => number;

  constructor(layoutDir: string, now: () => number = Date.now) {
    this.dir = join(layoutDir, PARTIAL_DIR);
    this.#now = now;
  }

  /** The stable name a partial download of `digest` rests under between runs. */
  restingPath(digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return join(this.dir, algorithm, hex);
  }

  #abandoned(name: string, mtimeMs: number): boolean {
    const match = CLAIM.exec(name);
    if (!match) return true;
    if (match[2] === HOST_TAG && !processAlive(Number(match[3]))) return true;
    return this.#now() - mtimeMs > ABANDONED_PARTIAL_MS;
  }

  /**
   * A file of this writer's own for `digest`. With `resume`, the resting partial (or an abandoned
   * claim) is taken over with its bytes; other abandoned claims of the digest are removed. Without
   * it, or when there is nothing to take over, the file starts empty.
   */
  async claim(digest: string, options: { readonly resume: boolean }): Promise<PartialClaim> {
    const { algorithm, hex } = parseDigest(digest);
    const folder = join(this.dir, algorithm);
    await mkdir(folder, { recursive: true });
    const mine = join(folder, `${hex}.claim-${HOST_TAG}-${process.pid}-${randomBytes(4).toString('hex')}`);
    let adopted = false;
    if (options.resume) {
      const candidates = [hex];
      for (const name of await readdir(folder)) {
        if (!name.startsWith(`${hex}.claim-`)) continue;
        const info = await stat(join(folder, name)).catch(() => undefined);
        if (info && this.#abandoned(name, info.mtimeMs)) candidates.push(name);
      }
      for (const name of candidates) {
        if (adopted) {
          // Junk: another try's bytes, while this writer has taken over one already.
          if (name !== hex) await rm(join(folder, name), { force: true });
          continue;
        }
        try {
          await rename(join(folder, name), mine);
          adopted = true;
        } catch (err) {
          // Taken over by another writer since it was listed, or never there.
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
      }
    }
    if (adopted) {
      // A fresh time marks the claim as live for ABANDONED_PARTIAL_MS, even before new bytes.
      const now = new Date(this.#now());
      await utimes(mine, now, now);
    } else {
      await (await open(mine, 'wx')).close();
    }
    return { path: mine, size: (await stat(mine)).size };
  }

  /**
   * Puts a claim back under the resting name so the next run resumes it. An empty one is removed;
   * when another writer has left a longer partial there meanwhile, that one stays. Returns the
   * resting path when bytes were kept.
   */
  async release(claim: PartialClaim, digest: string): Promise<{ path: string; size: number } | undefined> {
    const size = (await stat(claim.path).catch(() => undefined))?.size ?? 0;
    const resting = this.restingPath(digest);
    const other = (await stat(resting).catch(() => undefined))?.size ?? -1;
    if (size === 0 || other >= size) {
      await rm(claim.path, { force: true });
      return other > 0 ? { path: resting, size: other } : undefined;
    }
    await rename(claim.path, resting);
    return { path: resting, size };
  }

  /** Removes the folders of partial downloads that hold none (another writer's files stay). */
  async removeEmptyFolders(): Promise<void> {
    const algorithms = await readdir(this.dir).catch(() => [] as string[]);
    for (const algorithm of algorithms) await rmdir(join(this.dir, algorithm)).catch(ignore);
    await rmdir(this.dir).catch(ignore);
  }

  /**
   * Removes every partial download no live writer holds, then the folder itself when it is empty:
   * after a successful pull the layout holds no partial files.
   */
  async sweep(): Promise<void> {
    let algorithms: string[];
    try {
      algorithms = await readdir(this.dir);
    } catch {
      return;
    }
    for (const algorithm of algorithms) {
      const folder = join(this.dir, algorithm);
      const names = await readdir(folder).catch(() => [] as string[]);
      for (const name of names) {
        const info = await stat(join(folder, name)).catch(() => undefined);
        if (info && this.#abandoned(name, info.mtimeMs)) await rm(join(folder, name), { force: true });
      }
      await rmdir(folder).catch(ignore);
    }
    await rmdir(this.dir).catch(ignore);
  }
}
