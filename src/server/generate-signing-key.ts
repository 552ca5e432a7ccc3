import { createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { fileSystemError } from '../errors/file-system-error.js';
import { RegauthError } from '../errors/regauth-error.js';
import { importOptional } from './import-optional.js';

/** The algorithms `regauth keygen` makes keys for; both are accepted by every distribution release. */
export type KeygenAlgorithm = 'ES256' | 'RS256';

/** What generateSigningKey makes: the key's algorithm and the certificate's subject and lifetime. */
export interface GenerateSigningKeyOptions {
  /** Left out: ES256 (P-256): small tokens, fast signatures, accepted by distribution 2.8 and 3.x. */
  readonly algorithm?: KeygenAlgorithm;
  /** The certificate's subject common name. Left out: DEFAULT_KEYGEN_SUBJECT. */
  readonly subject?: string;
  /** Days the certificate is valid. Left out: DEFAULT_KEYGEN_DAYS. */
  readonly days?: number;
  /** When the certificate starts to be valid. Left out: now. */
  readonly now?: Date;
}

export const DEFAULT_KEYGEN_SUBJECT = 'regauth token signer';
/** A year: long enough to forget, short enough that a leaked key does not outlive its purpose. */
export const DEFAULT_KEYGEN_DAYS = 365;
export const RSA_KEYGEN_BITS = 3072;

/** A signing key and its certificate, both PEM, as `regauth keygen` writes them. */
export interface SigningKeyPair {
  /** PKCS#8 PEM private key. */
  readonly keyPem: string;
  /** Self-signed certificate PEM: the token server sends it as `x5c`, the registry's `rootcertbundle` holds it. */
  readonly certPem: string;
}

/** Makes a signing key and a self-signed certificate for it, ready for `regauth serve` and the registry. */
export async function generateSigningKey(options: GenerateSigningKeyOptions = {}): Promise<SigningKeyPair> {
  const algorithm = options.algorithm ?? 'ES256';
  const days = options.days ?? DEFAULT_KEYGEN_DAYS;
  if (!Number.isInteger(days) || days < 1 || days > 36_500) {
    throw new RegauthError(
      'ERR_USAGE',
      `days (how long the certificate is valid) must be a whole number from 1 to 36500 (got ${days})`,
    );
  }
  const subject = options.subject ?? DEFAULT_KEYGEN_SUBJECT;
  // @peculiar/x509 needs the reflect-metadata polyfill; load both only for keygen.
  await importOptional('reflect-metadata', 'making a signing certificate', () => import('reflect-metadata'));
  const x509 = await importOptional(
    '@peculiar/x509',
    'making a signing certificate',
    () => import('@peculiar/x509'),
  );

  const signingAlgorithm =
    algorithm === 'ES256'
      ? { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }
      : {
          name: 'RSASSA-PKCS1-v1_5',
          modulusLength: RSA_KEYGEN_BITS,
          publicExponent: new Uint8Array([1, 0, 1]),
          hash: 'SHA-256',
        };
  const keys = (await webcrypto.subtle.generateKey(signingAlgorithm, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const notBefore = options.now ?? new Date();
  // Serial numbers must be positive: clear the top bit.
  const serial = randomBytes(16);
  serial[0] = (serial[0] as number) & 0x7f;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial.toString('hex'),
    name: [{ CN: [subject] }],
    notBefore,
    notAfter: new Date(notBefore.getTime() + days * 86_400_000),
    signingAlgorithm,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    keyPem: createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({
      type: 'pkcs8',
      format: 'pem',
    }) as string,
    certPem: cert.toString('pem'),
  };
}

/** Writes the pair; refuses to replace either file (the key is 0600). */
export async function writeSigningKey(
  pair: SigningKeyPair,
  keyFile: string,
  certFile: string,
): Promise<void> {
  const write = async (file: string, data: string, mode: number) => {
    try {
      await writeFile(file, data, { flag: 'wx', mode });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new RegauthError(
          'ERR_FILE_EXISTS',
          `${file} exists already; move it away or choose another path`,
        );
      }
      throw fileSystemError(err, 'write', file);
    }
  };
  await write(keyFile, pair.keyPem, 0o600);
  try {
    await write(certFile, `${pair.certPem.trim()}\n`, 0o644);
  } catch (err) {
    // Leave no key behind without its certificate.
    const { rm } = await import('node:fs/promises');
    await rm(keyFile, { force: true });
    throw err;
  }
}
