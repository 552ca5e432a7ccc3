#!/usr/bin/env node
// The tests run the real CNCF registry (Debian's docker-registry), the real skopeo, tmux
// (a real terminal for the CLI's interactive paths), and OpenLDAP's slapd with ldap-utils (the
// LDAP authenticator's directory, seeded with ldapadd), redis-server (the shared store of
// token server replicas), and podman (interop: login, pull, push through the token server; it
// needs root here, so without root its tests skip instead).
// Installs them when they are missing and we are root; otherwise says what to install.
import { execFileSync, spawnSync } from 'node:child_process';

const needed = [
  { command: 'docker-registry', pkg: 'docker-registry' },
  { command: 'skopeo', pkg: 'skopeo' },
  { command: 'tmux', pkg: 'tmux' },
  { command: 'slapd', pkg: 'slapd' },
  { command: 'ldapadd', pkg: 'ldap-utils' },
  { command: 'podman', pkg: 'podman', optional: true },
  { command: 'redis-server', pkg: 'redis-server' },
];

const has = (command) => spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
const missing = needed.filter((n) => !has(n.command)).map((n) => n.pkg);
if (missing.length === 0) process.exit(0);

const install = `apt-get install -y ${missing.join(' ')}`;
if (process.getuid?.() !== 0 || !has('apt-get')) {
  const required = needed.filter((n) => !n.optional && !has(n.command)).map((n) => n.pkg);
  process.stderr.write(
    required.length === 0
      ? `The tests that need ${missing.join(', ')} will skip. Install with: sudo apt-get update && sudo ${install}\n`
      : `The tests need ${missing.join(', ')}. Install them with: sudo apt-get update && sudo ${install}\n`,
  );
  process.exit(required.length === 0 ? 0 : 1);
}
process.stderr.write(`Installing ${missing.join(' ')} (needed by the tests)…\n`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
execFileSync('apt-get', ['install', '-y', '-qq', ...missing], { stdio: 'inherit', env });
const still = needed.filter((n) => !has(n.command)).map((n) => n.command);
if (still.length > 0) {
  process.stderr.write(`Still missing after install: ${still.join(', ')}\n`);
  process.exit(1);
}
