#!/usr/bin/env node
// Bundles the CLI into a few files (one per command group) so a start-up resolves and loads
// a handful of modules instead of dozens: regauth starts close to a bare `node`.
import { build } from 'esbuild';

await build({
  entryPoints: { main: 'src/cli/main.ts' },
  outdir: 'dist/cli-bundle',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  logLevel: 'warning',
  // Native, rarely used, or needing their own files at run time: loaded from node_modules.
  external: [
    'bcrypt',
    'undici',
    '@peculiar/x509',
    'reflect-metadata',
    'cli-progress',
    'tar-stream',
    'yaml',
    'jose',
  ],
  // Bundled CommonJS (commander) calls require() for Node built-ins.
  banner: {
    js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
  },
});
