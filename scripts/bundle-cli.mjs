#!/usr/bin/env node
// Bundles the CLI as CommonJS: a small main file (the parser and dispatch) and one file per
// command, required only when that command runs. A start-up then loads two files and takes
// Node's built-ins through require(), without the ESM loader's per-module resolution and
// per-built-in facades, which cost a bare command more than its own work (bench scenarios 1–3, 9).
import { readdirSync, readFileSync } from 'node:fs';
import { build } from 'esbuild';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const commands = readdirSync('src/cli/commands').filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));

/** main.ts's `import('./commands/x.js')` stays a lazy require of the command's own bundle. */
const lazyCommands = {
  name: 'lazy-commands',
  setup(b) {
    b.onResolve({ filter: /^\.\/commands\/[\w-]+\.js$/ }, (args) =>
      args.importer.endsWith('main.ts')
        ? { path: args.path.replace(/\.js$/, '.cjs'), external: true }
        : undefined,
    );
  },
};

await build({
  entryPoints: {
    main: 'src/cli/main.ts',
    ...Object.fromEntries(
      commands.map((f) => [`commands/${f.replace(/\.ts$/, '')}`, `src/cli/commands/${f}`]),
    ),
  },
  outdir: 'dist/cli-bundle',
  outExtension: { '.js': '.cjs' },
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  // No maps: they would point at src/, which the package does not ship.
  sourcemap: false,
  logLevel: 'warning',
  plugins: [lazyCommands],
  // import() of a command becomes require(): through the ESM loader, Node would first scan each
  // CommonJS file with its export lexer (25 ms for a command, measured).
  supported: { 'dynamic-import': false },
  define: { __REGAUTH_VERSION__: JSON.stringify(version) },
  // bcrypt is native and cannot be bundled: an optional peer dependency, loaded by `serve` when
  // it checks a password. undici and tar-stream are the library's own dependencies, installed
  // anyway. Everything else the CLI uses (commander, cli-progress, yaml, @peculiar/x509, ldapts,
  // prom-client, ioredis) is inlined here, so those are devDependencies and a client-only `npm install regauth` skips them;
  // a command's bundle still loads only when that command runs.
  external: ['bcrypt', 'undici', 'tar-stream'],
});
