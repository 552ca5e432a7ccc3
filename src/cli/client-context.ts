import { homedir } from 'node:os';
import { cachedCredentialSource } from '../auth/credentials/cached-credential-source.js';
import { chainCredentials } from '../auth/credentials/chain-credentials.js';
import type { CredentialSource } from '../auth/credentials/credential.js';
import { defaultCredentialSources } from '../auth/credentials/default-credential-sources.js';
import { FileTokenStore } from '../auth/file-token-store.js';
import { createRegistryClients, type RegistryClients } from '../registry/create-registry-clients.js';
import type { Tracer } from '../transport/trace.js';
import { CREDENTIALS_FLAGS_LABEL } from './credentials-flags-label.js';
import { readyHostNameCheck } from './host-name-check.js';
import { formatTraceEvent } from './print-trace.js';
import { canPrompt, readTerminalLine } from './read-terminal-line.js';
import { terminalSession } from './terminal-session.js';

/** The flags every command that talks to a registry takes. */
export interface ClientFlags {
  readonly trace?: boolean;
  readonly username?: string;
  readonly passwordStdin?: boolean;
  readonly authfile?: string;
  readonly insecure?: boolean;
  readonly caFile?: string;
  /** commander's `--no-token-cache` sets this to false. */
  readonly tokenCache?: boolean;
}

export async function readStdinSecret(): Promise<string> {
  // On a terminal the line discipline would echo what is typed: read it with echo off instead.
  if (canPrompt()) return readTerminalLine('Password: ', { echo: false });
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) chunks.push(chunk);
  // Like docker login --password-stdin: one trailing newline is not part of the password.
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

export interface ClientContext {
  readonly clients: RegistryClients;
  readonly store: FileTokenStore | undefined;
  readonly trace: Tracer | undefined;
}

/** The user's token cache; says on stderr when it is not used because others could write it. */
export function cliTokenStore(): FileTokenStore {
  return new FileTokenStore(undefined, {
    // A warning may come mid-transfer (the cache written after a token): above the bars.
    onWarning: (message) => terminalSession().log(`regauth: warning: ${message}`),
  });
}

/**
 * Transport, auth and registry clients as the flags ask. `credentials` replaces the user's
 * credential sources (login checks exactly the credential it was given); `sharedStore` is a
 * token cache another context of the same command uses too (a copy with two accounts).
 */
export async function clientContext(
  flags: ClientFlags,
  registry?: string,
  credentials?: CredentialSource,
  sharedStore?: FileTokenStore,
): Promise<ClientContext> {
  const env = process.env;
  const trace: Tracer | undefined = flags.trace
    ? (e) => process.stderr.write(formatTraceEvent(e))
    : undefined;
  credentials ??= await userCredentials(flags, registry);
  const store = flags.tokenCache === false ? undefined : (sharedStore ?? cliTokenStore());
  const clients = createRegistryClients({
    credentials,
    env,
    ...(trace === undefined ? {} : { trace }),
    ...(store === undefined ? {} : { store }),
    ...(flags.insecure === undefined ? {} : { insecure: flags.insecure }),
    ...(flags.caFile === undefined ? {} : { caFile: flags.caFile }),
  });
  // The registry's TCP and TLS handshakes go on while credentials and the token cache are read.
  if (registry !== undefined) {
    readyHostNameCheck(registry);
    clients.preconnect(registry);
  }
  return { clients, store, trace };
}

async function userCredentials(flags: ClientFlags, registry: string | undefined): Promise<CredentialSource> {
  const env = process.env;
  const password = flags.passwordStdin ? await readStdinSecret() : undefined;
  return cachedCredentialSource(
    chainCredentials(
      defaultCredentialSources({
        env,
        homedir: env.HOME || homedir(),
        ...(flags.username === undefined ? {} : { username: flags.username }),
        ...(password === undefined ? {} : { password }),
        ...(registry === undefined ? {} : { registry }),
        ...(flags.authfile === undefined ? {} : { authfile: flags.authfile }),
        credentialsLabel: CREDENTIALS_FLAGS_LABEL,
        authfileLabel: '--authfile',
      }),
    ),
  );
}
