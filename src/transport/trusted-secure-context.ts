import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SecureContext } from 'node:tls';
import { RegauthError } from '../errors/regauth-error.js';

/**
 * A PEM certificate block: CERTIFICATE, the older X509 CERTIFICATE, and OpenSSL's TRUSTED
 * CERTIFICATE (a certificate followed by its trust settings, as in Fedora's ca-bundle.trust.crt),
 * all of which Node's CA store reads.
 */
const PEM_CERTIFICATE = /-----BEGIN ((?:TRUSTED |X509 )?)CERTIFICATE-----([^-]*)-----END \1CERTIFICATE-----/g;
const PEM_CERTIFICATE_BEGIN = /-----BEGIN (?:TRUSTED |X509 )?CERTIFICATE-----/g;

/**
 * Bundles up to this many certificates are parsed whole to be checked (about 0.2 ms each here);
 * a larger one (a system bundle of 140 and more) only for its DER structure, which catches a
 * damaged block as well, without spending tens of milliseconds before the first connection.
 */
const FULLY_CHECKED_CERTIFICATES = 16;

/** The first DER element of `der` (a TRUSTED CERTIFICATE's certificate, before its trust settings). */
function firstDerElement(der: Buffer): Buffer | undefined {
  if (der[0] !== 0x30 || der.length < 2) return undefined;
  const first = der[1] ?? 0;
  let length = first;
  let offset = 2;
  if (first >= 0x80) {
    const bytes = first & 0x7f;
    if (bytes < 1 || bytes > 4 || der.length < 2 + bytes) return undefined;
    length = 0;
    for (let i = 0; i < bytes; i++) length = length * 256 + (der[2 + i] ?? 0);
    offset = 2 + bytes;
  }
  return offset + length <= der.length ? der.subarray(0, offset + length) : undefined;
}

/**
 * The PEM certificates of a CA file (`--ca-file`), checked: a file that holds none, a block cut
 * off, or one that is not a certificate, is an error naming the file, not a trust that silently
 * adds nothing and fails later as an untrusted certificate.
 */
export function readCaFile(path: string): string {
  const fail = (why: string, cause?: unknown): never => {
    throw new RegauthError('ERR_USAGE', `cannot use the CA file ${path}: ${why}`, {
      ...(cause === undefined ? {} : { cause }),
      hint: { kind: 'ca-file', path },
    });
  };
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new RegauthError('ERR_USAGE', `cannot read the CA file ${path}: ${(cause as Error).message}`, {
      cause,
      hint: { kind: 'ca-file', path },
    });
  }
  const blocks = [...text.matchAll(PEM_CERTIFICATE)];
  const begun = text.match(PEM_CERTIFICATE_BEGIN)?.length ?? 0;
  if (begun === 0) fail('it holds no PEM certificate (-----BEGIN CERTIFICATE-----)');
  const cut = begun - blocks.length;
  if (cut > 0) {
    fail(
      `it is cut off or damaged: ${cut === 1 ? 'a certificate has' : `${cut} certificates have`} no END line`,
    );
  }
  const parse = blocks.length <= FULLY_CHECKED_CERTIFICATES;
  blocks.forEach(([, label, body = ''], i) => {
    const der = Buffer.from(body, 'base64');
    const certificate = firstDerElement(der);
    try {
      // A TRUSTED CERTIFICATE has its trust settings after the certificate; the others nothing.
      if (certificate === undefined || (label !== 'TRUSTED ' && certificate.length !== der.length)) {
        throw new Error('not one DER element');
      }
      if (parse) new X509Certificate(certificate);
    } catch (cause) {
      fail(`certificate ${i + 1} of ${blocks.length} is not a valid X.509 certificate`, cause);
    }
  });
  return blocks.map(([block]) => block).join('\n');
}

/** What a SecureContext wraps: Node's native context, which takes more CA certificates. */
interface NativeContext {
  addCACert?: (pem: string) => void;
}

/**
 * The TLS trust of a transport's HTTPS connections, built once and shared by all of them: the
 * CAs Node trusts by default (its Mozilla roots, NODE_EXTRA_CA_CERTS, the system's under
 * --use-system-ca) and `extraCa` besides. Node's own `ca` option would replace the defaults;
 * docker (certs.d, https://docs.docker.com/engine/security/certificates/) and containers/image
 * (--cert-dir) add a registry's CA to the system pool instead, so a realm signed by a public CA
 * keeps working beside a registry signed by a private one. One context for every connection also
 * spares each connection building its own (a new context per connection is tls.connect's
 * default).
 */
export async function trustedSecureContext(extraCa?: string): Promise<SecureContext> {
  // Loaded here, not at start-up: a command that never speaks HTTPS never loads TLS.
  const tls = await import('node:tls');
  const context = tls.createSecureContext();
  if (extraCa === undefined) return context;
  // Node adds NODE_EXTRA_CA_CERTS to its defaults with this same call, to a copy of the shared
  // root store (node/src/crypto/crypto_context.cc): the defaults stay as they are for others.
  const native = (context as { context?: NativeContext }).context;
  if (typeof native?.addCACert === 'function') {
    const extraFile = process.env.NODE_EXTRA_CA_CERTS;
    if (extraFile && Number(process.versions.node.split('.')[0]) < 22) {
      // Node 20's copy holds its bundled roots only: NODE_EXTRA_CA_CERTS goes in again. Where it
      // names a system bundle that costs 25-40 ms; only a run with --ca-file on Node 20 pays it.
      // Node itself warned at start-up about a file it could not read.
      try {
        native.addCACert(readFileSync(extraFile, 'utf8'));
      } catch {}
    }
    native.addCACert(extraCa);
    return context;
  }
  const defaults =
    (tls as { getCACertificates?: (type: 'default') => string[] }).getCACertificates?.('default') ??
    tls.rootCertificates;
  return tls.createSecureContext({ ca: [...defaults, extraCa] });
}
