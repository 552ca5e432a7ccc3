import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, posix, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// What `npm pack` ships and what `npm install regauth` brings along. Runs on the built dist/
// (npm test builds first), so packing needs no build (--ignore-scripts).

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Packages only the token server or the CLI needs: a client-only install must not fetch them. */
const SERVER_AND_CLI_ONLY = [
  'bcrypt',
  '@peculiar/x509',
  'reflect-metadata',
  'commander',
  'cli-progress',
  'yaml',
  'ldapts',
  'prom-client',
  'ioredis',
];

interface PackedFile {
  readonly path: string;
}

async function packedFiles(): Promise<string[]> {
  const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT });
  const [pack] = JSON.parse(stdout) as [{ files: PackedFile[] }];
  return pack.files.map((f) => f.path);
}

/** Relative specifiers in `import … from '…'`, `import('…')`, `require('…')` and source-map comments. */
function relativeReferences(code: string): string[] {
  const found: string[] = [];
  const patterns = [
    /\bfrom\s*['"](\.{1,2}\/[^'"]+)['"]/g,
    /\bimport\s*\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g,
    /\brequire\s*\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g,
    /\/\/# sourceMappingURL=(\S+)/g,
  ];
  for (const re of patterns) for (const m of code.matchAll(re)) found.push(m[1] as string);
  return found;
}

describe('the packed tarball', () => {
  let files: string[];
  beforeAll(async () => {
    files = await packedFiles();
  });

  it('ships no test helper, test file or source map', () => {
    expect(files.length).toBeGreaterThan(50);
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/server/index.js');
    expect(files).toContain('dist/cli-bundle/main.cjs');
    expect(
      files.filter((f) => /(^|\/)testing\//.test(f) || /\.test\./.test(f) || f.endsWith('.map')),
    ).toEqual([]);
  });

  it('ships the Apache-2.0 LICENSE that package.json names', async () => {
    expect(files).toContain('LICENSE');
    const license = await readFile(join(ROOT, 'LICENSE'), 'utf8');
    expect(license).toContain('Apache License\n                           Version 2.0, January 2004');
    expect(license).toContain('Copyright 2026 the regauth authors');
    expect(JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')).license).toBe('Apache-2.0');
  });

  it('every file a shipped module imports or maps to is shipped too', async () => {
    const shipped = new Set(files);
    const missing: string[] = [];
    for (const file of files.filter((f) => /\.(c?js|d\.ts)$/.test(f))) {
      const code = await readFile(join(ROOT, file), 'utf8');
      for (const ref of relativeReferences(code)) {
        const target = posix.normalize(posix.join(posix.dirname(file), ref));
        if (!shipped.has(target)) missing.push(`${file} -> ${ref}`);
      }
    }
    // A map, should one ship again, must point at sources that ship with it.
    for (const file of files.filter((f) => f.endsWith('.map'))) {
      const map = JSON.parse(await readFile(join(ROOT, file), 'utf8')) as { sources: string[] };
      for (const source of map.sources) {
        const target = posix.normalize(posix.join(posix.dirname(file), source));
        if (!shipped.has(target)) missing.push(`${file} -> ${source}`);
      }
    }
    expect(missing).toEqual([]);
  });
});

describe('a client-only install of the tarball', () => {
  let dir: string;
  let project: string;
  const cli = () => join(project, 'node_modules', '.bin', 'regauth');

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'regauth-package-'));
    project = join(dir, 'project');
    await run('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: ROOT });
    await run('mkdir', ['-p', project]);
    await writeFile(
      join(project, 'package.json'),
      '{ "name": "consumer", "private": true, "type": "module" }\n',
    );
    // The packages are in npm's cache after the checkout's own `npm install`: no network needed.
    await run(
      'npm',
      [
        'install',
        '--omit=dev',
        '--ignore-scripts',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        join(dir, 'regauth-0.1.0.tgz'),
      ],
      { cwd: project },
    );
  }, 120_000);
  afterAll(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('installs none of the server-only or CLI-only packages', () => {
    expect(existsSync(join(project, 'node_modules', 'regauth', 'dist', 'index.js'))).toBe(true);
    expect(SERVER_AND_CLI_ONLY.filter((name) => existsSync(join(project, 'node_modules', name)))).toEqual([]);
  });

  it('imports the client library (RedisTokenStore too) and regauth/server without them', async () => {
    const { stdout } = await run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const client = await import('regauth');
         const server = await import('regauth/server');
         // A Redis store takes the user's own client: any object with call() will do here.
         const store = new client.RedisTokenStore({ client: { call: async () => null } });
         console.log(typeof client.isRegauthError, typeof server.createTokenServer, await store.loadToken('k'));`,
      ],
      { cwd: project },
    );
    expect(stdout.trim()).toBe('function function undefined');
  });

  it('runs the CLI, keygen included, from the bundle', async () => {
    const version = await run(cli(), ['--version'], { cwd: project });
    expect(version.stdout).toMatch(/^regauth 0\.1\.0 /);
    const help = await run(cli(), ['serve', '--help'], { cwd: project });
    expect(help.stdout).toContain('Usage: regauth serve');
    const keygen = await run(cli(), ['keygen', '--key', 'k.pem', '--cert', 'c.pem'], { cwd: project });
    expect(keygen.stderr).toContain('wrote ES256 key k.pem');
    expect(await readFile(join(project, 'c.pem'), 'utf8')).toContain('-----BEGIN CERTIFICATE-----');
  });

  it('serve with users but no bcrypt says what to install, without a stack trace', async () => {
    await writeFile(
      join(project, 'users'),
      // "pw" at cost 4; the hash is never checked: start-up stops before.
      'alice:$2b$04$QjC74rFqDcdMIdHTSHtzz.difVZeHGaTHa3z5lvsZ0H3ioDy97Yb.\n',
    );
    await writeFile(
      join(project, 'serve.yml'),
      [
        'listen: 127.0.0.1:0',
        'token: { issuer: t, service: s, expiration: 300, key: k.pem, certificate: c.pem }',
        'users: { htpasswd: users }',
        "acl: [{ match: { account: alice }, actions: ['*'] }]",
        '',
      ].join('\n'),
    );
    const failed = await run(cli(), ['serve', '--config', 'serve.yml'], {
      cwd: project,
      timeout: 30_000,
    }).then(
      () => undefined,
      (err: { code: number; stderr: string }) => err,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toContain(
      'needs the bcrypt package, which is not installed: run `npm install bcrypt`',
    );
    expect(failed?.stderr).not.toMatch(/\n\s+at /);
  });
});
