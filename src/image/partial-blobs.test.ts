import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ABANDONED_PARTIAL_MS, PARTIAL_DIR, PartialBlobs } from './partial-blobs.js';

const DIGEST = `sha256:${createHash('sha256').update('a blob').digest('hex')}`;
const HEX = DIGEST.slice('sha256:'.length);
const HOST = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);
/** Above Linux's largest pid_max (2^22): no process has it. */
const DEAD_PID = 4_194_305;

let dir: string;
let folder: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'regauth-partials-'));
  folder = join(dir, PARTIAL_DIR, 'sha256');
  await mkdir(folder, { recursive: true });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const files = async () => (await readdir(folder).catch(() => [] as string[])).sort();

describe('PartialBlobs.claim', () => {
  it('takes over the resting partial under a name of its own, with its bytes', async () => {
    await writeFile(join(folder, HEX), 'first bytes');
    const claim = await new PartialBlobs(dir).claim(DIGEST, { resume: true });
    expect(claim.size).toBe('first bytes'.length);
    expect(claim.path).toMatch(new RegExp(`/${HEX}\\.claim-${HOST}-${process.pid}-[0-9a-f]+$`));
    expect(await readFile(claim.path, 'utf8')).toBe('first bytes');
    expect(await files()).toEqual([claim.path.slice(folder.length + 1)]);
  });

  it('without resume, starts empty and leaves the resting partial alone', async () => {
    await writeFile(join(folder, HEX), 'first bytes');
    const claim = await new PartialBlobs(dir).claim(DIGEST, { resume: false });
    expect(claim.size).toBe(0);
    expect(await files()).toContain(HEX);
  });

  it('never takes over the claim of a live process, but takes one whose process is gone', async () => {
    const live = `${HEX}.claim-${HOST}-${process.pid}-aaaa`;
    const dead = `${HEX}.claim-${HOST}-${DEAD_PID}-bbbb`;
    await writeFile(join(folder, live), 'live writer');
    await writeFile(join(folder, dead), 'dead writer');
    const claim = await new PartialBlobs(dir).claim(DIGEST, { resume: true });
    expect(await readFile(claim.path, 'utf8')).toBe('dead writer');
    expect(await readFile(join(folder, live), 'utf8')).toBe('live writer');
    expect(await files()).not.toContain(dead);
  });

  it.runIf(process.platform === 'linux')(
    'takes over the claim of a process that exited but was never reaped (a zombie)',
    async () => {
      // sh backgrounds a short sleep, then becomes a long one that never waits for it.
      const parent = spawn('sh', ['-c', 'sleep 0.1 & echo $!; exec sleep 10'], {
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      try {
        const pid = Number(
          (await new Promise<Buffer>((resolve) => parent.stdout.once('data', resolve))).toString().trim(),
        );
        const end = Date.now() + 5000;
        const state = async () => (await readFile(`/proc/${pid}/stat`, 'utf8')).replace(/^.*\) /s, '')[0];
        while ((await state()) !== 'Z') {
          if (Date.now() > end) throw new Error(`process ${pid} never became a zombie`);
          await new Promise((r) => setTimeout(r, 20));
        }
        const zombie = `${HEX}.claim-${HOST}-${pid}-dddd`;
        await writeFile(join(folder, zombie), 'exited writer');
        const claim = await new PartialBlobs(dir).claim(DIGEST, { resume: true });
        expect(await readFile(claim.path, 'utf8')).toBe('exited writer');
        expect(await files()).not.toContain(zombie);
      } finally {
        parent.kill('SIGKILL');
      }
    },
  );

  it('takes over a claim of another host only once it has not been written for a long time', async () => {
    const remote = `${HEX}.claim-0badc0de-1234-cccc`;
    await writeFile(join(folder, remote), 'remote writer');
    let now = Date.now();
    const partials = new PartialBlobs(dir, () => now);
    expect((await partials.claim(DIGEST, { resume: true })).size).toBe(0);
    expect(await files()).toContain(remote);
    now += ABANDONED_PARTIAL_MS + 60_000;
    const claim = await partials.claim(DIGEST, { resume: true });
    expect(await readFile(claim.path, 'utf8')).toBe('remote writer');
  });

  it('removes the other abandoned claims of the digest once it holds one', async () => {
    await writeFile(join(folder, HEX), 'resting');
    await writeFile(join(folder, `${HEX}.claim-${HOST}-${DEAD_PID}-dddd`), 'older try');
    const claim = await new PartialBlobs(dir).claim(DIGEST, { resume: true });
    expect(await readFile(claim.path, 'utf8')).toBe('resting');
    expect(await files()).toEqual([claim.path.slice(folder.length + 1)]);
  });
});

describe('PartialBlobs.release', () => {
  it('puts a claim with bytes back under the resting name, and drops an empty one', async () => {
    const partials = new PartialBlobs(dir);
    const claim = await partials.claim(DIGEST, { resume: true });
    await writeFile(claim.path, 'some bytes');
    expect(await partials.release(claim, DIGEST)).toEqual({ path: join(folder, HEX), size: 10 });
    expect(await files()).toEqual([HEX]);
    const empty = await partials.claim(DIGEST, { resume: false });
    expect(await partials.release(empty, DIGEST)).toEqual({ path: join(folder, HEX), size: 10 });
    expect(await files()).toEqual([HEX]);
  });

  it('keeps a longer resting partial another writer left meanwhile', async () => {
    const partials = new PartialBlobs(dir);
    const claim = await partials.claim(DIGEST, { resume: false });
    await writeFile(claim.path, 'short');
    await writeFile(join(folder, HEX), 'the longer one');
    await partials.release(claim, DIGEST);
    expect(await readFile(join(folder, HEX), 'utf8')).toBe('the longer one');
    expect(await files()).toEqual([HEX]);
  });
});

describe('PartialBlobs.sweep', () => {
  it('removes resting partials and dead claims, keeps live claims, and the folder while needed', async () => {
    const live = `${HEX}.claim-${HOST}-${process.pid}-eeee`;
    await writeFile(join(folder, HEX), 'resting');
    await writeFile(join(folder, `${HEX}.claim-${HOST}-${DEAD_PID}-ffff`), 'dead');
    await writeFile(join(folder, live), 'live');
    const partials = new PartialBlobs(dir);
    await partials.sweep();
    expect(await files()).toEqual([live]);
    // An hour without a write: abandoned even though the process id is alive (reused).
    const old = new Date(Date.now() - ABANDONED_PARTIAL_MS - 60_000);
    await utimes(join(folder, live), old, old);
    await partials.sweep();
    expect(await readdir(dir)).toEqual([]);
  });
});
