import { CommanderError } from 'commander';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildProgram, COMMAND_NAMES, commandToBuild } from './program.js';

/** What parsing `argv` writes to stderr, and how it ends (every case here fails before an action). */
async function parseErrorOf(
  only: string | undefined,
  argv: string[],
): Promise<{ stderr: string; code: string }> {
  let stderr = '';
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  try {
    await buildProgram(only).parseAsync(argv, { from: 'user' });
    return { stderr, code: 'parsed' };
  } catch (err) {
    return { stderr, code: err instanceof CommanderError ? err.code : String(err) };
  } finally {
    spy.mockRestore();
  }
}

describe('commandToBuild', () => {
  afterEach(() => vi.restoreAllMocks());

  it('names the command a run uses, after any --debug', () => {
    expect(commandToBuild(['manifest', 'alpine'])).toBe('manifest');
    expect(commandToBuild(['--debug', '--debug', 'pull', 'x', 'dir'])).toBe('pull');
    expect(commandToBuild(['logout', 'localhost:5000'])).toBe('logout');
  });

  it('asks for the whole program for help, completion, unknown or missing commands and other program options', () => {
    expect(commandToBuild([])).toBeUndefined();
    expect(commandToBuild(['--help'])).toBeUndefined();
    expect(commandToBuild(['manifest', '--help'])).toBeUndefined();
    expect(commandToBuild(['manifest', 'x', '-h'])).toBeUndefined();
    expect(commandToBuild(['help', 'manifest'])).toBeUndefined();
    expect(commandToBuild(['completion', 'bash'])).toBeUndefined();
    expect(commandToBuild(['manifets', 'x'])).toBeUndefined();
    expect(commandToBuild(['-V', 'manifest'])).toBeUndefined();
    expect(commandToBuild(['--debug=1', 'manifest'])).toBeUndefined();
  });

  it('lists every command of the program, in its order', () => {
    const names = buildProgram()
      .commands.map((c) => c.name())
      .filter((n) => n !== 'help');
    expect(names).toEqual([...COMMAND_NAMES]);
  });

  it('builds each command as the whole program does: the same help, arguments and options', () => {
    const full = buildProgram();
    for (const name of COMMAND_NAMES) {
      const alone = buildProgram(name);
      expect(alone.commands.map((c) => c.name())).toEqual([name]);
      const a = alone.commands[0];
      const b = full.commands.find((c) => c.name() === name);
      expect(a?.helpInformation()).toBe(b?.helpInformation());
      expect(a?.options.map((o) => o.flags)).toEqual(b?.options.map((o) => o.flags));
    }
  });

  it('rejects bad command lines with the same message and code as the whole program', async () => {
    const cases = [
      ['manifest', '--bogus', 'localhost:5000/a:b'],
      ['manifest', '--tarce', 'localhost:5000/a:b'],
      ['manifest'],
      ['--debug', 'tags'],
      ['pull', 'localhost:5000/a:b', '--format', 'zip'],
      ['pull', 'localhost:5000/a:b', '--jobs', '0'],
      ['keygen', '--key', 'k.pem'],
      ['digest', '--platform'],
    ];
    for (const argv of cases) {
      const only = commandToBuild(argv);
      expect(only).toBe(argv.find((a) => !a.startsWith('-')));
      const alone = await parseErrorOf(only, argv);
      const whole = await parseErrorOf(undefined, argv);
      expect(alone.stderr).toMatch(/^regauth: error: /);
      expect(alone.code).toMatch(/^commander\./);
      expect(alone).toEqual(whole);
    }
  });
});
