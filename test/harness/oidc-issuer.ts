import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';

/** How the issuer answers: `ok`, an HTTP 500, a body of `hugeBytes`, or no answer at all. */
export type IssuerBehaviour = 'ok' | 'error' | 'huge' | 'hang';

interface SigningKey {
  readonly kid: string;
  readonly alg: 'ES256' | 'RS256';
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

export interface SignOptions {
  /** Seconds from now; negative for an expired token. Default 300. */
  readonly expiresIn?: number;
  /** Seconds from now of `nbf`; left out by default. */
  readonly notBefore?: number;
  /** The `kid` header; default the current key's. */
  readonly kid?: string;
  /** Leaves `kid` out of the header. */
  readonly noKid?: boolean;
  /** Leaves `exp` out. */
  readonly noExp?: boolean;
}

/** A loopback OpenID provider: discovery document, JWKS, and tokens shaped like CI systems'. */
export interface OidcIssuer {
  /** The issuer identifier (`iss`), also where discovery lives. */
  readonly url: string;
  /** Requests served so far, by path kind. */
  readonly requests: { discovery: number; jwks: number };
  /** The current signing key's `kid`. */
  readonly kid: string;
  /** The public key set as it serves it now. */
  jwks(): { keys: JWK[] };
  /** Signs `claims` with the current key; `iss` defaults to this issuer. */
  sign(claims: JWTPayload, options?: SignOptions): Promise<string>;
  /** The current key's public key as PEM (SPKI), for algorithm-confusion attacks. */
  publicKeyPem(): Promise<string>;
  /** Adds a new key with a new `kid` and signs with it from now on; `dropOld` unpublishes the old. */
  rotate(options?: { dropOld?: boolean }): Promise<string>;
  /** How the next requests are answered. */
  behave(behaviour: IssuerBehaviour): void;
  /** Claims as GitHub Actions puts them in its OIDC token. */
  github(overrides?: Record<string, unknown>): JWTPayload;
  /** Claims as GitLab CI puts them in its ID token. */
  gitlab(overrides?: Record<string, unknown>): JWTPayload;
  /** Claims of a Kubernetes projected service-account token. */
  kubernetes(overrides?: Record<string, unknown>): JWTPayload;
  close(): Promise<void>;
}

export interface OidcIssuerOptions {
  /** Serves HTTPS with this certificate (makeLoopbackTls) instead of HTTP. */
  readonly tls?: { readonly certPem: string; readonly keyPem: string };
  /** A path under the origin the issuer identifier ends with (`/tenant`), as GitLab's or Azure's do. */
  readonly path?: string;
  readonly alg?: 'ES256' | 'RS256';
  /** Bytes of the `huge` behaviour's body. Default 4 MiB. */
  readonly hugeBytes?: number;
  /** The `jwks_uri` the discovery document names instead of its own; for hostile documents. */
  readonly jwksUri?: string;
  /** The `issuer` the discovery document names instead of its own. */
  readonly discoveryIssuer?: string;
}

let kidCounter = 0;

async function newKey(alg: 'ES256' | 'RS256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  kidCounter += 1;
  const kid = `test-key-${kidCounter}-${Math.random().toString(36).slice(2, 8)}`;
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, publicJwk };
}

