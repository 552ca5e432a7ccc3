import type { SecureContextOptions } from 'node:tls';
import { checkRestartOnlySections } from './check-restart-only-sections.js';
import { coalescedRun } from './coalesced-run.js';
import { configChanges } from './config-changes.js';
import { checkConfigFiles } from './config-files.js';
import { loadServerConfig, type TokenServerConfig } from './server-config.js';
import type { ServerLogEntry } from './server-log-entry.js';
import type { CheckedHandlerConfig } from './token-handler-config.js';
import { handlerConfigFromServerConfig } from './token-handler-config.js';

/** What a reload of `regauth serve`'s config file changes in the running server. */
export interface ServerReloadTarget {
  /** The file to read again. */
  readonly configFile: string;
  /** The config the server was started with: restart-only keys are compared against it. */
  readonly started: TokenServerConfig;
  /** Builds and swaps in the token handler's new generation; rejects and changes nothing on failure. */
  readonly reloadHandler: (config: CheckedHandlerConfig) => Promise<void>;
  /** Loads a new certificate and key into the listening TLS server (https.Server#setSecureContext). */
  readonly setSecureContext?: (options: SecureContextOptions) => void;
  /** Called with the new config once it is in use (trusted proxies, htpasswd watchers). */
  readonly applied: (config: TokenServerConfig) => void;
  readonly log: (entry: ServerLogEntry) => void;
}

const FAILED_HINT =
  'the server keeps running with the config it had; fix the file (regauth serve --check --config FILE tells what is wrong) and send SIGHUP again';

/**
 * The whole-config reload of a running `regauth serve` (SIGHUP): reads and checks the file and
 * every file it names, builds the new handler generation, and only then swaps it in, loads new
 * TLS files, and logs what changed by section name. Any failure changes nothing and is logged
 * with the config key path, as at start-up. Keys a running server cannot change
 * (RESTART_ONLY_KEYS) keep their started value, with a warning per reload while they differ;
 * they are checked all the same, and a value the next start would refuse fails the reload.
 * Reloads run one at a time; calls during one fold into one more run after it.
 */
export function createServerReload(target: ServerReloadTarget): () => Promise<void> {
  let applied = target.started;
  const { log, started } = target;
  const reloadOnce = async (): Promise<void> => {
    let next: TokenServerConfig;
    let tlsPair: SecureContextOptions | undefined;
    try {
      next = await loadServerConfig(target.configFile);
      await checkConfigFiles(next);
      // What only a restart applies is still checked as a restart would: else it fails then.
      const checkedTls = await checkRestartOnlySections(next);
      const tlsStays = started.tls !== undefined && next.tls !== undefined;
      tlsPair = tlsStays && target.setSecureContext !== undefined ? checkedTls : undefined;
      await target.reloadHandler(handlerConfigFromServerConfig(next));
    } catch (err) {
      log({
        msg: 'config reload failed',
        level: 'error',
        error: (err as Error)?.message ?? String(err),
        hint: FAILED_HINT,
      });
      return;
    }
    if (tlsPair !== undefined) target.setSecureContext?.(tlsPair);
    const changes = configChanges(started, applied, next);
    applied = next;
    target.applied(next);
    if (changes.restartOnly.length > 0) {
      log({
        msg: 'config change needs a restart',
        level: 'warn',
        keys: changes.restartOnly,
        hint: 'these keys keep the value the server started with until it is restarted; everything else was applied',
      });
    }
    log({
      msg: 'config reloaded',
      changed: changes.sections,
      ...(tlsPair === undefined ? {} : { tls: 'reloaded' as const }),
    });
  };
  return coalescedRun(reloadOnce);
}
