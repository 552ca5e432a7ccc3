import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOciLayout } from './harness/oci-layout.js';
import { type OidcIssuer, startOidcIssuer } from './harness/oidc-issuer.js';
import { createSkopeo, type Skopeo } from './harness/skopeo.js';
import { SLAPD_PEOPLE, type SlapdHandle, startSlapd } from './harness/slapd.js';
import { startTokenStack, type TokenStack } from './harness/token-server.js';

const AUDIENCE = 'https://registry.example.test';
/** carol's entry lacks the name attribute (displayName): the directory's fault, which the log says. */
const LDAP_USERS: Record<string, { password: string; groups: string[]; displayName?: string }> = {
  alice: { password: 'alice-ldap-pw', groups: ['dev'], displayName: 'alice' },
  bob: { password: 'bob-ldap-pw', groups: ['ops'], displayName: 'bob' },
  carol: { password: 'carol-ldap-pw', groups: ['dev'] },
};
const pw = (uid: string) => LDAP_USERS[uid]?.password ?? '';

/**
 * `regauth serve` with `authn: [ldap, oidc]` behind the real registry: directory users and CI
 * jobs side by side. The ACL matches by account name (label matching is not in the ACL yet): the
 * rule for `dev` lists its members, as a label rule on `group: dev` would select them.
 */
