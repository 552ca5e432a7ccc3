import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, spawnLogged, waitFor } from './processes.js';
import { makeLoopbackTls } from './tls.js';

/** The suffix of the generated directory. */
export const SLAPD_SUFFIX = 'dc=regauth,dc=test';
export const SLAPD_PEOPLE = `ou=people,${SLAPD_SUFFIX}`;
export const SLAPD_GROUPS = `ou=groups,${SLAPD_SUFFIX}`;
/** The service account the authenticator binds as to search users. */
export const SLAPD_SERVICE_DN = `cn=regauth-svc,ou=services,${SLAPD_SUFFIX}`;

export interface SlapdUser {
  readonly uid: string;
  readonly password: string;
  /** `cn` of the groups (groupOfNames under ou=groups) the user is a member of. */
  readonly groups?: readonly string[];
  /** Extra attributes of the entry (mail, say). */
  readonly attributes?: Readonly<Record<string, string>>;
}

export interface SlapdHandle {
  /** `ldap://127.0.0.1:<port>`: plain, and StartTLS when started with TLS. */
  readonly url: string;
  /** `ldaps://127.0.0.1:<port>` when started with TLS. */
  readonly ldapsUrl?: string;
  /** The CA that signed slapd's certificate (PEM) when started with TLS, and its file. */
  readonly caPem?: string;
  readonly caFile?: string;
  readonly serviceDn: string;
  readonly servicePassword: string;
  /** A folder that `stop` removes, for files a test writes (password files, CA files). */
  readonly dir: string;
  output(): string;
  /** Adds more LDIF as the directory's root (ldapadd). */
  add(ldif: string): Promise<void>;
  stop(): Promise<void>;
}

/** RFC 2307's {SSHA}: SHA-1 over password and salt, then the salt, base64. What slapd checks. */
export function sshaHash(password: string): string {
  const salt = randomBytes(8);
  const digest = createHash('sha1').update(password, 'utf8').update(salt).digest();
  return `{SSHA}${Buffer.concat([digest, salt]).toString('base64')}`;
}

/** Debian puts slapd in /usr/sbin, which a non-root PATH often leaves out. */
const SLAPD = existsSync('/usr/sbin/slapd') ? '/usr/sbin/slapd' : 'slapd';

/** How long slapd gets to come up and to run one ldapadd; a loaded 2-core machine is slow. */
const SLAPD_START_MS = 20_000;
const LDAPADD_MS = 20_000;

/**
 * Starts Debian's OpenLDAP slapd on free loopback ports with a generated slapd.conf and mdb
 * database in a temp folder: the `memberof` overlay (so users carry `memberOf`), a service
 * account that may read people and groups, users that may read only themselves, and anonymous
 * readers that see nothing. With `tls`, a throwaway CA signs slapd's certificate, and slapd
 * offers StartTLS on `url` and LDAPS on `ldapsUrl`. `allowUnauthenticatedBind` makes slapd
 * accept a DN with an empty password (RFC 4513 §5.1.2), as some servers do by default.
 */
