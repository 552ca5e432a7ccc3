import { homedir } from 'node:os';
import { cachedCredentialSource } from '../auth/credentials/cached-credential-source.js';
import { chainCredentials } from '../auth/credentials/chain-credentials.js';
import type { CredentialSource } from '../auth/credentials/credential.js';
import { defaultCredentialSources } from '../auth/credentials/default-credential-sources.js';
import { staticCredentials } from '../auth/credentials/static-credentials.js';
import { RegauthError } from '../errors/regauth-error.js';
import type { RegistryClient } from '../registry/registry-client.js';
import { type ClientFlags, clientContext, cliTokenStore, readStdinSecret } from './client-context.js';
import { CREDENTIALS_FLAGS_LABEL } from './credentials-flags-label.js';
import { canPrompt, readTerminalLine } from './read-terminal-line.js';
import { terminalSession } from './terminal-session.js';

/** skopeo copy's names for the credentials of each side. */
export interface CopyCredentialFlags extends ClientFlags {
  /** `--src-creds USER[:PASSWORD]` */
  readonly srcCreds?: string;
  /** `--dest-creds USER[:PASSWORD]` */
  readonly destCreds?: string;
  readonly srcAuthfile?: string;
  readonly destAuthfile?: string;
}

interface Side {
  /** The flag's name without its dashes: `src` or `dest`. */
  readonly name: 'src' | 'dest';
  readonly registry: string;
  readonly creds: string | undefined;
  readonly authfile: string | undefined;
}

/**
 * The clients a copy reads the source and writes the destination with. Without per-side flags
 * one client serves both (one token can then cover a mount within a registry). With
 * `--src-creds`/`--dest-creds`/`--src-authfile`/`--dest-authfile` each side gets its own
 * credentials, asked in this order: the side's `--X-creds`, `-u`/`--password-stdin` (only when
 * neither side's account is named), REGAUTH_USERNAME/REGAUTH_PASSWORD, the side's auth file (else
 * `--authfile`, REGISTRY_AUTH_FILE, docker's and podman's files) — as skopeo copy does.
 */
export async function copyClients(
  flags: CopyCredentialFlags,
  srcRegistry: string,
  dstRegistry: string,
): Promise<{ src: RegistryClient; dst: RegistryClient }> {
  const perSide =
    flags.srcCreds !== undefined ||
    flags.destCreds !== undefined ||
    flags.srcAuthfile !== undefined ||
    flags.destAuthfile !== undefined;
  if (!perSide) {
    const { clients } = await clientContext(flags, srcRegistry === dstRegistry ? srcRegistry : undefined);
    return { src: clients.forRegistry(srcRegistry), dst: clients.forRegistry(dstRegistry) };
  }
  const named = flags.srcCreds !== undefined || flags.destCreds !== undefined;
  if (named && (flags.username !== undefined || flags.passwordStdin)) {
    throw new RegauthError(
      'ERR_USAGE',
      '-u/--password-stdin apply to both sides of a copy; with --src-creds or --dest-creds, give each side its own',
    );
  }
  const password = flags.passwordStdin ? await readStdinSecret() : undefined;
  const env = process.env;
  const sides: Side[] = [
    { name: 'src', registry: srcRegistry, creds: flags.srcCreds, authfile: flags.srcAuthfile },
    { name: 'dest', registry: dstRegistry, creds: flags.destCreds, authfile: flags.destAuthfile },
  ];
  const sources: CredentialSource[] = [];
  // One after the other: a side may prompt for its password.
  for (const side of sides) {
    const given = side.creds === undefined ? [] : [await credsFlag(side, side.creds)];
    const authfile = side.authfile ?? flags.authfile;
    const rest = defaultCredentialSources({
      env,
      homedir: env.HOME || homedir(),
      ...(flags.username === undefined ? {} : { username: flags.username }),
      ...(password === undefined ? {} : { password }),
      ...(authfile === undefined ? {} : { authfile }),
      credentialsLabel: CREDENTIALS_FLAGS_LABEL,
      authfileLabel: side.authfile === undefined ? '--authfile' : `--${side.name}-authfile`,
    });
    sources.push(cachedCredentialSource(chainCredentials([...given, ...rest])));
  }
  const [srcSource, dstSource] = sources as [CredentialSource, CredentialSource];
  const store = flags.tokenCache === false ? undefined : cliTokenStore();
  const src = await clientContext(flags, srcRegistry, srcSource, store);
  const dst = await clientContext(flags, dstRegistry, dstSource, store);
  return { src: src.clients.forRegistry(srcRegistry), dst: dst.clients.forRegistry(dstRegistry) };
}

/** `USER[:PASSWORD]`, split at the first colon as skopeo does; no password: asked on a terminal. */
async function credsFlag(side: Side, creds: string): Promise<CredentialSource> {
  const flag = `--${side.name}-creds`;
  const colon = creds.indexOf(':');
  const username = colon < 0 ? creds : creds.slice(0, colon);
  let password = colon < 0 ? '' : creds.slice(colon + 1);
  // As docker warns for -p: a password in the arguments is visible to every user (ps, /proc).
  if (password !== '') {
    terminalSession().log(
      `WARNING! Using a password in ${flag} is insecure: others on this machine can see it. Give ${flag} ${username} to be asked for it.`,
    );
  }
  if (password === '') {
    if (!canPrompt()) {
      throw new RegauthError(
        'ERR_USAGE',
        `${flag} ${username} has no password, and standard input is not a terminal to ask for it: ` +
          `give ${flag} ${username}:PASSWORD`,
      );
    }
    password = await readTerminalLine(`Password for ${username} at ${side.registry} (${flag}): `, {
      echo: false,
    });
  }
  return staticCredentials({ username, password, source: flag });
}
