import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from './harness/fault-proxy.js';
import { buildOciLayout } from './harness/oci-layout.js';
import { type CliHome, createCliHome } from './harness/regauth-cli.js';
import { cursorShownAtEnd, openTerminal, type Terminal } from './harness/terminal.js';
import { REGAUTH_BIN, startTokenStack, type TokenStack } from './harness/token-server.js';

const USERS = { alice: 'alice-pw-4410', bob: 'bob-pw-7702' };
const ALICE = { REGAUTH_USERNAME: 'alice', REGAUTH_PASSWORD: USERS.alice };
const sha256 = (data: Uint8Array) => `sha256:${createHash('sha256').update(data).digest('hex')}`;
/** Wide enough that no error line of these tests wraps: a line on screen is a line written. */
const WIDE = 250;
/** How long any of these commands may take before the test calls it a hang. */
const EXIT_BOUND_MS = 30_000;

describe('the CLI on a terminal: every way out stops the progress and shows the cursor', () => {
  let stack: TokenStack;
  let proxy: FaultProxy;
  let cli: CliHome;
  let work: string;
  const layer = randomBytes(4 * 1024 * 1024 + 777);
  const layerPath = new RegExp(`/v2/alice/big/blobs/${sha256(layer)}$`);
  const terminals: Terminal[] = [];

  const open = async (args: readonly string[], cols = WIDE) => {
    const t = await openTerminal([REGAUTH_BIN, ...args], {
      env: { ...cli.env, ...ALICE },
      cols,
      rows: 30,
    });
    terminals.push(t);
    return t;
  };

  /**
   * After the command ended, the bytes it wrote leave the cursor shown and line wrapping on
   * (tmux's own cursor flag is no witness once it has drawn its "Pane is dead" line).
   */
  const expectTerminalRestored = async (t: Terminal) => {
    const output = await t.output();
    expect(cursorShownAtEnd(output)).toBe(true);
    expect(output.lastIndexOf('\x1b[?7h')).toBeGreaterThanOrEqual(output.lastIndexOf('\x1b[?7l'));
  };

  beforeAll(async () => {
    stack = await startTokenStack({ users: USERS });
    cli = await createCliHome();
    work = await mkdtemp(join(tmpdir(), 'regauth-terminal-e2e-'));
    await buildOciLayout(join(work, 'big'), { tag: 'v1', rawLayers: [layer] });
    const push = await cli.run(
      ['push', '--quiet', join(work, 'big'), `${stack.registry.host}/alice/big:v1`],
      {
        env: ALICE,
      },
    );
    if (push.code !== 0) throw new Error(push.stderr);
    await buildOciLayout(join(work, 'tall'), {
      tag: 'v1',
      layers: Array.from({ length: 14 }, (_, i) => ({
        [`layer-${i}.txt`]: `layer ${i}\n`.repeat(1000 * (i + 1)),
      })),
    });
    const tall = await cli.run(
      ['push', '--quiet', join(work, 'tall'), `${stack.registry.host}/alice/tall:v1`],
      {
        env: ALICE,
      },
    );
    if (tall.code !== 0) throw new Error(tall.stderr);
    proxy = await startFaultProxy(stack.registry.host);
  });

  afterEach(async () => {
    for (const t of terminals.splice(0)) await t.dispose();
  });

  afterAll(async () => {
    await proxy?.close();
    await stack?.stop();
    await cli?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('a pull from a closed port prints the whole error on its own line and exits 1', async () => {
    const t = await open(['pull', '127.0.0.1:1/a:b', join(work, 'closed')]);
    expect(await t.exit(EXIT_BOUND_MS)).toEqual({ code: 1, signal: undefined });
    expect(await t.screen()).toMatch(
      // HTTPS is tried first on loopback too; a refused connection is not a reason for plain HTTP.
      /^regauth: error: GET https:\/\/127\.0\.0\.1:1: connect ECONNREFUSED .*\?$/m,
    );
    await expectTerminalRestored(t);
  });

  it('a push from a folder that does not exist says so before drawing anything, and exits 1', async () => {
    const t = await open(['push', '/nonexistent', `${stack.registry.host}/alice/x:v1`]);
    expect(await t.exit(EXIT_BOUND_MS)).toEqual({ code: 1, signal: undefined });
    const screen = await t.screen();
    expect(screen).toMatch(/^regauth: error: \/nonexistent is not an OCI image layout\b/m);
    expect(await t.output()).not.toContain('\x1b[?25l');
    await expectTerminalRestored(t);
  });

  it('a pull without a folder is a usage error (exit 2) that draws no progress', async () => {
    const t = await open(['pull', `${stack.registry.host}/alice/big:v1`]);
    expect(await t.exit(EXIT_BOUND_MS)).toEqual({ code: 2, signal: undefined });
    expect(await t.screen()).toMatch(/^regauth: error: regauth pull needs a folder/m);
    expect(await t.output()).not.toContain('\x1b[?25l');
    await expectTerminalRestored(t);
  });

  it('a pull the account may not read ends with the refusal on its own line', async () => {
    const t = await open(['pull', `${stack.registry.host}/bob/secret:v1`, join(work, 'denied')]);
    expect(await t.exit(EXIT_BOUND_MS)).toEqual({ code: 1, signal: undefined });
    expect(await t.screen()).toMatch(/^regauth: error: .*bob\/secret.*$/m);
    await expectTerminalRestored(t);
  });

  /** Starts a pull through the proxy that stalls mid-layer, and waits until the bars show it. */
  const stalledPull = async (dir: string) => {
    proxy.clear();
    proxy.inject('GET', layerPath, { kind: 'stall-after', bytes: 1024 * 1024 }, 10);
    const t = await open(['pull', `${proxy.host}/alice/big:v1`, join(work, dir)]);
    await t.waitForScreen(/ 1\.0\/4\.0 MiB /, 20_000);
    return t;
  };

  it('a proxy killed mid-transfer ends the pull with the error on its own line', async () => {
    const t = await stalledPull('killed');
    await proxy.close();
    try {
      expect(await t.exit(EXIT_BOUND_MS)).toEqual({ code: 1, signal: undefined });
      // The message is wider than the terminal: it starts a line of its own and wraps from there.
      const screen = await t.screen();
      expect(screen).toMatch(/^regauth: error: blob sha256:\w+ from .*: the connection failed /m);
      expect(screen.slice(screen.indexOf('regauth: error:')).replace(/\n/g, '')).toMatch(
        /the \d+ bytes received are kept in .*, and the next pull into this layout continues from there/,
      );
      await expectTerminalRestored(t);
    } finally {
      proxy = await startFaultProxy(stack.registry.host);
    }
  });

  it('Ctrl-C mid-pull stops the bars, says so and exits 130', async () => {
    const t = await stalledPull('interrupted');
    await t.sendKeys('C-c');
    expect(await t.exit(EXIT_BOUND_MS)).toEqual({ code: 130, signal: undefined });
    expect(await t.screen()).toMatch(/^regauth: interrupted \(SIGINT\)$/m);
    await expectTerminalRestored(t);
  });

  it('SIGTERM mid-pull stops the bars, says so and exits 143', async () => {
    const t = await stalledPull('terminated');
    process.kill(t.pid, 'SIGTERM');
    expect(await t.exit(EXIT_BOUND_MS)).toEqual({ code: 143, signal: undefined });
    expect(await t.screen()).toMatch(/^regauth: interrupted \(SIGTERM\)$/m);
    await expectTerminalRestored(t);
  });

  /** The longest run of text the command drew between two control sequences or line ends. */
  const widestDrawn = (output: string) =>
    Math.max(
      ...output
        // biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escapes are the point
        .split(/\x1b\[[0-9;?]*[A-Za-z]|\r|\n/)
        .map((segment) => [...segment].length),
    );

  it('in 80 columns: a retry shows on the blob line, labels align, and no line is wider than the terminal', async () => {
    proxy.clear();
    // The first GET of the layer breaks after 1 MiB; its resumption then hangs, so the retry stays on screen.
    proxy.inject('GET', layerPath, { kind: 'reset-after', bytes: 1024 * 1024 }, 1);
    proxy.inject('GET', layerPath, { kind: 'stall-after', bytes: 0 }, 10);
    const t = await open(['pull', `${proxy.host}/alice/big:v1`, join(work, 'narrow')], 80);
    const screen = await t.waitForScreen(/retrying (in \d+ s|now) \(the connection broke/, 20_000);
    // The config is a small blob that finished: its status sits in the same column as the ETA.
    const lines = screen.split('\n');
    const done = lines.find((l) => / done$/.test(l));
    const total = lines.find((l) => l.startsWith(' total '));
    expect(done).toBeDefined();
    expect(total).toMatch(/ ETA (\d+:\d\d|-)$/);
    expect(done?.lastIndexOf('done')).toBe(total?.lastIndexOf('ETA'));
    await t.sendKeys('C-c');
    expect(await t.exit(EXIT_BOUND_MS)).toEqual({ code: 130, signal: undefined });
    expect(widestDrawn(await t.output())).toBeLessThan(80);
    await expectTerminalRestored(t);
  });

  it('an image with more layers than the terminal has rows keeps one clean set of bars', async () => {
    const t = await openTerminal(
      [REGAUTH_BIN, 'pull', `${stack.registry.host}/alice/tall:v1`, join(work, 'tall-out')],
      {
        env: { ...cli.env, ...ALICE },
        cols: 80,
        rows: 12,
      },
    );
    terminals.push(t);
    expect(await t.exit(EXIT_BOUND_MS)).toEqual({ code: 0, signal: undefined });
    const screen = await t.screen();
    expect(screen.match(/^ total /gm)).toHaveLength(1);
    expect(screen).toMatch(/^ total +█+ 100% .* done$/m);
    expect(widestDrawn(await t.output())).toBeLessThan(80);
    await expectTerminalRestored(t);
  });

  it('--trace on a terminal draws no bars through the HTTP exchange', async () => {
    const t = await open(['pull', '--trace', `${stack.registry.host}/alice/tall:v1`, join(work, 'traced')]);
    expect(await t.exit(EXIT_BOUND_MS)).toEqual({ code: 0, signal: undefined });
    const output = await t.output();
    expect(output).toMatch(/GET \/v2\/alice\/tall\/manifests\/v1 HTTP\/1\.1/);
    expect(output).not.toContain('\x1b[?25l');
  });

  it('Ctrl-C mid-copy stops the bars and exits 130 as well', async () => {
    proxy.clear();
    proxy.inject('GET', layerPath, { kind: 'stall-after', bytes: 1024 * 1024 }, 10);
    const t = await open(['copy', `${proxy.host}/alice/big:v1`, `${stack.registry.host}/alice/copied:v1`]);
    // The upload counts what the registry took, which the stalled read holds back: wait for the
    // layer's line and the proxy's record of its read.
    await t.waitForScreen(/^ [0-9a-f]{12} .*\/4\.0 MiB/m, 20_000);
    for (let i = 0; i < 200 && !proxy.log.some((l) => layerPath.test(l.split(' ')[1] ?? '')); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await t.sendKeys('C-c');
    expect(await t.exit(EXIT_BOUND_MS)).toEqual({ code: 130, signal: undefined });
    expect(await t.screen()).toMatch(/^regauth: interrupted \(SIGINT\)$/m);
    await expectTerminalRestored(t);
  });

  it('SIGTERM mid docker-archive pull leaves no half-written tar behind', async () => {
    proxy.clear();
    proxy.inject('GET', layerPath, { kind: 'stall-after', bytes: 1024 * 1024 }, 10);
    const folder = join(work, 'archive');
    await mkdir(folder);
    const t = await open([
      'pull',
      `${proxy.host}/alice/big:v1`,
      '--format',
      'docker-archive',
      '--output',
      join(folder, 'big.tar'),
    ]);
    await t.waitForScreen(/ 1\.0\/4\.0 MiB /, 20_000);
    expect(await readdir(folder)).toEqual([expect.stringMatching(/^big\.tar\..+\.partial$/)]);
    process.kill(t.pid, 'SIGTERM');
    expect(await t.exit(EXIT_BOUND_MS)).toEqual({ code: 143, signal: undefined });
    expect(await readdir(folder)).toEqual([]);
    await expectTerminalRestored(t);
  });
});
