import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type Socket } from 'node:net';
import { rootCertificates, connect as tlsConnect } from 'node:tls';
import { RegauthError, type RegauthErrorCode } from '../../errors/regauth-error.js';
import { loadServerConfig, type TokenServerConfig } from '../../server/server-config.js';
import { redactStoreUrl } from '../../server/store-config.js';
import { revokeInStore } from './serve-revoke-in-store.js';

export interface ServeRevokeOptions {
  readonly config: string;
  readonly account?: string;
  readonly before?: string;
  /** The running server's base URL, such as https://auth.example.com:5001; left out: from the config. */
  readonly url?: string;
}

/** One short JSON exchange with a server on the same machine or network. */
const REVOKE_TIMEOUT_MS = 10_000;
/** Bytes of an answer read: a revocation's answer is a few hundred. */
const MAX_ANSWER_BYTES = 64 * 1024;

function fail(code: RegauthErrorCode, message: string): never {
  throw new RegauthError(code, message);
}

/** Where the running server's admin endpoint is, by the config: its own listen address, or the server's. */
function adminUrl(config: TokenServerConfig, override: string | undefined): URL {
  const path = `${config.admin?.path ?? '/admin'}/revoke`;
  if (override !== undefined) {
    let base: URL;
    try {
      base = new URL(override);
    } catch {
      fail(
        'ERR_USAGE',
        `--url ${JSON.stringify(override)} is not a URL such as https://auth.example.com:5001`,
      );
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      fail('ERR_USAGE', `--url must be an http or https URL, not ${base.protocol}`);
    }
    return new URL(path, base.origin);
  }
  const listen = config.admin?.listen ?? config.listen;
  // A server listening on every address is reached on loopback from here.
  const host =
    listen.host === '0.0.0.0' || listen.host === ''
      ? '127.0.0.1'
      : listen.host === '::'
        ? '[::1]'
        : listen.host.includes(':')
          ? `[${listen.host}]`
          : listen.host;
  return new URL(`${config.tls ? 'https' : 'http'}://${host}:${listen.port}${path}`);
}

/** The DER of the first certificate of a PEM file: the server's own (tls.cert may hold its chain after it). */
function leafDer(pem: string): Buffer | undefined {
  try {
    return new X509Certificate(pem).raw;
  } catch {
    return undefined;
  }
}

