import { describe, expect, it } from 'vitest';
import { isRegauthError } from '../errors/regauth-error.js';
import { importOptional } from './import-optional.js';

// A name no registry has: the import fails the way a left-out optional peer does.
const ABSENT = 'regauth-absent-optional-peer';

describe('importOptional', () => {
  it('returns the module when it is installed', async () => {
    const yaml = await importOptional('yaml', 'reading a YAML config file', () => import('yaml'));
    expect(yaml.parse('a: 1')).toEqual({ a: 1 });
  });

  it('turns a missing package into ERR_MISSING_DEPENDENCY with the install command', async () => {
    const name: string = ABSENT;
    const err = await importOptional(ABSENT, 'checking htpasswd passwords', () => import(name)).catch(
      (e) => e,
    );
    expect(isRegauthError(err)).toBe(true);
    expect(err.code).toBe('ERR_MISSING_DEPENDENCY');
    expect(err.message).toBe(
      `checking htpasswd passwords needs the ${ABSENT} package, which is not installed: run \`npm install ${ABSENT}\` where regauth is installed (\`npm install -g ${ABSENT}\` for a global regauth)`,
    );
  });

  it('says the same for a CommonJS require (the CLI bundle)', async () => {
    const { createRequire } = await import('node:module');
    const require = createRequire(import.meta.url);
    const err = await importOptional(ABSENT, 'x', async () => require(ABSENT)).catch((e) => e);
    expect(err.code).toBe('ERR_MISSING_DEPENDENCY');
  });

  it('passes through a package that fails for another reason, or misses a dependency of its own', async () => {
    const broken = new Error('bcrypt_lib.node: invalid ELF header');
    await expect(importOptional('bcrypt', 'x', () => Promise.reject(broken))).rejects.toBe(broken);
    const name: string = ABSENT;
    // The package is there but its own dependency is not: that is not the missing package.
    const err = await importOptional('bcrypt', 'x', () => import(name)).catch((e) => e);
    expect(err.code).toBe('ERR_MODULE_NOT_FOUND');
  });
});
