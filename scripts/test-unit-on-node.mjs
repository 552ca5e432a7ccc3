#!/usr/bin/env node
// Runs the unit tests (vitest project "unit") under another major version of Node:
//   node scripts/test-unit-on-node.mjs 24 [more vitest arguments]
// Node comes from scripts/node-runtime.mjs (the npm registry's `node` package, kept in .cache/).
// Anything that goes wrong (no network, a binary that does not run or is another version, a
// failing test) exits non-zero with a line saying what: this check must never pass by skipping.
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { ensureNode } from './node-runtime.mjs';

const root = resolve(import.meta.dirname, '..');
const [major, ...vitestArgs] = process.argv.slice(2);

function fail(message) {
  process.stderr.write(`test-unit-on-node: ${message}\n`);
  process.exit(1);
}

if (major === undefined || !/^[1-9][0-9]?$/.test(major)) {
  fail('give the major version of Node to run the unit tests under, e.g. 24');
}

let node;
try {
  node = ensureNode(major);
} catch (err) {
  fail(err.message);
}
const { bin, version } = node;

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
