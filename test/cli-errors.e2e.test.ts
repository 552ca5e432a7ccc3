import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BuiltImage, buildOciLayout } from './harness/oci-layout.js';
import { type CliHome, createCliHome } from './harness/regauth-cli.js';
import { type RegistryHandle, startRegistry } from './harness/registry.js';
import { REGAUTH_BIN } from './harness/token-server.js';

const run = promisify(execFile);
const sha256 = (data: Uint8Array) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

describe('the CLI at the edges: closed pipes, files, usage, what push prints', () => {
  let registry: RegistryHandle;
  let cli: CliHome;
  let work: string;
  let host: string;
  let image: BuiltImage;
  /** Larger than a pipe's buffer (64 KiB on Linux), so a reader that stops early cuts it off. */
  const layer = randomBytes(1024 * 1024);

  beforeAll(async () => {
    registry = await startRegistry();
    host = registry.host;
    cli = await createCliHome();
    work = await mkdtemp(join(tmpdir(), 'regauth-cli-errors-e2e-'));
    image = await buildOciLayout(join(work, 'app'), {
      tag: 'v1',
      rawLayers: [layer],
      labels: { filler: 'x'.repeat(256 * 1024) },
    });
    const push = await cli.run(['push', '--quiet', '--json', join(work, 'app'), `${host}/team/app:v1`]);
    if (push.code !== 0) throw new Error(push.stderr);
  });

  afterAll(async () => {
    await registry?.stop();
    await cli?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** `regauth ARGS | head -c BYTES` through a real pipe: regauth's status and stderr, head's bytes. */
  const intoHead = async (args: readonly string[], bytes: number) => {
    const errFile = join(work, `stderr-${randomBytes(4).toString('hex')}`);
    const { stdout } = await run(
      'bash',
      [
        '-c',
        '"$0" "$@" 2>"$ERR_FILE" | head -c "$BYTES" | wc -c; echo "status ${PIPESTATUS[0]}"; cat "$ERR_FILE"',
        REGAUTH_BIN,
        ...args,
      ],
      { env: { ...cli.env, ERR_FILE: errFile, BYTES: String(bytes) }, timeout: 30_000 },
    );
    const [count = '', status = '', ...stderr] = stdout.split('\n');
    return { bytes: Number(count.trim()), status: status.replace('status ', ''), stderr: stderr.join('\n') };
  };

  describe('a reader that stops early', () => {
    it('config | head -c 100 ends quietly: status 0, nothing on stderr', async () => {
      const res = await intoHead(['config', `${host}/team/app:v1`], 100);
      expect(res).toEqual({ bytes: 100, status: '0', stderr: '' });
    });

    it('blob | head -c 10 ends quietly: status 0, nothing on stderr', async () => {
      const res = await intoHead(['blob', `${host}/team/app@${sha256(layer)}`], 10);
      expect(res).toEqual({ bytes: 10, status: '0', stderr: '' });
    });
  });
});
