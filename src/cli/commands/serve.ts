import { checkConfigFiles } from '../../server/config-files.js';
import { loadServerConfig } from '../../server/server-config.js';
import { certificateBundle, loadSigningKeys } from '../../server/signing-keys.js';
import { handlerConfigFromServerConfig } from '../../server/token-handler-config.js';
import { createTokenServer, type ServerLogEntry, type TokenServer } from '../../server/token-server.js';
import { serverLogLine } from '../server-log-line.js';

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
  if (pending.length === 0) setImmediate(flushLog);
  pending.push(serverLogLine(entry, new Date()));
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
  if (opts.printBundle) {
    const config = await loadServerConfig(opts.config);
    await checkConfigFiles(config);
    const keys = await loadSigningKeys(handlerConfigFromServerConfig(config).token.keys);
    process.stdout.write(certificateBundle(keys));
    return;
  }
  // The signal handlers come first: start-up reads files and may wait for directories or Redis,
  // and a SIGHUP by then (a config management run, `systemctl reload` just after start) would
  // end the process with Node's default action. A SIGHUP before listening reloads once it
  // listens; a SIGTERM or SIGINT ends the start-up and exits cleanly.
  let server: TokenServer | undefined;
  let listening = false;
  let stopping = false;
  let reloadWanted = false;
  let stopped: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    stopped = resolve;
  });
  const release = () => {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
    process.off('SIGHUP', reload);
  };
  const shutDown = () => {
    release();
    void (server?.close() ?? Promise.resolve()).then(() => {
      flushLog();
      stopped();
    });
  };
  function stop(): void {
    if (stopping) return;
    stopping = true;
    if (listening) shutDown();
  }
  // The whole file, not only the users. reload() logs its failures and should never reject;
  // should it anyway, a SIGHUP must not end the server through an unhandled rejection.
  function reload(): void {
    if (!listening || server === undefined) {
      reloadWanted = true;
      return;
    }
    void server.reload().catch((err: unknown) => reloadRejected(err));
  }
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', reload);
  try {
    const config = await loadServerConfig(opts.config);
    server = await createTokenServer(config, {
      log: writeLog,
      watchUsers: true,
      configFile: opts.config,
    });
    if (!stopping) {
      await server.listen();
      listening = true;
    }
  } catch (err) {
    release();
    await server?.close();
    throw err;
  }
  if (stopping) shutDown();
  else if (reloadWanted) reload();
  await finished;
}
