import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { handleClosedOutput } from './handle-closed-output.js';
import { terminalSession } from './terminal-session.js';

const errnoError = (code: string) => Object.assign(new Error(`write ${code}`), { code });

describe('handleClosedOutput', () => {
  const setUp = () => {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const exits: number[] = [];
    let restored = 0;
    terminalSession().onRestore(() => restored++);
    handleClosedOutput(terminalSession(), ((code: number) => exits.push(code)) as (c: number) => never, {
      stdout,
      stderr,
    });
    return { stdout, stderr, exits, restored: () => restored };
  };

  it('ends quietly with status 0 when the reader closed the pipe', () => {
    const { stdout, stderr, exits, restored } = setUp();
    stdout.emit('error', errnoError('EPIPE'));
    expect(exits).toEqual([0]);
    expect(stderr.read()).toBeNull();
    expect(restored()).toBe(1);
  });

  it('says in one line why standard output failed otherwise, and exits 1', () => {
    const { stdout, stderr, exits } = setUp();
    stdout.emit('error', errnoError('ENOSPC'));
    expect(exits).toEqual([1]);
    expect(String(stderr.read())).toBe('regauth: error: cannot write to standard output (ENOSPC)\n');
  });

  it('a closed stderr ends nothing: the command keeps its own exit status', () => {
    const { stderr, exits } = setUp();
    stderr.emit('error', errnoError('EPIPE'));
    expect(exits).toEqual([]);
  });
});
