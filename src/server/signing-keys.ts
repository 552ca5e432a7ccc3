import { X509Certificate } from 'node:crypto';
import { RegauthError } from '../errors/regauth-error.js';
import { loadSigningMaterial, type SigningMaterial } from './signing-key.js';
import { type PemSource, readPem } from './token-handler-config.js';

/** A signing key and its certificate, wherever they come from. */
export interface SigningKeySource {
  /** The signing key (PKCS#8 or SEC1/PKCS#1 PEM). */
  readonly key: PemSource;
  /** The certificate of that key (leaf first, then any chain). */
  readonly certificate: PemSource;
}

/** A signing key source with where it sits in the config, for messages: `token` or `token.keys[1]`. */
export interface ConfiguredSigningKey extends SigningKeySource {
  readonly path: string;
}

/** How messages name a key or certificate: the config key, and the file when it is one. */
function sourceLabel(source: PemSource, path: string): string {
  return 'file' in source ? `${path} (${source.file})` : path;
}

/**
 * Reads and checks every configured key and certificate (a matching pair, inside its validity
 * period, an algorithm the registry verifies); a failure names the pair's config key path.
 * The first key signs; all of them check refresh tokens, and all certificates go into the
 * registry's `rootcertbundle`, so a rotation keeps tokens of the previous key valid.
 */
export async function loadSigningKeys(
  keys: readonly ConfiguredSigningKey[],
  now: Date = new Date(),
): Promise<SigningMaterial[]> {
  if (keys.length === 0) {
    throw new RegauthError('ERR_INVALID_CONFIG', 'token.keys: list at least one key and certificate');
  }
  // Every file is read at once, but a failure is told in a fixed order (the first pair's first,
  // each pair's key before its certificate): the message does not depend on which read the file
  // system finished first.
  const settled = await Promise.allSettled(
    keys.map(async (pair) => {
      const [keyRead, certRead] = await Promise.allSettled([
        readPem(pair.key, `signing key (${pair.path}.key)`),
        readPem(pair.certificate, `signing certificate (${pair.path}.certificate)`),
      ]);
      if (keyRead.status === 'rejected') throw keyRead.reason;
      if (certRead.status === 'rejected') throw certRead.reason;
      const keyPem = keyRead.value;
      const certPem = certRead.value;
      return loadSigningMaterial(
        keyPem,
        certPem,
        {
          key: sourceLabel(pair.key, `${pair.path}.key`),
          certificate: sourceLabel(pair.certificate, `${pair.path}.certificate`),
        },
        now,
      );
    }),
  );
  const loaded = settled.map((result) => {
    if (result.status === 'rejected') throw result.reason;
    return result.value;
  });
  const seen = new Map<string, string>();
  loaded.forEach((material, i) => {
    const path = (keys[i] as ConfiguredSigningKey).path;
    const earlier = seen.get(material.kid);
    if (earlier !== undefined) {
      throw new RegauthError(
        'ERR_INVALID_CONFIG',
        `${path}: the same key as ${earlier}; list each key once (a rotation adds a new key)`,
      );
    }
    seen.set(material.kid, path);
  });
  return loaded;
}

/**
 * The PEM bundle of every certificate of every key, each once: what the registry's
 * `auth.token.rootcertbundle` must hold. distribution verifies a token's `x5c` chain against
 * these roots (3.x, and 2.8 for tokens with `x5c`) or looks its `kid` up among their public keys
 * (2.8, registry/auth/token/accesscontroller.go), so the leaf certificates are in it as well as
 * any chain.
 */
export function certificateBundle(keys: readonly SigningMaterial[]): string {
  const seen = new Set<string>();
  const pems: string[] = [];
  for (const key of keys) {
    for (const der of key.x5c) {
      if (seen.has(der)) continue;
      seen.add(der);
      const certificate = new X509Certificate(Buffer.from(der, 'base64'));
      pems.push(
        `# ${certificate.subject.replace(/\n/g, ', ')}, expires ${certificate.validTo}\n${certificate.toString()}`,
      );
    }
  }
  return pems.join('');
}
