import { StringDecoder } from 'node:string_decoder';
import { RegauthError } from '../errors/regauth-error.js';
import { Interrupted } from './interrupted.js';

export interface ReadTerminalLineOptions {
  /** Show what is typed (a user name); false for a secret, which never reaches the screen. */
  readonly echo: boolean;
  /** Left out: process.stdin, which must be a terminal. */
  readonly input?: NodeJS.ReadStream;
  /** Where the prompt (and the echo) go. Left out: process.stderr, so stdout stays the command's. */
  readonly output?: NodeJS.WriteStream;
}

/** Escape sequences an arrow, function or editing key sends: they are keys, not text. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching key sequences is the point.
const KEY_SEQUENCE_RE = /\x1b(?:\[[0-9;?]*[@-~]|O.|.)?/g;

/** Whether a prompt can be shown and answered: standard input is a terminal. */
export function canPrompt(input: NodeJS.ReadStream = process.stdin): boolean {
  return input.isTTY === true;
}

/**
 * Asks for one line on the terminal, as `docker login` does: the prompt, then what is typed up
 * to Enter. The terminal is put in raw mode for the read — so a secret is never echoed by the
 * line discipline, and Ctrl-C arrives as a key rather than a signal that would leave the
 * terminal without echo — and put back as it was on every way out: Enter, Ctrl-C, Ctrl-D, and
 * SIGINT/SIGTERM sent from elsewhere. Ctrl-C and the signals reject with Interrupted.
 */
export function readTerminalLine(prompt: string, options: ReadTerminalLineOptions): Promise<string> {
  const input = options.input ?? process.stdin;
  const output = options.output ?? process.stderr;
  if (!canPrompt(input)) {
    return Promise.reject(
      new RegauthError('ERR_USAGE', `cannot ask "${prompt.trim()}": standard input is not a terminal`),
    );
  }
  return new Promise((resolve, reject) => {
    const typed: string[] = [];
    const wasRaw = input.isRaw;
    let done = false;
    // A character of several bytes (a pasted password) may arrive split across two reads.
    const decoder = new StringDecoder('utf8');

    const finish = (error?: Error) => {
      if (done) return;
      done = true;
      input.off('data', onData);
      process.off('SIGINT', onSigint);
      process.off('SIGTERM', onSigterm);
      input.setRawMode(wasRaw);
      input.pause();
      output.write('\n');
      if (error) reject(error);
      else resolve(typed.join(''));
    };
    const onSigint = () => finish(new Interrupted('SIGINT'));
    const onSigterm = () => finish(new Interrupted('SIGTERM'));
    const onData = (chunk: Buffer | string) => {
      const text = (typeof chunk === 'string' ? chunk : decoder.write(chunk)).replace(KEY_SEQUENCE_RE, '');
      for (const ch of text) {
        if (ch === '\r' || ch === '\n') return finish();
        if (ch === '\x03') return finish(new Interrupted('SIGINT'));
        if (ch === '\x04') {
          if (typed.length === 0) {
            return finish(new RegauthError('ERR_USAGE', `no answer to "${prompt.trim()}" (end of input)`));
          }
        } else if (ch === '\x7f' || ch === '\b') {
          if (typed.pop() !== undefined && options.echo) output.write('\b \b');
        } else if (ch === '\x15') {
          if (options.echo) output.write('\b \b'.repeat(typed.length));
          typed.length = 0;
        } else if (ch >= ' ') {
          typed.push(ch);
          if (options.echo) output.write(ch);
        }
      }
    };

    try {
      input.setRawMode(true);
    } catch (err) {
      reject(
        new RegauthError('ERR_USAGE', `cannot turn off echo on this terminal to ask "${prompt.trim()}"`, {
          cause: err,
        }),
      );
      return;
    }
    process.on('SIGINT', onSigint);
    process.on('SIGTERM', onSigterm);
    input.on('data', onData);
    output.write(prompt);
    input.resume();
  });
}