function send(
  url: URL,
  body: string,
  headers: Record<string, string>,
  tls: TlsTrust | undefined,
  socket: Socket | undefined,
) {
  return new Promise<{ status: number; text: string }>((resolve, reject) => {
    const options = {
      ...(socket === undefined ? {} : { createConnection: () => socket }),
      method: 'POST',
      headers: {
        ...headers,
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
      },
      timeout: REVOKE_TIMEOUT_MS,
    };
    const onResponse = (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_ANSWER_BYTES) res.destroy(new Error(`the answer is over ${MAX_ANSWER_BYTES} bytes`));
        else chunks.push(chunk);
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    };
    // A pinned connection is already TLS: plain HTTP is spoken over it.
    const req =
      url.protocol === 'https:' && socket === undefined
        ? httpsRequest(url, { ...options, ...tls }, onResponse)
        : httpRequest(
            {
              ...options,
              host: url.hostname,
              port: url.port,
              path: url.pathname,
              headers: { ...options.headers, host: url.host },
            },
            onResponse,
          );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${REVOKE_TIMEOUT_MS / 1000} s`)));
    req.on('error', reject);
    req.end(body);
  });
}

interface TlsTrust {
  readonly ca: string[];
}

/** What to trust for the server's certificate with --url: the system's roots and tls.cert (a self-signed one is its own anchor). */
async function readTlsCert(config: TokenServerConfig): Promise<string | undefined> {
  if (!config.tls) return undefined;
  const certFile = config.tls.cert;
  try {
    return await readFile(certFile, 'utf8');
  } catch (err) {
    fail(
      'ERR_INVALID_CONFIG',
      `${config.file}: tls.cert: cannot read ${certFile}: ${(err as Error).message}`,
    );
  }
}

/**
 * Connects to the server found through the config, which must present exactly the certificate
 * of `tls.cert`, whoever issued it (self-signed, a private CA, a public one): the bearer secret
 * is sent only once that is checked, so it only ever reaches the holder of the key, and the
 * loopback address used need not be among the certificate's names.
 */
function pinnedConnection(url: URL, pem: string, certFile: string): Promise<Socket> {
  const leaf = leafDer(pem);
  if (leaf === undefined) fail('ERR_INVALID_CONFIG', `tls.cert: ${certFile} holds no PEM certificate`);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host,
      port: Number(url.port || 443),
      ...(isIP(host) === 0 ? { servername: host } : {}),
      // Checked below against the pinned certificate, before a byte of the request is sent.
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    });
    const timer = setTimeout(
      () => socket.destroy(new Error(`no TLS handshake within ${REVOKE_TIMEOUT_MS / 1000} s`)),
      REVOKE_TIMEOUT_MS,
    );
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      if (socket.getPeerCertificate().raw?.equals(leaf)) {
        resolve(socket);
        return;
      }
      socket.destroy();
      reject(
        new RegauthError(
          'ERR_REFUSED',
          `the server at ${url.origin} does not present the certificate of tls.cert (${certFile}); nothing was sent. Is another program listening there?`,
        ),
      );
    });
  });
}

function answerError(text: string): string | undefined {
  try {
    const error = (JSON.parse(text) as { error?: unknown }).error;
    return typeof error === 'string' ? error.slice(0, 300) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `regauth serve revoke`: with `store:` Redis, records the revocation in Redis itself, where
 * every replica picks it up (no server needs to run); with the memory store (or with --url),
 * sends it to the running server's admin endpoint, which keeps it in memory. Prints what it recorded.
 */
export async function serveRevokeCommand(opts: ServeRevokeOptions): Promise<void> {
  if (opts.account === undefined || opts.account === '') {
    fail('ERR_USAGE', 'serve revoke needs --account NAME, the account whose tokens to revoke');
  }
  const config = await loadServerConfig(opts.config);
  if (config.store !== undefined && opts.url === undefined) {
    const recorded = await revokeInStore(
      config.store,
      config.token.refreshExpiration,
      opts.account,
      opts.before,
    );
    const before = new Date(recorded.beforeMs).toISOString();
    process.stdout.write(
      `revoked ${recorded.account} in ${redactStoreUrl(config.store.url)}: refresh tokens, cached logins and reusable access tokens issued before ${before} are refused by every replica (kept until ${new Date(recorded.untilMs).toISOString()})\n` +
        `note: access tokens already issued stay valid until they expire (at most ${config.token.expiration} s, token.expiration): the registry checks them without asking the token server\n`,
    );
    return;
  }
  const admin = config.admin;
  if (admin === undefined || !admin.enabled || admin.bearerTokenFile === undefined) {
    fail(
      'ERR_INVALID_CONFIG',
      `${config.file}: the admin endpoint is off; add admin: { enabled: true, bearer_token_file: admin.token } (openssl rand -hex 32 > admin.token), restart regauth serve, and run this again`,
    );
  }
  const secretFile = admin.bearerTokenFile;
  let secret: string;
  try {
    secret = (await readFile(secretFile, 'utf8')).trim();
  } catch (err) {
    fail(
      'ERR_INVALID_CONFIG',
      `${config.file}: admin.bearer_token_file: cannot read ${secretFile}: ${(err as Error).message}`,
    );
  }
  const url = adminUrl(config, opts.url);
  const pem = url.protocol === 'https:' ? await readTlsCert(config) : undefined;
  const tls: TlsTrust | undefined = pem === undefined ? undefined : { ca: [...rootCertificates, pem] };
  const body = JSON.stringify({
    account: opts.account,
    ...(opts.before === undefined ? {} : { before: opts.before }),
  });
  let answer: { status: number; text: string };
  try {
    const socket =
      pem !== undefined && opts.url === undefined && config.tls !== undefined
        ? await pinnedConnection(url, pem, config.tls.cert)
        : undefined;
    answer = await send(url, body, { authorization: `Bearer ${secret}` }, tls, socket);
  } catch (err) {
    if (err instanceof RegauthError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ECONNREFUSED') {
      fail(
        'ERR_NETWORK',
        `nothing listens at ${url.origin} (connection refused); start the server with regauth serve --config ${opts.config}, or give its address with --url`,
      );
    }
    fail('ERR_NETWORK', `cannot reach the admin endpoint at ${url.origin}: ${(err as Error).message}`);
  }
  const why = answerError(answer.text);
  if (answer.status === 401) {
    fail(
      'ERR_UNAUTHORIZED',
      `the server at ${url.origin} refused the secret of admin.bearer_token_file (${secretFile}); if it changed, restart regauth serve so it reads the new one`,
    );
  }
  if (answer.status === 404) {
    fail(
      'ERR_REFUSED',
      `the server at ${url.origin} has no admin endpoint at ${url.pathname}; enable admin in the config the running server was started with and restart it`,
    );
  }
  if (answer.status === 429) {
    fail(
      'ERR_TOO_MANY_REQUESTS',
      `the server at ${url.origin} refused: ${why ?? 'too many wrong admin secrets'}`,
    );
  }
  if (answer.status !== 200) {
    fail('ERR_REFUSED', `the server at ${url.origin} answered ${answer.status}: ${why ?? 'no reason given'}`);
  }
  let recorded: { account?: unknown; before?: unknown; until?: unknown; note?: unknown };
  try {
    recorded = JSON.parse(answer.text) as typeof recorded;
  } catch {
    fail('ERR_REFUSED', `the server at ${url.origin} answered 200 with something that is not JSON`);
  }
  process.stdout.write(
    `revoked ${String(recorded.account)}: refresh tokens, cached logins and reusable access tokens issued before ${String(recorded.before)} are refused (kept until ${String(recorded.until)})\n` +
      `note: ${String(recorded.note)}\n`,
  );
}
