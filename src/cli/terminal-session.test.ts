import { describe, expect, it } from 'vitest';
import { handleSignals, SIGNAL_EXIT_CODES, terminalSession } from './terminal-session.js';

describe('terminalSession', () => {
  it('is one session for every copy of the module (bundles share it through the process)', () => {
    expect(terminalSession()).toBe(terminalSession());
  });

  it('restores newest first, each once, and a failing restore does not stop the others', () => {
    const session = terminalSession();
    const calls: string[] = [];
    session.onRestore(() => calls.push('bars'));
    session.onRestore(() => {
      throw new Error('terminal gone');
    });
    const release = session.onRestore(() => calls.push('released'));
    session.onRestore(() => calls.push('prompt'));
    release();
    session.restore();
    session.restore();
    expect(calls).toEqual(['prompt', 'bars']);
  });
});

describe('handleSignals', () => {
  it.each(Object.entries(SIGNAL_EXIT_CODES))(
    'on %s restores the terminal, says so and exits %i',
    (signal, code) => {
      const session = terminalSession();
      const events: string[] = [];
      session.onRestore(() => events.push('restore'));
      const remove = handleSignals(session, {
        write: (text) => events.push(text),
        exit: ((c: number) => {
          events.push(`exit ${c}`);
        }) as (code: number) => never,
      });
      try {
        process.emit(signal as NodeJS.Signals, signal as NodeJS.Signals);
      } finally {
        remove();
      }
      expect(events).toEqual(['restore', `regauth: interrupted (${signal})\n`, `exit ${code}`]);
    },
  );
});
