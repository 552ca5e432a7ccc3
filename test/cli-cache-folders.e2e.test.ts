import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureNode } from '../scripts/node-runtime.mjs';
import { TIMING_LINE_PREFIX } from '../src/cli/start-up-timing.js';

const BIN = resolve(import.meta.dirname, '..', 'bin', 'regauth');
const isRoot = process.getuid?.() === 0;

function run(node: string, args: readonly string[], env: NodeJS.ProcessEnv, prefix: readonly string[] = []) {
  const command = [...prefix, node, BIN, ...args];
  return spawnSync(command[0] as string, command.slice(1), { env, encoding: 'utf8', timeout: 60_000 });
}

/** Where the CLI keeps compiled code between runs, and what it must never do to get it. */
describe("the CLI's code cache folders", () => {
  let work: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'regauth-cache-folders-'));
  });
  afterAll(() => rm(work, { recursive: true, force: true }));

  it.skipIf(!isRoot)('start when there is no home at all (HOME unset, a uid the passwd file lacks)', () => {
    // os.homedir() throws there; the caches are then skipped, never the command.
    const res = run(process.execPath, ['--version'], { PATH: process.env.PATH ?? '/usr/bin:/bin' }, [
      'setpriv',
      '--reuid=54321',
      '--regid=54321',
      '--clear-groups',
    ]);
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);
    expect(res.stdout).toMatch(/^regauth \d+\.\d+\.\d+ \(node v/);
  });

  it.skipIf(!isRoot)("leave no folder of root's in another user's home (sudo -E)", async () => {
    const home = join(work, 'someone');
    await mkdir(home, { mode: 0o755 });
    await chown(home, 65534, 65534);
    for (const args of [['--version'], ['tags', '--help']]) {
      const res = run(process.execPath, args, { PATH: process.env.PATH, HOME: home });
      expect(res.status).toBe(0);
    }
    expect(readdirSync(home)).toEqual([]);
  });

  describe('on Node 24', () => {
    let node24: string;

    beforeAll(() => {
      node24 = ensureNode(24).bin;
    }, 600_000);

    /** The code cache's outcome per bundle, from the REGAUTH_TIMING=1 line. */
    function outcomes(stderr: string): Record<string, string> {
      const line = stderr.split('\n').find((l) => l.startsWith(TIMING_LINE_PREFIX));
      return (
        (JSON.parse(line?.slice(TIMING_LINE_PREFIX.length) ?? '{}') as { codeCache?: Record<string, string> })
          .codeCache ?? {}
      );
    }

    it("keeps its code cache in the user's cache folder, not in the shared temporary directory", async () => {
      const home = join(work, 'home24');
      const tmp = join(work, 'tmp24');
      await mkdir(home, { recursive: true, mode: 0o700 });
      await mkdir(tmp, { recursive: true, mode: 0o1777 });
      const env = { PATH: process.env.PATH, HOME: home, TMPDIR: tmp, REGAUTH_TIMING: '1' };
      const first = run(node24, ['tags', '--help'], env);
      expect(first.status).toBe(0);
      expect(outcomes(first.stderr)).toEqual({ 'program.cjs': 'missing' });
      expect(readdirSync(tmp)).toEqual([]);
      // One folder, the V8 code cache's: Node's own compile cache is not turned on.
      expect(readdirSync(join(home, '.cache', 'regauth'))).toEqual(['v8']);
      const kept = readdirSync(join(home, '.cache', 'regauth', 'v8'));
      expect(kept).toEqual([`${node24Version()}-${process.arch}`]);
      // The second run takes what the first compiled.
      const again = run(node24, ['tags', '--help'], env);
      expect(again.status).toBe(0);
      expect(outcomes(again.stderr)).toEqual({ 'program.cjs': 'accepted' });
      expect(again.stdout).toBe(first.stdout);
    });

    it('removes the compile cache folder earlier versions kept for Node 22+, once it writes its own', async () => {
      const home = join(work, 'home24-stale');
      const stale = join(home, '.cache', 'regauth', 'node-compile-cache', 'v24.0.0-x64-abc');
      await mkdir(stale, { recursive: true, mode: 0o700 });
      await writeFile(join(stale, 'main.cjs.cache'), 'compiled code of an earlier version');
      const env = { PATH: process.env.PATH, HOME: home, TMPDIR: join(work, 'tmp24'), REGAUTH_TIMING: '1' };
      const res = run(node24, ['tags', '--help'], env);
      expect(res.status).toBe(0);
      expect(outcomes(res.stderr)).toEqual({ 'program.cjs': 'missing' });
      expect(readdirSync(join(home, '.cache', 'regauth'))).toEqual(['v8']);
    });

    it('is not used from a cache folder others can write', async () => {
      const home = join(work, 'home24-open');
      const cache = join(home, '.cache', 'regauth');
      await mkdir(cache, { recursive: true, mode: 0o700 });
      spawnSync('chmod', ['0777', cache]);
      const env = { PATH: process.env.PATH, HOME: home, TMPDIR: join(work, 'tmp24'), REGAUTH_TIMING: '1' };
      for (let i = 0; i < 2; i++) {
        const res = run(node24, ['tags', '--help'], env);
        expect(res.status).toBe(0);
        expect(outcomes(res.stderr)).toEqual({ 'program.cjs': 'missing' });
      }
      expect(readdirSync(cache)).toEqual([]);
    });

    function node24Version(): string {
      return spawnSync(node24, ['--version'], { encoding: 'utf8' }).stdout.trim();
    }
  });
});
