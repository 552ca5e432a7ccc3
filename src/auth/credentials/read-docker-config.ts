import { readFile } from 'node:fs';
import { RegauthError } from '../../errors/regauth-error.js';
import { type Credential, credentialFromSecret, hasSecret } from './credential.js';
import { isValidHelperName } from './credential-helper.js';

/** One `auths` entry, decoded. */
export interface AuthEntry {
  /** The key as written in the file. */
  readonly key: string;
  /** Undefined for entries without a secret, such as the `{}` docker leaves when a helper holds the secret. */
  readonly credential: Credential | undefined;
}

/** A docker config.json or containers auth.json, checked and decoded. */
export interface DockerConfigFile {
  readonly path: string;
  /** The whole document as parsed, so writers keep every field they do not understand. */
  readonly document: Record<string, unknown>;
  /** In file order. */
  readonly auths: readonly AuthEntry[];
  /** Key as written → helper name (the part after `docker-credential-`); `''` means "no helper". */
  readonly credHelpers: ReadonlyMap<string, string>;
  readonly credsStore: string | undefined;
}

/** The fields of an `auths` entry regauth reads; writers replace exactly these. */
export const AUTH_ENTRY_CREDENTIAL_FIELDS = [
  'auth',
  'username',
  'password',
  'identitytoken',
  'registrytoken',
] as const;

/**
 * Reads and checks a config file. A missing file is no configuration (`undefined`), as for
 * docker; an empty one is an empty configuration. Anything else that is not a well-formed
 * config throws ERR_INVALID_DOCKER_CONFIG naming the file and key — never the secret.
 */
export async function readDockerConfig(path: string): Promise<DockerConfigFile | undefined> {
  let text: string;
  try {
    text = await readText(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new RegauthError(
      'ERR_INVALID_DOCKER_CONFIG',
      `cannot read ${path} (${code ?? 'unknown error'}); check that it is a file you can read`,
      { cause: error },
    );
  }
  return parseDockerConfig(text, path);
}

/**
 * node:fs's callback form: node:fs/promises is not loaded at start-up, and a command that reads
 * only this file would load it for nothing but this.
 */
function readText(path: string): Promise<string> {
  return new Promise((resolve, reject) =>
    readFile(path, 'utf8', (error, text) => (error ? reject(error) : resolve(text))),
  );
}

export function parseDockerConfig(text: string, path: string): DockerConfigFile {
  // docker accepts an empty file (json.Decoder returns io.EOF) as an empty configuration.
  if (text.trim() === '') {
    return { path, document: {}, auths: [], credHelpers: new Map(), credsStore: undefined };
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    // The SyntaxError's message quotes the text around the mistake, which may be a secret:
    // keep only where it is, and no cause.
    const position = /position (\d+)/.exec((error as Error).message)?.[1];
    const where = position === undefined ? '' : ` at ${lineAndColumn(text, Number(position))}`;
    throw new RegauthError(
      'ERR_INVALID_DOCKER_CONFIG',
      `${path} is not valid JSON${where}; fix it, or move it away and log in again`,
    );
  }
  if (!isObject(document)) {
    throw invalid(path, 'the document', 'must be a JSON object such as {"auths": {}}');
  }

  const auths: AuthEntry[] = [];
  const rawAuths = document.auths;
  if (rawAuths !== undefined && rawAuths !== null) {
    if (!isObject(rawAuths)) {
      throw invalid(path, '"auths"', 'must be an object mapping registry hosts to credentials');
    }
    for (const [key, entry] of Object.entries(rawAuths)) {
      auths.push({ key, credential: decodeEntry(path, key, entry) });
    }
  }

  const credHelpers = new Map<string, string>();
  const rawHelpers = document.credHelpers;
  if (rawHelpers !== undefined && rawHelpers !== null) {
    if (!isObject(rawHelpers)) {
      throw invalid(path, '"credHelpers"', 'must be an object mapping registry hosts to helper names');
    }
    for (const [key, name] of Object.entries(rawHelpers)) {
      if (typeof name !== 'string' || (name !== '' && !isValidHelperName(name))) {
        throw invalid(
          path,
          `"credHelpers"["${key}"]`,
          'must be the name of a helper, the part after "docker-credential-" (such as "pass")',
        );
      }
      credHelpers.set(key, name);
    }
  }

  const credsStore = document.credsStore;
  if (credsStore !== undefined && credsStore !== null && credsStore !== '') {
    if (typeof credsStore !== 'string' || !isValidHelperName(credsStore)) {
      throw invalid(
        path,
        '"credsStore"',
        'must be the name of a helper, the part after "docker-credential-" (such as "desktop")',
      );
    }
    return { path, document, auths, credHelpers, credsStore };
  }
  return { path, document, auths, credHelpers, credsStore: undefined };
}

function decodeEntry(path: string, key: string, entry: unknown): Credential | undefined {
  const at = `"auths"["${key}"]`;
  if (!isObject(entry))
    throw invalid(path, at, 'must be an object such as {"auth": "<base64 of user:password>"}');
  const field = (name: string): string => {
    const value = entry[name];
    if (value === undefined || value === null) return '';
    if (typeof value !== 'string') throw invalid(path, `${at}.${name}`, 'must be a string');
    return value;
  };
  const auth = field('auth');
  let username = field('username');
  let password = field('password');
  const identityToken = field('identitytoken');
  const registryToken = field('registrytoken');

  if (auth !== '') {
    // Like docker's decodeAuth: base64 of `user:password`, split on the first colon (a password
    // may hold colons, a user name may not), trailing NULs trimmed.
    const decoded = decodeBase64(auth);
    const colon = decoded?.indexOf(':') ?? -1;
    if (decoded === undefined || colon <= 0) {
      throw invalid(
        path,
        `${at}.auth`,
        'must be the base64 encoding of "user:password"; log in again to rewrite it',
      );
    }
    username = decoded.slice(0, colon);
    password = decoded.slice(colon + 1).replace(/^\0+|\0+$/g, '');
  }

  const credential: Credential = {
    ...credentialFromSecret(username, password),
    ...(identityToken === '' ? {} : { identityToken }),
    ...(registryToken === '' ? {} : { registryToken }),
  };
  return hasSecret(credential) ? credential : undefined;
}

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

function decodeBase64(text: string): string | undefined {
  const compact = text.trim();
  // Go's StdEncoding wants padding; files written by hand often lack it, which is harmless.
  if (!BASE64_RE.test(compact) || compact.replace(/=+$/, '').length % 4 === 1) return undefined;
  return Buffer.from(compact, 'base64').toString('utf8');
}

function invalid(path: string, what: string, rule: string): RegauthError {
  return new RegauthError('ERR_INVALID_DOCKER_CONFIG', `${path}: ${what} ${rule}`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function lineAndColumn(text: string, position: number): string {
  const before = text.slice(0, position);
  const line = before.split('\n').length;
  const column = position - before.lastIndexOf('\n');
  return `line ${line} column ${column}`;
}
