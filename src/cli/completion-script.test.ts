import { Argument, Command, Option } from 'commander';
import { describe, expect, it } from 'vitest';
import { completionScript } from './completion-script.js';

function program(): Command {
  const p = new Command('tool').option('--debug', 'debug');
  p.command('get')
    .description("fetch [it]: don't wait")
    .option('--ca-file <file>', 'a CA')
    .addOption(new Option('--format <f>', 'format').choices(['a', 'b']))
    .argument('<ref>');
  p.command('put').argument('<dir[:name]>').argument('<ref>');
  p.command('sh').addArgument(new Argument('<shell>').choices(['x', 'y']));
  return p;
}

describe('completionScript', () => {
  it('completes file names for path values only, and choices where there are choices (bash)', () => {
    const script = completionScript(program(), 'bash');
    expect(script).toContain('--ca-file) compopt -o filenames');
    expect(script).toContain('--format) COMPREPLY=( $(compgen -W "a b"');
    expect(script).toMatch(/ {4}put\)\n.*\n {6}else compopt -o filenames/);
    expect(script).toMatch(/ {4}get\)[\s\S]*? {6}else :; fi/);
    expect(script).toContain(
      'sh)\n      if [[ "$cur" == -* ]]; then COMPREPLY=( $(compgen -W "--help -h" -- "$cur") )\n      else COMPREPLY=( $(compgen -W "x y"',
    );
    expect(script).toContain('complete -F _tool tool');
  });

  it("escapes descriptions for zsh's _arguments and fish's quotes", () => {
    expect(completionScript(program(), 'zsh')).toContain("'get:fetch \\[it\\]\\: don'\\''t wait'");
    const fish = completionScript(program(), 'fish');
    expect(fish).toContain("-a get -d 'fetch [it]: don\\'t wait'");
    expect(fish).toContain(
      "complete -c tool -n '__fish_seen_subcommand_from get' -l ca-file -r -F -d 'a CA'",
    );
    expect(fish).toContain("complete -c tool -n '__fish_seen_subcommand_from put' -F");
  });
});
