import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, open, realpath, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export interface WriteFileAtomicOptions {
  /** The mode of a new file; an existing file keeps its own. Leaving it out means 0o600. */
  readonly mode?: number;
  /** The mode of directories created on the way. Leaving it out means 0o700. */
  readonly dirMode?: number;
}

/**
 * Replaces a file's content all at once: write a temporary file next to it, fsync, rename over
 * it. A crash or a full disk leaves the old file, never a half-written one — for a config file
 * that holds every login, a truncated write would lose them all. Like docker's
 * configfile.Save, a symlinked file is replaced at its target (the link stays) and the existing
 * mode and owner are kept.
 */
export async function writeFileAtomic(
  path: string,
  data: string,
  options: WriteFileAtomicOptions = {},
): Promise<void> {
  const target = await realpath(path).catch(() => path);
  const existing = await stat(target).catch(() => undefined);
  const mode = existing ? existing.mode & 0o7777 : (options.mode ?? 0o600);
  const dir = dirname(target);
  await mkdir(dir, { recursive: true, mode: options.dirMode ?? 0o700 });

  const temp = join(dir, `.${basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', mode);
  try {
    try {
      await handle.writeFile(data, 'utf8');
      // open() applied the umask; the mode we mean is the one to keep.
      await handle.chmod(mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (existing && process.getuid?.() === 0) {
      // Root editing a user's file (sudo regauth login) must not hand it to root.
      await chown(temp, existing.uid, existing.gid).catch(() => {});
      await chmod(temp, mode);
    }
    await rename(temp, target);
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw error;
  }
  await syncDir(dir);
}

/** Makes the rename itself durable; some platforms cannot open a directory, which is fine. */
async function syncDir(dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Best effort.
  }
}
