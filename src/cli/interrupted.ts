import { SIGNAL_EXIT_CODES } from './terminal-session.js';

const BRAND = Symbol.for('regauth.cli.Interrupted');

/**
 * Thrown when the user interrupted the command (Ctrl-C at a prompt, SIGINT, SIGTERM) after it
 * put the terminal back as it found it; main() turns it into the shell's exit status for the
 * signal, and prints nothing: the person pressing Ctrl-C knows why it stopped.
 */
export class Interrupted extends Error {
  /** main.ts and each command are bundled apart (scripts/bundle-cli.mjs): a mark, not the class, is compared. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }

  readonly [BRAND] = true;
  readonly signal: keyof typeof SIGNAL_EXIT_CODES;

  constructor(signal: keyof typeof SIGNAL_EXIT_CODES) {
    super(`interrupted (${signal})`);
    this.name = 'Interrupted';
    this.signal = signal;
  }

  get exitCode(): number {
    return SIGNAL_EXIT_CODES[this.signal];
  }
}
