import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts', 'bench/**/*.test.ts'],
          // vitest's 5 s default is too tight on a loaded 2-core machine, where generating an RSA
          // test key alone took over 5 s (signing-keys.test.ts) and CI runs the unit tests thrice
          // (Node 20, 22 and 24).
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/**/*.test.ts'],
          // Each file starts real registries and token servers; give them room on a 2-core machine.
          testTimeout: 60_000,
          hookTimeout: 60_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
