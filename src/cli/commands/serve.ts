import { checkConfigFiles } from '../../server/config-files.js';
import { loadServerConfig } from '../../server/server-config.js';
import { certificateBundle, loadSigningKeys } from '../../server/signing-keys.js';
import { handlerConfigFromServerConfig } from '../../server/token-handler-config.js';
import { createTokenServer, type ServerLogEntry } from '../../server/token-server.js';

/**
 * One JSON line per event on stderr, for journald, docker logs or jq. Lines are gathered and
 * written once per turn of the event loop: stderr to a pipe is a synchronous write on Linux, and
 * one system call per token request showed up in the load test (bench scenario 8).
 */
let pending: string[] = [];
function flushLog(): void {
  if (pending.length === 0) return;
  const text = pending.join('');
  pending = [];
  process.stderr.write(text);
}
function writeLog(entry: ServerLogEntry): void {
  const level = 'level' in entry ? entry.level : 'info';
  if (pending.length === 0) setImmediate(flushLog);
  pending.push(`${JSON.stringify({ time: new Date().toISOString(), ...entry, level })}\n`);
}

function reloadRejected(err: unknown): void {
  writeLog({
    msg: 'config reload failed',
    level: 'error',
    error: (err as Error)?.message ?? String(err),
    hint: 'the server keeps running; send SIGHUP again, or restart it if this repeats',
  });
}

export async function serveCommand(opts: { config: string; printBundle?: boolean }): Promise<void> {
  const config = await loadServerConfig(opts.config);
  if (opts.printBundle) {
    await checkConfigFiles(config);
    const keys = await loadSigningKeys(handlerConfigFromServerConfig(config).token.keys);
    process.stdout.write(certificateBundle(keys));
    return;
  }
  const server = await createTokenServer(config, {
    log: writeLog,
    watchUsers: true,
    configFile: opts.config,
  });
  await server.listen();
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      process.off('SIGHUP', reload);
      void server.close().then(() => {
        flushLog();
        resolve();
      });
    };
    // The whole file, not only the users. reload() logs its failures and should never reject;
    // should it anyway, a SIGHUP must not end the server through an unhandled rejection.
    const reload = () => void server.reload().catch((err: unknown) => reloadRejected(err));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    process.on('SIGHUP', reload);
  });
}
