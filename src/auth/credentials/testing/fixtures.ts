import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Test-only helpers for the credential sources: temp folders and real helper programs. */

export interface Sandbox {
  /** A fresh temp folder, removed by `cleanup`. */
  readonly dir: string;
  /** Holds the helper programs; first on the PATH of `env`. */
  readonly bin: string;
  /** The environment to hand to the code under test: only PATH, with `bin` first. */
  readonly env: Record<string, string>;
  cleanup(): Promise<void>;
}

export async function sandbox(): Promise<Sandbox> {
  const dir = await mkdtemp(join(tmpdir(), 'regauth-creds-'));
  const bin = join(dir, 'bin');
  await mkdir(bin);
  return {
    dir,
    bin,
    env: { PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}` },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Writes `docker-credential-<name>` into `bin` as an executable script. */
export async function writeHelper(bin: string, name: string, script: string): Promise<string> {
  const path = join(bin, `docker-credential-${name}`);
  await writeFile(path, script);
  await chmod(path, 0o755);
  return path;
}

/**
 * A helper that keeps its credentials in `<bin>/<name>.json` and appends one line per call to
 * `<bin>/<name>.log` (`get <url>`, `store <url> <username>`, `erase <url>`), like
 * docker-credential-pass would behave, including its "not found" answer.
 */
export async function writeStoringHelper(
  bin: string,
  name: string,
  initial: Record<string, { Username: string; Secret: string }> = {},
): Promise<{ log: () => Promise<string[]>; state: () => Promise<unknown> }> {
  const statePath = join(bin, `${name}.json`);
  const logPath = join(bin, `${name}.log`);
  await writeFile(statePath, JSON.stringify(initial));
  await writeHelper(
    bin,
    name,
    `#!/usr/bin/env node
const fs = require('node:fs');
const action = process.argv[2];
const input = fs.readFileSync(0, 'utf8');
const db = JSON.parse(fs.readFileSync(${JSON.stringify(statePath)}, 'utf8'));
const save = () => fs.writeFileSync(${JSON.stringify(statePath)}, JSON.stringify(db));
const log = (line) => fs.appendFileSync(${JSON.stringify(logPath)}, line + '\\n');
const notFound = () => { process.stdout.write('credentials not found in native keychain\\n'); process.exit(1); };
if (action === 'get') {
  log('get ' + input);
  const e = db[input];
  if (!e) notFound();
  process.stdout.write(JSON.stringify({ ServerURL: input, Username: e.Username, Secret: e.Secret }));
} else if (action === 'store') {
  const c = JSON.parse(input);
  log('store ' + c.ServerURL + ' ' + c.Username);
  db[c.ServerURL] = { Username: c.Username, Secret: c.Secret };
  save();
} else if (action === 'erase') {
  log('erase ' + input);
  if (!db[input]) notFound();
  delete db[input];
  save();
} else {
  process.stderr.write('unknown action ' + action + '\\n');
  process.exit(2);
}
`,
  );
  return {
    log: async () => {
      const text = await readFile(logPath, 'utf8').catch(() => '');
      return text.split('\n').filter((line) => line !== '');
    },
    state: async () => JSON.parse(await readFile(statePath, 'utf8')),
  };
}

export const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

export async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFile(path, JSON.stringify(value, null, 2));
}
