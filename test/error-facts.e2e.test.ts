import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { createRegistryClients, isRegauthError, type RegauthError, staticCredentials } from '../src/index.js';
import { type CliHome, createCliHome } from './harness/regauth-cli.js';
import { startTokenStack, type TokenStack } from './harness/token-server.js';

const USERS = { alice: 'alice-pw-5521' };
const WRONG = 'wrong-pw-Kx83';

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.unreachable('a rejection'),
    (e: unknown) => e,
  );
}

describe('errors carry what the server answered (real registry and regauth serve)', () => {
  let stack: TokenStack;
  let host: string;
  let cli: CliHome;

  beforeAll(async () => {
    stack = await startTokenStack({ users: USERS });
    host = stack.registry.host;
    cli = await createCliHome();
  });
  afterAll(async () => {
    await stack?.stop();
    await cli?.dispose();
  });

  it('a token server 401 has its status and the redacted token request, and narrows by code', async () => {
    const clients = createRegistryClients({
      env: {},
      credentials: staticCredentials({ username: 'alice', password: WRONG }),
    });
    const err = await rejection(clients.forRegistry(host).getManifest('alice/app', 'v1'));
    expect(isRegauthError(err, 'ERR_UNAUTHORIZED')).toBe(true);
    if (!isRegauthError(err, 'ERR_UNAUTHORIZED')) return;
    expectTypeOf(err).toEqualTypeOf<RegauthError<'ERR_UNAUTHORIZED'>>();
    expect(err.status).toBe(401);
    expect(err.request?.method).toBe('GET');
    expect(err.request?.url.startsWith(`${stack.tokenServer.realm}?`)).toBe(true);
    expect(err.request?.url).toContain('account=alice');
    const shown = `${err.message}\n${String(err)}\n${JSON.stringify(err)}\n${JSON.stringify(err.request)}`;
    expect(shown).not.toContain(WRONG);
    expect(shown).not.toContain(Buffer.from(`alice:${WRONG}`).toString('base64'));
  });

  it('a registry 404 has its status and the request that got it', async () => {
    const clients = createRegistryClients({
      env: {},
      credentials: staticCredentials({ username: 'alice', password: USERS.alice }),
    });
    const err = await rejection(clients.forRegistry(host).getManifest('alice/none', 'v9'));
    expect(isRegauthError(err, 'ERR_NAME_UNKNOWN') || isRegauthError(err, 'ERR_MANIFEST_UNKNOWN')).toBe(true);
    if (!isRegauthError(err)) return;
    expect(err.status).toBe(404);
    expect(err.request).toEqual({ method: 'GET', url: `http://${host}/v2/alice/none/manifests/v9` });
  });

  it('a refused login is a hint for the library, and the CLI turns it into its advice', async () => {
    const clients = createRegistryClients({
      env: {},
      credentials: staticCredentials({ username: 'alice', password: WRONG }),
    });
    const err = await rejection(clients.forRegistry(host).getManifest('alice/app', 'v1'));
    if (!isRegauthError(err)) return expect.unreachable('a RegauthError');
    expect(err.hint).toEqual({ kind: 'login', reason: 'refused' });
    // The advice is the CLI's; the library's message says only what went wrong.
    expect(err.message).not.toMatch(/regauth login|check them|log in again|--[a-z]/);

    const res = await cli.run(['manifest', `${host}/alice/app:v1`, '-u', 'alice', '--password-stdin'], {
      stdin: `${WRONG}\n`,
    });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(
      /^regauth: error: the token server at \S+ refused the credentials for alice .*; check them or log in again with regauth login$/m,
    );
    expect(res.stderr).not.toContain(WRONG);
  });
});
