import { describe, expect, it } from 'vitest';
import { handleUncaught } from './handle-uncaught.js';
import { terminalSession } from './terminal-session.js';

describe('handleUncaught', () => {
  it('restores the terminal and turns an escaped failure into one line and status 1', () => {
    const events: string[] = [];
    const session = terminalSession();
    session.onRestore(() => events.push('restore'));
    const before = process.listeners('unhandledRejection');
    handleUncaught(session, false, {
      write: (text) => events.push(text),
      exit: ((code: number) => events.push(`exit ${code}`)) as (code: number) => never,
    });
    const added = process.listeners('unhandledRejection').filter((l) => !before.includes(l));
    try {
      process.emit(
        'unhandledRejection',
        Object.assign(new Error('EACCES: permission denied, open \x1b[2J/x'), {}),
        Promise.resolve(),
      );
    } finally {
      for (const l of added) process.removeListener('unhandledRejection', l);
      for (const l of process.listeners('uncaughtException').slice(-1))
        process.removeListener('uncaughtException', l);
    }
    expect(events).toEqual([
      'restore',
      'regauth: error: EACCES: permission denied, open \\x1b[2J/x\n',
      '(an unexpected failure; run with --debug for details)\n',
      'exit 1',
    ]);
  });
});
