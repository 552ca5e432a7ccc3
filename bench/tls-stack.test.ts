import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { remoteLookingLoopbackName } from './tls-stack.js';

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function hostsFile(text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'regauth-hosts-'));
  dirs.push(dir);
  const file = join(dir, 'hosts');
  await writeFile(file, text);
  return file;
}

describe('remoteLookingLoopbackName', () => {
  it('passes over localhost names, other addresses, comments and names that do not resolve', async () => {
    const file = await hostsFile(
      [
        '# 127.0.0.1 commented-out',
        '127.0.0.1 localhost app.localhost',
        '10.1.2.3 elsewhere',
        '::1 ip6-localhost',
        '127.0.0.1 no-such-name.invalid',
        '',
      ].join('\n'),
    );
    expect(await remoteLookingLoopbackName(file)).toBeUndefined();
  });

  it('gives undefined for a hosts file that cannot be read', async () => {
    expect(await remoteLookingLoopbackName('/nonexistent/hosts')).toBeUndefined();
  });

  it("picks a name from this machine's hosts file only when it resolves to 127.0.0.1 alone", async () => {
    const { lookup } = await import('node:dns/promises');
    const name = await remoteLookingLoopbackName();
    if (name === undefined) return;
    expect(name).not.toMatch(/localhost/);
    expect((await lookup(name, { all: true })).map((a) => a.address)).toEqual(['127.0.0.1']);
  });
});
