import { loadServerConfig } from '../../server/server-config.js';
import { createTokenServer, type ServerLogEntry } from '../../server/token-server.js';

/** One JSON line per event on stderr, for journald, docker logs or jq. */
function writeLog(entry: ServerLogEntry): void {
  const level = 'level' in entry ? entry.level : 'info';
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...entry, level })}\n`);
}

export async function serveCommand(opts: { config: string }): Promise<void> {
  const config = await loadServerConfig(opts.config);
  const server = await createTokenServer(config, { log: writeLog, watchUsers: true });
  await server.listen();
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      process.off('SIGHUP', reload);
      void server.close().then(resolve);
    };
    const reload = () => void server.reloadUsers();
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    process.on('SIGHUP', reload);
  });
}
