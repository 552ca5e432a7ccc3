import { execFile } from 'node:child_process';

/**
 * Runs `script`, an ES module that may import the project's TypeScript files (through tsx), in a
 * Node process of its own, the runtime of the tests; resolves to what it printed. Not spawnSync:
 * servers of the calling test keep answering meanwhile.
 */
export function runModuleScript(
  script: string,
  options: { readonly env?: NodeJS.ProcessEnv; readonly timeoutMs?: number } = {},
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      {
        encoding: 'utf8',
        timeout: options.timeoutMs ?? 15_000,
        ...(options.env === undefined ? {} : { env: options.env }),
      },
      (_err, stdout, stderr) => resolve({ stdout, stderr }),
    ),
  );
}
