import { RegauthError, type RegauthErrorHint } from './regauth-error.js';

/**
 * What an errno from the file system means to a person, and what to do about it. The codes are
 * POSIX's (errno.h); Node reports them as `err.code` with the `syscall` that failed.
 */
const MEANINGS: Readonly<
  Record<string, { readonly what: string; readonly advice: string; readonly hint?: RegauthErrorHint }>
> = {
  ENOENT: { what: 'no such file or folder', advice: 'check the path; the folder it is in must exist' },
  ENOTDIR: {
    what: 'a part of the path is a file, not a folder',
    advice: 'give a path whose folders are folders',
  },
  EISDIR: { what: 'it is a folder, not a file', advice: 'give the path of a file' },
  EACCES: {
    what: 'permission denied',
    advice: 'choose a place this user may use, or change its permissions',
  },
  EPERM: {
    what: 'operation not permitted',
    advice: 'choose a place this user may use, or change its permissions',
  },
  EROFS: { what: 'the file system is read-only', advice: 'choose a place on a writable file system' },
  ENOSPC: { what: 'no space left on the device', advice: 'free some space and run the command again' },
  EDQUOT: { what: 'the disk quota is used up', advice: 'free some space and run the command again' },
  EEXIST: { what: 'it exists already', advice: 'remove it or choose another path' },
  ENAMETOOLONG: { what: 'the path is too long', advice: 'choose a shorter path' },
  ELOOP: { what: 'too many symbolic links', advice: 'check the symbolic links along the path' },
  // Parallel transfers each hold files open: the caller's setting for them is its own to name.
  EMFILE: { what: 'too many open files', advice: 'raise the limit (ulimit -n)', hint: { kind: 'jobs' } },
  ENFILE: {
    what: 'too many open files on the system',
    advice: 'close other programs',
    hint: { kind: 'jobs' },
  },
  EBUSY: { what: 'it is busy', advice: 'wait for whatever holds it, then run the command again' },
  EIO: { what: 'an input/output error', advice: 'check the disk' },
};

function errnoCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { code, syscall } = err as { code?: unknown; syscall?: unknown };
  // Only a file-system call's failure: a socket's ECONNRESET also has a code and a syscall.
  return typeof code === 'string' && typeof syscall === 'string' && code in MEANINGS ? code : undefined;
}

/**
 * Turns a file-system failure into a RegauthError (`ERR_FILE_SYSTEM`) that names the path, what
 * regauth was doing (`action`, such as "write the docker archive") and what to do. Anything else
 * (a RegauthError, a network failure) is returned unchanged, so a catch can pass every error
 * through it.
 */
export function fileSystemError(err: unknown, action: string, path: string): unknown {
  const code = errnoCode(err);
  if (code === undefined) return err;
  const meaning = MEANINGS[code] as (typeof MEANINGS)[string] & {};
  return new RegauthError(
    'ERR_FILE_SYSTEM',
    `cannot ${action} ${path}: ${meaning.what} (${code}); ${meaning.advice}`,
    { cause: err, ...(meaning.hint === undefined ? {} : { hint: meaning.hint }) },
  );
}

/** Runs `work`; a file-system failure becomes {@link fileSystemError}'s error. */
export async function withFileSystemErrors<T>(
  action: string,
  path: string,
  work: () => Promise<T>,
): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw fileSystemError(err, action, path);
  }
}