describe('regauth serve with authn: [ldap, oidc] behind the real registry', () => {
  let slapd: SlapdHandle;
  let issuer: OidcIssuer;
  let foreign: OidcIssuer;
  let stack: TokenStack;
  let skopeo: Skopeo;
  let work: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'regauth-dir-ci-'));
    slapd = await startSlapd({
      users: Object.entries(LDAP_USERS).map(([uid, u]) => ({
        uid,
        password: u.password,
        groups: u.groups,
        ...(u.displayName === undefined ? {} : { attributes: { displayName: u.displayName } }),
      })),
    });
    const bindPasswordFile = join(slapd.dir, 'bind-password');
    await writeFile(bindPasswordFile, `${slapd.servicePassword}\n`);
    issuer = await startOidcIssuer();
    foreign = await startOidcIssuer();
    stack = await startTokenStack({
      authn: [
        {
          ldap: {
            url: slapd.url,
            bind_dn: slapd.serviceDn,
            bind_password_file: bindPasswordFile,
            base_dn: SLAPD_PEOPLE,
            name_attribute: 'displayName',
            labels: { group: { attribute: 'memberOf', cn_only: true } },
            timeout_seconds: 10,
          },
        },
        {
          oidc: {
            issuer: issuer.url,
            audience: AUDIENCE,
            user: 'github-actions',
            name: '${repository}',
            labels: { owner: 'repository_owner' },
          },
        },
      ],
      acl: [
        // Each directory group pushes under its own name: dev's members (alice) under dev/.
        { match: { labels: { group: '*' }, name: '${labels:group}/*' }, actions: ['pull', 'push'] },
        // A CI job pushes to its own repository and nowhere else.
        { match: { account: 'octo-org/*', name: '${account}' }, actions: ['pull', 'push'] },
      ],
    });
    skopeo = await createSkopeo();
    await buildOciLayout(join(work, 'image'), { tag: 'v1' });
  });

  afterAll(async () => {
    await stack?.stop();
    await skopeo?.dispose();
    await issuer?.close();
    await foreign?.close();
    await slapd?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const push = (user: string, password: string, repository: string) =>
    skopeo.push(join(work, 'image'), 'v1', `${stack.registry.host}/${repository}:v1`, `${user}:${password}`);

  const tokenLines = (account: string) =>
    stack.tokenServer.logEntries().filter((e) => e.msg === 'token' && e.account === account);

  it("lets an LDAP user push where the user's group may, with the group as a label", async () => {
    const result = await push('alice', pw('alice'), 'dev/app');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    await stack.tokenServer.waitForLog((e) => e.msg === 'token' && e.account === 'alice');
    const issued = tokenLines('alice').filter((e) => e.outcome === 'issued');
    expect(issued.some((e) => (e.granted as string[]).includes('repository:dev/app:pull,push'))).toBe(true);
    expect(issued[0]).toMatchObject({ authn: 'ldap', labels: ['group'] });
  });

  it('refuses an LDAP user elsewhere, a user of another group, and a wrong password', async () => {
    const elsewhere = await push('alice', pw('alice'), 'ops/app');
    expect(elsewhere.code).not.toBe(0);
    expect(elsewhere.stderr).toMatch(/unauthorized|authentication required|denied/i);
    const ops = await push('bob', pw('bob'), 'dev/app');
    expect(ops.code).not.toBe(0);
    expect(ops.stderr).toMatch(/unauthorized|authentication required|denied/i);
    const wrong = await push('alice', 'not-alices-pw', 'dev/app');
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/unauthorized|authentication required|invalid/i);
    await stack.tokenServer.waitForLog((e) => e.msg === 'token' && e.outcome === 'unauthorized');
    expect(stack.tokenServer.logEntries()).toContainEqual(
      expect.objectContaining({ msg: 'token', outcome: 'unauthorized', status: 401 }),
    );
    // bob logged in (ldap accepted him) but was granted nothing under dev/.
    const bob = tokenLines('bob').filter((e) => e.outcome === 'issued');
    expect(bob.length).toBeGreaterThan(0);
    expect(bob.every((e) => (e.granted as string[]).length === 0)).toBe(true);
  });

  it("writes the LDAP authenticator's warnings to the server log", async () => {
    const result = await push('carol', pw('carol'), 'dev/app');
    expect(result.code).not.toBe(0);
    const entries = await stack.tokenServer.waitForLog((e) => e.msg === 'ldap entry has no name attribute');
    expect(entries).toContainEqual(
      expect.objectContaining({
        msg: 'ldap entry has no name attribute',
        level: 'warn',
        attribute: 'displayName',
        dn: `uid=carol,${SLAPD_PEOPLE}`,
      }),
    );
  });

  it("lets a CI token push to its own repository only, named from the token's claims", async () => {
    const token = await issuer.sign(issuer.github({ aud: AUDIENCE, repository: 'octo-org/app' }));
    const own = await push('github-actions', token, 'octo-org/app');
    expect(own.stderr).toBe('');
    expect(own.code).toBe(0);
    const other = await push('github-actions', token, 'octo-org/other');
    expect(other.code).not.toBe(0);
    expect(other.stderr).toMatch(/unauthorized|authentication required|denied/i);
    await stack.tokenServer.waitForLog((e) => e.msg === 'token' && e.account === 'octo-org/app');
    const lines = tokenLines('octo-org/app').filter((e) => e.outcome === 'issued');
    expect(lines[0]).toMatchObject({ authn: 'oidc', labels: ['owner'] });
    expect(lines.some((e) => (e.granted as string[]).includes('repository:octo-org/app:pull,push'))).toBe(
      true,
    );
    expect(lines.flatMap((e) => e.granted as string[]).some((s) => s.includes('octo-org/other'))).toBe(false);
  });

  it('refuses an expired CI token and one from a foreign issuer', async () => {
    const before = tokenLines('github-actions').length;
    const expired = await issuer.sign(issuer.github({ aud: AUDIENCE, repository: 'octo-org/app' }), {
      expiresIn: -600,
    });
    const late = await push('github-actions', expired, 'octo-org/app');
    expect(late.code).not.toBe(0);
    expect(late.stderr).toMatch(/unauthorized|authentication required|invalid/i);
    const alien = await foreign.sign(foreign.github({ aud: AUDIENCE, repository: 'octo-org/app' }));
    const stranger = await push('github-actions', alien, 'octo-org/app');
    expect(stranger.code).not.toBe(0);
    expect(stranger.stderr).toMatch(/unauthorized|authentication required|invalid/i);
    await stack.tokenServer.waitForLog(
      (e) => e.msg === 'token' && e.account === 'github-actions' && e.outcome === 'unauthorized',
    );
    // The token line says only "unauthorized"; the operator's line says why.
    await stack.tokenServer.waitForLog((e) => e.msg === 'oidc token refused');
    expect(stack.tokenServer.logEntries()).toContainEqual(
      expect.objectContaining({
        msg: 'oidc token refused',
        issuer: issuer.url,
        reason: 'the token has expired',
      }),
    );
    const refused = tokenLines('github-actions').slice(before);
    expect(refused.length).toBeGreaterThanOrEqual(2);
    expect(refused.every((e) => e.outcome === 'unauthorized' && e.status === 401)).toBe(true);
  });

  it('never writes a password or token to its log', async () => {
    const output = stack.tokenServer.output();
    for (const secret of [pw('alice'), pw('bob'), pw('carol'), 'not-alices-pw', slapd.servicePassword]) {
      expect(output).not.toContain(secret);
    }
    expect(output).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.eyJ/);
  });
});
