import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Sandbox, sandbox } from './testing/fixtures.js';
import { writeFileAtomic } from './write-file-atomic.js';

describe('writeFileAtomic', () => {
  let box: Sandbox;
  beforeEach(async () => {
    box = await sandbox();
  });
  afterEach(() => box.cleanup());

  it('creates a file with the mode asked for, whatever the umask', async () => {
    const path = join(box.dir, 'new', 'deeper', 'file.json');
    const umask = process.umask(0o077);
    try {
      await writeFileAtomic(path, 'one', { mode: 0o644, dirMode: 0o750 });
    } finally {
      process.umask(umask);
    }
    expect(await readFile(path, 'utf8')).toBe('one');
    expect((await stat(path)).mode & 0o777).toBe(0o644);
  });

  it('replaces a file, keeping its mode, and leaves no temporary file', async () => {
    const path = join(box.dir, 'file.json');
    await writeFile(path, 'old', { mode: 0o604 });
    await writeFileAtomic(path, 'new');
    expect(await readFile(path, 'utf8')).toBe('new');
    expect((await stat(path)).mode & 0o777).toBe(0o604);
    expect((await readdir(box.dir)).sort()).toEqual(['bin', 'file.json']);
  });

  it('removes its temporary file when the rename fails', async () => {
    const path = join(box.dir, 'taken');
    await mkdir(path);
    await writeFile(join(path, 'x'), '');
    await expect(writeFileAtomic(path, 'data')).rejects.toThrow();
    expect((await readdir(box.dir)).sort()).toEqual(['bin', 'taken']);
  });
});
