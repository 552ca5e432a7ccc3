import { createPrivateKey, createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { RegauthError } from '../errors/regauth-error.js';
import { libtrustKeyId } from './libtrust-key-id.js';

/** The algorithms distribution 2.8 and 3.x both verify (distribution registry/auth/token: no PS*, no EdDSA). */
export type SigningAlgorithm = 'ES256' | 'ES384' | 'ES512' | 'RS256';

/** A loaded signing key with what tokens need from its certificate: the `x5c` chain and the `kid`. */
export interface SigningMaterial {
  /** The private key tokens are signed with. */
  readonly privateKey: KeyObject;
  /** The JWS `alg`, chosen from the key type (EC curve or RSA). */
  readonly algorithm: SigningAlgorithm;
  /** Base64 DER of the certificate chain, leaf first: the JWT `x5c` header. */
  readonly x5c: readonly string[];
  /** libtrust key ID of the public key, for distribution 2.8's `kid` lookup. */
  readonly kid: string;
  /** When the leaf certificate expires: the server warns ahead of it. */
  readonly notAfter: Date;
}

/** RSA keys below this size are refused: NIST deprecated 1024-bit RSA signatures in 2013. */
export const MIN_RSA_BITS = 2048;

const CURVE_ALGORITHMS: Record<string, SigningAlgorithm> = {
  prime256v1: 'ES256',
  secp384r1: 'ES384',
  secp521r1: 'ES512',
};

function algorithmFor(key: KeyObject, file: string): SigningAlgorithm {
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve ?? '';
    const alg = CURVE_ALGORITHMS[curve];
    if (!alg)
      throw new RegauthError('ERR_INVALID_KEY', `${file}: EC curve ${curve} is not supported; use P-256`);
    return alg;
  }
  if (key.asymmetricKeyType === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) {
      throw new RegauthError(
        'ERR_INVALID_KEY',
        `${file}: RSA key has ${bits} bits; use at least ${MIN_RSA_BITS}`,
      );
    }
    return 'RS256';
  }
  throw new RegauthError(
    'ERR_INVALID_KEY',
    `${file}: ${key.asymmetricKeyType ?? 'unknown'} keys cannot sign tokens the registry accepts; use EC P-256 or RSA`,
    { hint: { kind: 'keygen' } },
  );
}

function splitPemCertificates(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/**
 * Loads the signing key and its certificate chain and checks, at start-up, the mistakes that
 * would otherwise make the registry reject every token: a certificate of another key, or one
 * outside its validity period (the registry verifies `x5c` against its `rootcertbundle`, and
 * that check includes the dates).
 */
export function loadSigningMaterial(
  keyPem: string,
  certPem: string,
  files: { readonly key: string; readonly certificate: string },
  now: Date = new Date(),
): SigningMaterial {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(keyPem);
  } catch (cause) {
    throw new RegauthError(
      'ERR_INVALID_KEY',
      `${files.key}: not a readable unencrypted PEM private key (PKCS#8, SEC1 or PKCS#1)`,
      { cause },
    );
  }
  const algorithm = algorithmFor(privateKey, files.key);
  const pems = splitPemCertificates(certPem);
  if (pems.length === 0) {
    throw new RegauthError('ERR_INVALID_KEY', `${files.certificate}: no PEM certificate found`);
  }
  let certificates: X509Certificate[];
  try {
    certificates = pems.map((pem) => new X509Certificate(pem));
  } catch (cause) {
    throw new RegauthError('ERR_INVALID_KEY', `${files.certificate}: a certificate could not be parsed`, {
      cause,
    });
  }
  const leaf = certificates[0] as X509Certificate;
  const publicKey = createPublicKey(privateKey);
  const spki = (k: KeyObject) => k.export({ type: 'spki', format: 'der' });
  if (!spki(leaf.publicKey).equals(spki(publicKey))) {
    throw new RegauthError(
      'ERR_INVALID_KEY',
      `${files.certificate}: the first certificate is not for the key in ${files.key}; ` +
        'the registry would reject every token; make a matching pair',
      { hint: { kind: 'keygen' } },
    );
  }
  const notBefore = new Date(leaf.validFrom);
  const notAfter = new Date(leaf.validTo);
  if (now < notBefore || now > notAfter) {
    throw new RegauthError(
      'ERR_INVALID_KEY',
      `${files.certificate}: the certificate is valid from ${notBefore.toISOString()} to ${notAfter.toISOString()}, ` +
        'not now; the registry would reject every token; issue a new one',
      { hint: { kind: 'keygen' } },
    );
  }
  return {
    privateKey,
    algorithm,
    x5c: certificates.map((c) => c.raw.toString('base64')),
    kid: libtrustKeyId(publicKey),
    notAfter,
  };
}
