import { describe, expect, it } from 'vitest';
import { fileSystemError, withFileSystemErrors } from './file-system-error.js';
import { isRegauthError, RegauthError } from './regauth-error.js';

/** An error shaped as Node's fs calls throw them. */
const errno = (code: string, syscall = 'open', path = '/ro/image.tar.partial') =>
  Object.assign(new Error(`${code}: failed, ${syscall} '${path}'`), { code, syscall, path });

describe('fileSystemError', () => {
  it('names the path, the action, the cause and what to do for EACCES', () => {
    const err = fileSystemError(errno('EACCES'), 'write the docker archive', '/ro/image.tar');
    expect(isRegauthError(err, 'ERR_FILE_SYSTEM')).toBe(true);
    expect((err as RegauthError).message).toBe(
      'cannot write the docker archive /ro/image.tar: permission denied (EACCES); ' +
        'choose a place this user may use, or change its permissions',
    );
    expect((err as RegauthError).cause).toBeInstanceOf(Error);
  });

  it.each([
    ['ENOSPC', /no space left on the device \(ENOSPC\); free some space/],
    ['EROFS', /read-only \(EROFS\)/],
    ['ENOTDIR', /a part of the path is a file, not a folder \(ENOTDIR\)/],
    ['EISDIR', /it is a folder, not a file \(EISDIR\)/],
    ['ENOENT', /no such file or folder \(ENOENT\)/],
  ])('explains %s', (code, message) => {
    expect((fileSystemError(errno(code), 'write', '/x') as Error).message).toMatch(message);
  });

  it('passes a network failure, a RegauthError and a plain error through unchanged', () => {
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', syscall: 'read' });
    const own = new RegauthError('ERR_NETWORK', 'broken');
    const plain = new Error('boom');
    for (const err of [reset, own, plain]) expect(fileSystemError(err, 'write', '/x')).toBe(err);
  });

  it('withFileSystemErrors converts what the work throws', async () => {
    await expect(
      withFileSystemErrors('create the OCI image layout', '/ro/layout', async () => {
        throw errno('EROFS', 'mkdir', '/ro/layout');
      }),
    ).rejects.toThrow(/^cannot create the OCI image layout \/ro\/layout: the file system is read-only/);
  });
});
