#!/usr/bin/env node
// Bundles the CLI as CommonJS: a small main file (`--version`, signals, exit), the parser and
// dispatch (program), and one file per command, each required only when needed. A start-up then
// loads at most three files and takes
// Node's built-ins through require(), without the ESM loader's per-module resolution and
// per-built-in facades, which cost a bare command more than its own work (bench scenarios 1–3, 9).
import { readdirSync, readFileSync } from 'node:fs';
import { build } from 'esbuild';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const commands = readdirSync('src/cli/commands').filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));

/**
 * main.ts's `import('./program.js')` and program.ts's `import('./commands/x.js')` stay lazy
 * requires of those bundles.
 */
const lazyBundles = {
  name: 'lazy-bundles',
  setup(b) {
    b.onResolve({ filter: /^\.\/program\.js$/ }, (args) =>
      args.importer.endsWith('main.ts') ? { path: './program.cjs', external: true } : undefined,
    );
    b.onResolve({ filter: /^\.\/commands\/[\w-]+\.js$/ }, (args) =>
      args.importer.endsWith('program.ts')
        ? { path: args.path.replace(/\.js$/, '.cjs'), external: true }
        : undefined,
    );
  },
};

/**
 * commander requires node:child_process at load for executable subcommands, which regauth has
 * none of; that module pulls in net, stream and dgram (a third of a bare start-up on Node 20).
 * Within commander it is required on first use instead.
 */
const lazyChildProcess = {
  name: 'lazy-child-process',
  setup(b) {
    b.onResolve({ filter: /^node:child_process$/ }, (args) =>
      /[\\/]node_modules[\\/]commander[\\/]/.test(args.importer)
        ? { path: 'child_process', namespace: 'lazy-child-process' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'lazy-child-process' }, () => ({
      contents: "module.exports = { spawn: (...args) => require('node:child_process').spawn(...args) };",
      loader: 'js',
    }));
  },
};

await build({
  entryPoints: {
    main: 'src/cli/main.ts',
    program: 'src/cli/program.ts',
    // Loaded by bin/regauth: the V8 code cache, the REGAUTH_TIMING diagnostic.
    'code-cache': 'src/cli/code-cache.ts',
    'start-up-timing': 'src/cli/start-up-timing.ts',
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
  plugins: [lazyBundles, lazyChildProcess],
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