export async function startSlapd(
  options: {
    users?: readonly SlapdUser[];
    tls?: boolean;
    allowUnauthenticatedBind?: boolean;
    /** Log every operation (`-d stats`): `output()` then holds a `BIND dn="…"` line per bind. */
    logOperations?: boolean;
  } = {},
): Promise<SlapdHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'regauth-slapd-'));
  const dataDir = join(dir, 'data');
  await mkdir(dataDir);
  const port = await freePort();
  const ldapsPort = options.tls ? await freePort() : undefined;
  const rootDn = `cn=admin,${SLAPD_SUFFIX}`;
  const rootPassword = randomBytes(12).toString('hex');
  const servicePassword = randomBytes(12).toString('hex');

  let tls: { caPem: string; caFile: string } | undefined;
  const tlsLines: string[] = [];
  if (options.tls) {
    const material = await makeLoopbackTls();
    const caFile = join(dir, 'ca.pem');
    await writeFile(caFile, material.caPem);
    await writeFile(join(dir, 'server.pem'), material.certPem);
    await writeFile(join(dir, 'server.key'), material.keyPem, { mode: 0o600 });
    tls = { caPem: material.caPem, caFile };
    tlsLines.push(
      `TLSCACertificateFile ${caFile}`,
      `TLSCertificateFile ${join(dir, 'server.pem')}`,
      `TLSCertificateKeyFile ${join(dir, 'server.key')}`,
    );
  }

  const conf = [
    'include /etc/ldap/schema/core.schema',
    'include /etc/ldap/schema/cosine.schema',
    'include /etc/ldap/schema/inetorgperson.schema',
    'include /etc/ldap/schema/nis.schema',
    `pidfile ${join(dir, 'slapd.pid')}`,
    'modulepath /usr/lib/ldap',
    'moduleload back_mdb',
    'moduleload memberof',
    ...(options.allowUnauthenticatedBind ? ['allow bind_anon_dn'] : []),
    ...tlsLines,
    'database mdb',
    `suffix "${SLAPD_SUFFIX}"`,
    `rootdn "${rootDn}"`,
    `rootpw ${sshaHash(rootPassword)}`,
    `directory ${dataDir}`,
    'maxsize 16777216',
    'overlay memberof',
    'access to attrs=userPassword by self write by anonymous auth by * none',
    `access to * by dn.exact="${SLAPD_SERVICE_DN}" read by self read by * none`,
    '',
  ].join('\n');
  const confFile = join(dir, 'slapd.conf');
  await writeFile(confFile, conf);
  // slapd drops nothing when run as root; readable only by us anyway.
  await chmod(confFile, 0o600);

  const url = `ldap://127.0.0.1:${port}`;
  const ldapsUrl = ldapsPort === undefined ? undefined : `ldaps://127.0.0.1:${ldapsPort}`;
  const listen = [`${url}/`, ...(ldapsUrl ? [`${ldapsUrl}/`] : [])].join(' ');
  // -d 0: stay in the foreground (so stop() owns the process) and log nothing but errors.
  const spawned = spawnLogged(SLAPD, [
    '-f',
    confFile,
    '-h',
    listen,
    '-d',
    options.logOperations ? 'stats' : '0',
  ]);
  await waitFor('slapd', spawned, () => portOpen(port), SLAPD_START_MS);

  const ldapadd = async (ldif: string): Promise<void> => {
    await runLdapadd(url, rootDn, rootPassword, ldif, spawned.output);
  };
  const users = options.users ?? [];
  const groups = new Map<string, string[]>();
  for (const user of users) {
    for (const group of user.groups ?? []) groups.set(group, [...(groups.get(group) ?? []), user.uid]);
  }
  const entries = [
    `dn: ${SLAPD_SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: regauth\no: regauth test`,
    `dn: ${SLAPD_PEOPLE}\nobjectClass: organizationalUnit\nou: people`,
    `dn: ${SLAPD_GROUPS}\nobjectClass: organizationalUnit\nou: groups`,
    `dn: ou=services,${SLAPD_SUFFIX}\nobjectClass: organizationalUnit\nou: services`,
    `dn: ${SLAPD_SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: regauth-svc\nuserPassword: ${sshaHash(servicePassword)}`,
    ...users.map((user) => userLdif(user)),
    // The memberof overlay fills the members' memberOf as each group is added.
    ...[...groups].map(
      ([cn, members]) =>
        `dn: cn=${cn},${SLAPD_GROUPS}\nobjectClass: groupOfNames\ncn: ${cn}\n${members
          .map((uid) => `member: uid=${uid},${SLAPD_PEOPLE}`)
          .join('\n')}`,
    ),
  ];
  try {
    await ldapadd(`${entries.join('\n\n')}\n`);
  } catch (err) {
    await spawned.stop();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    url,
    ...(ldapsUrl ? { ldapsUrl } : {}),
    ...(tls ? { caPem: tls.caPem, caFile: tls.caFile } : {}),
    serviceDn: SLAPD_SERVICE_DN,
    servicePassword,
    dir,
    output: spawned.output,
    add: ldapadd,
    stop: async () => {
      await spawned.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** An inetOrgPerson entry; values are base64 (`::`) so any UTF-8 in them stays intact. */
function userLdif(user: SlapdUser): string {
  const b64 = (value: string) => Buffer.from(value, 'utf8').toString('base64');
  const lines = [
    `dn:: ${b64(`uid=${user.uid},${SLAPD_PEOPLE}`)}`,
    'objectClass: inetOrgPerson',
    `uid:: ${b64(user.uid)}`,
    `cn:: ${b64(user.uid)}`,
    `sn:: ${b64(user.uid)}`,
    `userPassword: ${sshaHash(user.password)}`,
    ...Object.entries(user.attributes ?? {}).map(([key, value]) => `${key}:: ${b64(value)}`),
  ];
  return lines.join('\n');
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function runLdapadd(
  url: string,
  rootDn: string,
  rootPassword: string,
  ldif: string,
  slapdOutput: () => string,
): Promise<void> {
  return new Promise((resolve, reject) => {
    // -y reads the password from a file; /dev/stdin is taken by the LDIF, so pass it with -w
    // (a throwaway password of a throwaway directory).
    const child = spawn('ldapadd', ['-x', '-H', url, '-D', rootDn, '-w', rootPassword], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), LDAPADD_MS);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`ldapadd failed (${code ?? signal}):\n${output}\nslapd:\n${slapdOutput()}`));
    });
    child.stdin.end(ldif);
  });
}
