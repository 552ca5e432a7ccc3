/**
 * `npm run demo`: the seed's exchange (docker-registry-auth-in-go.md) against a local stack.
 * Starts the real registry trusting `regauth serve`, pushes a small image
 * `odewahn/myalpine:latest` with `regauth push`, then fetches its manifest the way the seed
 * does by hand.
 * `npm run demo -- --keep` leaves the stack running until Ctrl-C (or SIGTERM), with the user's
 * password in a file of the demo's folder (mode 0600, removed at the end) so one can log in.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { buildOciLayout } from '../test/harness/oci-layout.js';
import { REGAUTH_BIN, startTokenStack } from '../test/harness/token-server.js';

const keep = process.argv.includes('--keep');
const say = (text: string) => process.stdout.write(`${text}\n`);

execFileSync(process.execPath, [join(import.meta.dirname, 'ensure-system-deps.mjs')], { stdio: 'inherit' });

const password = randomBytes(12).toString('base64url');
const stack = await startTokenStack({
  users: { odewahn: password },
  acl: [
    { match: { account: '/.+/', name: '${account}/*' }, actions: ['pull', 'push', 'delete'] },
    { match: { account: '', name: 'library/**' }, actions: ['pull'] },
  ],
  service: 'registry.local',
  issuer: 'auth.local',
});
const work = await mkdtemp(join(tmpdir(), 'regauth-demo-'));
const cleanup = async () => {
  await stack.stop();
  await rm(work, { recursive: true, force: true });
};

try {
  const { registry, tokenServer } = stack;
  say(`registry (CNCF distribution):  ${registry.url}`);
  say(`token server (regauth serve):  ${tokenServer.realm}`);
  say('user: odewahn (password generated for this run)\n');

  const image = await buildOciLayout(join(work, 'layout'), { tag: 'latest' });
  const env = {
    ...process.env,
    REGAUTH_USERNAME: 'odewahn',
    REGAUTH_PASSWORD: password,
    XDG_CACHE_HOME: join(work, 'cache'),
  };
  execFileSync(
    REGAUTH_BIN,
    ['push', join(work, 'layout'), `${registry.host}/odewahn/myalpine:latest`, '--quiet'],
    {
      env,
      stdio: 'inherit',
    },
  );
  say(`pushed ${registry.host}/odewahn/myalpine:latest (${image.manifestDigest}) with regauth push\n`);

  const ref = `${registry.host}/odewahn/myalpine:latest`;
  say(`$ REGAUTH_USERNAME=odewahn REGAUTH_PASSWORD=… regauth manifest ${ref} --trace --no-token-cache\n`);
  // The seed's three steps: the 401 challenge, the token request with Basic credentials, the retry.
  const manifest = execFileSync(REGAUTH_BIN, ['manifest', ref, '--trace', '--no-token-cache'], {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  say(`\n(stdout: the manifest bytes, ${manifest.length} bytes, exactly as served)`);
  say(manifest.toString());
  say('');
  await new Promise((r) => setTimeout(r, 200)); // let the server's last log lines arrive
  say('token server log (one line per token request; no password or token in it):');
  for (const line of tokenServer.logEntries().filter((e) => e.msg === 'token'))
    say(`  ${JSON.stringify(line)}`);

  if (keep) {
    const passwordFile = join(work, 'odewahn.password');
    await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
    const bin = relative(process.cwd(), REGAUTH_BIN) || REGAUTH_BIN;
    const cli = bin.startsWith('/') || bin.startsWith('.') ? bin : `./${bin}`;
    say(
      [
        '',
        `The stack keeps running. Log in as odewahn (the password is in ${passwordFile}):`,
        `  ${cli} login ${registry.host} -u odewahn --password-stdin < ${passwordFile}`,
        `  ${cli} manifest ${ref}`,
        `  ${cli} token ${registry.host}/odewahn/myalpine --decode`,
        `  ${cli} logout ${registry.host}`,
        'odewahn may pull, push and delete odewahn/*; anonymous users may pull library/*.',
        'Ctrl-C stops it and removes everything it made.',
      ].join('\n'),
    );
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
  }
} finally {
  await cleanup();
}
