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

describe('terminalSession().log', () => {
  it('writes through the newest drawing that registered, and to stderr once none is left', () => {
    const session = terminalSession();
    const bars: string[] = [];
    const written: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((text: string) => {
      written.push(text);
      return true;
    }) as typeof process.stderr.write;
    try {
      const unlog = session.onLog((line) => bars.push(line));
      session.log('regauth: warning: one');
      unlog();
      session.log('regauth: warning: two\n');
    } finally {
      process.stderr.write = write;
    }
    expect(bars).toEqual(['regauth: warning: one\n']);
    expect(written).toEqual(['regauth: warning: two\n']);
  });
});

describe('handleSignals', () => {
  it.each(Object.entries(SIGNAL_EXIT_CODES))(
    'on %s while bars are drawn: restores the terminal, says so and exits %i',
    (signal, code) => {
      const session = terminalSession();
      const events: string[] = [];
      const before = process.listenerCount(signal);
      handleSignals(session, {
        write: (text) => events.push(text),
        exit: ((c: number) => {
          events.push(`exit ${c}`);
        }) as (code: number) => never,
      });
      expect(process.listenerCount(signal)).toBe(before);
      session.onRestore(() => events.push('restore'));
      process.emit(signal as NodeJS.Signals, signal as NodeJS.Signals);
      expect(events).toEqual(['restore', `regauth: interrupted (${signal})\n`, `exit ${code}`]);
      // Restored, the session holds nothing: the signal has its own meaning again (serve's SIGHUP).
      expect(process.listenerCount(signal)).toBe(before);
    },
  );
});
