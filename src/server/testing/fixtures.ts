import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcrypt';
import { generateSigningKey, type KeygenAlgorithm } from '../generate-signing-key.js';
import { loadSigningMaterial, type SigningMaterial } from '../signing-key.js';

/** Test-only helpers shared by the server's unit tests. */

const keyCache = new Map<KeygenAlgorithm, Promise<{ keyPem: string; certPem: string }>>();

/** One key pair per algorithm per test process: RSA generation is slow. */
export function testKeyPair(
  algorithm: KeygenAlgorithm = 'ES256',
): Promise<{ keyPem: string; certPem: string }> {
  let pair = keyCache.get(algorithm);
  if (!pair) {
    pair = generateSigningKey({ algorithm });
    keyCache.set(algorithm, pair);
  }
  return pair;
}

export async function testSigning(algorithm: KeygenAlgorithm = 'ES256'): Promise<SigningMaterial> {
  const pair = await testKeyPair(algorithm);
  return loadSigningMaterial(pair.keyPem, pair.certPem, { key: 'key.pem', certificate: 'cert.pem' });
}

/** An htpasswd line as `htpasswd -B` writes it, at the lowest cost. */
export function htpasswdLine(user: string, password: string): string {
  return `${user}:${bcrypt.hashSync(password, 4).replace(/^\$2b\$/, '$2y$')}`;
}

/** A folder with key, certificate and htpasswd files, and a config document pointing at them. */
export async function testServerFiles(users: Readonly<Record<string, string>>): Promise<{
  dir: string;
  htpasswd: string;
  raw: Record<string, unknown>;
}> {
  const dir = await mkdtemp(join(tmpdir(), 'regauth-unit-'));
  const pair = await testKeyPair();
  await writeFile(join(dir, 'key.pem'), pair.keyPem);
  await writeFile(join(dir, 'cert.pem'), pair.certPem);
  const htpasswd = join(dir, 'users.htpasswd');
  await writeFile(
    htpasswd,
    Object.entries(users)
      .map(([u, p]) => `${htpasswdLine(u, p)}\n`)
      .join(''),
  );
  return {
    dir,
    htpasswd,
    raw: {
      listen: '127.0.0.1:0',
      token: { issuer: 'unit-issuer', service: 'unit-registry', key: 'key.pem', certificate: 'cert.pem' },
      users: { htpasswd: 'users.htpasswd' },
      acl: [
        { match: { account: 'admin' }, actions: ['*'] },
        { match: { account: '/.+/', name: '${account}/*' }, actions: ['pull', 'push', 'delete'] },
        { match: { account: '', name: 'public/**' }, actions: ['pull'] },
      ],
    },
  };
}
