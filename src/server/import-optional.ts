import { RegauthError } from '../errors/regauth-error.js';

/**
 * Loads a package the token server needs but a client-only install leaves out (bcrypt is native;
 * yaml and @peculiar/x509 serve only the server and keygen). They are optional peer dependencies
 * of regauth, so `npm install regauth` does not fetch them; a server user installs them next to
 * regauth. `load` is a literal `import('name')` so bundlers still see which package it is.
 * A missing package becomes ERR_MISSING_DEPENDENCY naming the package and the install command;
 * any other failure (a broken native build, say) passes through unchanged.
 */
export async function importOptional<T>(name: string, neededFor: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (cause) {
    if (!isMissingPackage(cause, name)) throw cause;
    throw new RegauthError(
      'ERR_MISSING_DEPENDENCY',
      `${neededFor} needs the ${name} package, which is not installed: run \`npm install ${name}\` where regauth is installed (\`npm install -g ${name}\` for a global regauth)`,
      { cause },
    );
  }
}

function isMissingPackage(err: unknown, name: string): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as NodeJS.ErrnoException).code;
  // ESM says "Cannot find package 'x'", CommonJS (the CLI bundle) "Cannot find module 'x'". A
  // missing dependency of the package itself names that dependency instead, and is not ours to explain.
  return (
    (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') &&
    new RegExp(`Cannot find (?:package|module) '${name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}'`).test(
      err.message,
    )
  );
}
