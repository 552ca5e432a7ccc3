import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SecureContext } from 'node:tls';
import { RegauthError } from '../errors/regauth-error.js';

/**
 * A PEM certificate block; OpenSSL's TRUSTED CERTIFICATE too (a certificate followed by its trust
 * settings, as in Fedora's ca-bundle.trust.crt), which Node's CA store reads as well.
 */
const PEM_CERTIFICATE = /-----BEGIN (TRUSTED )?CERTIFICATE-----([^-]*)-----END \1CERTIFICATE-----/g;

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
 * The PEM certificates of a CA file (`--ca-file`), checked: a file that holds none, or a block
 * that is not a certificate, is an error naming the file, not a trust that silently adds nothing
 * and fails later as an untrusted certificate.
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
  if (blocks.length === 0) fail('it holds no PEM certificate (-----BEGIN CERTIFICATE-----)');
  blocks.forEach(([block, trusted, body = ''], i) => {
    try {
      new X509Certificate(
        trusted ? (firstDerElement(Buffer.from(body, 'base64')) ?? Buffer.alloc(0)) : block,
      );
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
 * CAs Node trusts by default (its Mozilla roots; from Node 22 on, NODE_EXTRA_CA_CERTS and the
 * system's under --use-system-ca too) and `extraCa` besides. Node's own `ca` option would replace the defaults;
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
  // Node 20's copy holds its bundled roots only: NODE_EXTRA_CA_CERTS is not kept there. Adding
  // that file again would cost every run tens of milliseconds where it names the system's bundle.
  const native = (context as { context?: NativeContext }).context;
  if (typeof native?.addCACert === 'function') {
    native.addCACert(extraCa);
    return context;
  }
  const defaults =
    (tls as { getCACertificates?: (type: 'default') => string[] }).getCACertificates?.('default') ??
    tls.rootCertificates;
  return tls.createSecureContext({ ca: [...defaults, extraCa] });
}
