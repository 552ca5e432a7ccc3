import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readTerminalLine } from './read-terminal-line.js';

/** A stand-in for a terminal's input: a stream that takes raw mode. */
function fakeTerminal(): NodeJS.ReadStream {
  const input = new PassThrough() as unknown as NodeJS.ReadStream & { isRaw: boolean };
  Object.assign(input, {
    isTTY: true,
    isRaw: false,
    setRawMode(raw: boolean) {
      input.isRaw = raw;
      return input;
    },
  });
  return input;
}

describe('readTerminalLine', () => {
  it('keeps a character whose bytes arrive in two reads (a pasted password)', async () => {
    const input = fakeTerminal();
    const output = new PassThrough() as unknown as NodeJS.WriteStream;
    const answer = readTerminalLine('Password: ', { echo: false, input, output });
    const bytes = Buffer.from('pä€s\r', 'utf8');
    // Split inside 'ä' (2 bytes) and inside '€' (3 bytes).
    input.write(bytes.subarray(0, 2));
    input.write(bytes.subarray(2, 5));
    input.write(bytes.subarray(5));
    expect(await answer).toBe('pä€s');
    expect(input.isRaw).toBe(false);
  });
});