/** Starts an issuer on 127.0.0.1 port 0. */
export async function startOidcIssuer(options: OidcIssuerOptions = {}): Promise<OidcIssuer> {
  const alg = options.alg ?? 'ES256';
  const keys: SigningKey[] = [await newKey(alg)];
  const requests = { discovery: 0, jwks: 0 };
  let behaviour: IssuerBehaviour = 'ok';
  const hanging = new Set<ServerResponse>();
  const prefix = options.path ?? '';
  let url = '';

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '').split('?')[0];
    let body: unknown;
    if (path === `${prefix}/.well-known/openid-configuration`) {
      requests.discovery += 1;
      body = {
        issuer: options.discoveryIssuer ?? url,
        jwks_uri: options.jwksUri ?? `${url}/.well-known/jwks`,
        response_types_supported: ['id_token'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: [alg],
      };
    } else if (path === `${prefix}/.well-known/jwks`) {
      requests.jwks += 1;
      body = { keys: keys.map((k) => k.publicJwk) };
    } else {
      res.writeHead(404).end();
      return;
    }
    switch (behaviour) {
      case 'error':
        res.writeHead(500, { 'content-type': 'text/plain' }).end('issuer broken');
        return;
      case 'hang':
        hanging.add(res);
        res.on('close', () => hanging.delete(res));
        return;
      case 'huge': {
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        let left = options.hugeBytes ?? 4 * 1024 * 1024;
        const pump = (): void => {
          while (left > 0) {
            left -= chunk.length;
            if (!res.write(chunk)) {
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        res.on('error', () => {});
        pump();
        return;
      }
      default:
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    }
  };

  const server: Server = options.tls
    ? createHttpsServer({ cert: options.tls.certPem, key: options.tls.keyPem }, handler)
    : createHttpServer(handler);
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const port = (server.address() as AddressInfo).port;
  url = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}${prefix}`;

  const current = (): SigningKey => keys[keys.length - 1] as SigningKey;
  const now = (): number => Math.floor(Date.now() / 1000);

  return {
    url,
    requests,
    get kid() {
      return current().kid;
    },
    jwks: () => ({ keys: keys.map((k) => k.publicJwk) }),
    async sign(claims, signOptions = {}) {
      const key = current();
      const header: { alg: string; typ: string; kid?: string } = { alg: key.alg, typ: 'JWT' };
      if (!signOptions.noKid) header.kid = signOptions.kid ?? key.kid;
      const iat = now();
      return new SignJWT({
        iss: url,
        iat,
        ...(signOptions.noExp ? {} : { exp: iat + (signOptions.expiresIn ?? 300) }),
        ...(signOptions.notBefore === undefined ? {} : { nbf: iat + signOptions.notBefore }),
        ...claims,
      })
        .setProtectedHeader(header)
        .sign(key.privateKey);
    },
    async publicKeyPem() {
      const { createPublicKey } = await import('node:crypto');
      return createPublicKey({ key: current().publicJwk as import('node:crypto').JsonWebKey, format: 'jwk' })
        .export({ type: 'spki', format: 'pem' })
        .toString();
    },
    async rotate(rotateOptions = {}) {
      const key = await newKey(alg);
      if (rotateOptions.dropOld) keys.length = 0;
      keys.push(key);
      return key.kid;
    },
    behave(next) {
      behaviour = next;
    },
    github: (overrides = {}) => ({
      aud: 'https://registry.example.test',
      sub: 'repo:octo-org/octo-repo:ref:refs/heads/main',
      ref: 'refs/heads/main',
      sha: 'a8f1c0f6a2d5c7e3b9e4f1d2c3b4a5968778695a',
      repository: 'octo-org/octo-repo',
      repository_owner: 'octo-org',
      repository_owner_id: '1234567',
      repository_id: '7654321',
      repository_visibility: 'private',
      run_id: '5551234567',
      run_number: '42',
      run_attempt: '1',
      actor: 'octocat',
      actor_id: '583231',
      workflow: 'release',
      event_name: 'push',
      ref_type: 'branch',
      environment: 'production',
      job_workflow_ref: 'octo-org/octo-repo/.github/workflows/release.yml@refs/heads/main',
      runner_environment: 'github-hosted',
      ...overrides,
    }),
    gitlab: (overrides = {}) => ({
      aud: 'https://registry.example.test',
      sub: 'project_path:my-group/my-project:ref_type:branch:ref:main',
      namespace_id: '72',
      namespace_path: 'my-group',
      project_id: '20',
      project_path: 'my-group/my-project',
      user_id: '1',
      user_login: 'sample-user',
      pipeline_id: '574',
      pipeline_source: 'push',
      job_id: '302',
      ref: 'main',
      ref_type: 'branch',
      ref_path: 'refs/heads/main',
      ref_protected: 'true',
      environment: 'production',
      environment_protected: 'true',
      runner_environment: 'gitlab-hosted',
      ...overrides,
    }),
    kubernetes: (overrides = {}) => ({
      aud: ['https://registry.example.test'],
      sub: 'system:serviceaccount:builds:pusher',
      'kubernetes.io': {
        namespace: 'builds',
        pod: { name: 'pusher-7d4b9', uid: '8f3c2a51-0b7e-4c11-9a3e-5b2f9d1c0e77' },
        serviceaccount: { name: 'pusher', uid: 'c0ffee00-1111-2222-3333-444455556666' },
      },
      ...overrides,
    }),
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((done) => server.close(() => done()));
    },
  };
}
