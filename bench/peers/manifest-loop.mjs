// One Node process fetching N manifests (tags t000…) with one client library, CONCURRENCY at a
// time, timed inside the process (start-up excluded): the work of a tool that scans tags.
// Usage: node manifest-loop.mjs <client> <host> <repo> <n>. Credentials: BENCH_USER/BENCH_PASSWORD.
// Prints {"ms":…,"digests":<distinct digests>} on stdout.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const [client, host, repo, nText] = process.argv.slice(2);
const n = Number(nText);
const CONCURRENCY = 16;
const user = process.env.BENCH_USER;
const password = process.env.BENCH_PASSWORD;
const tags = Array.from({ length: n }, (_, i) => `t${String(i).padStart(3, '0')}`);

async function regauth() {
  const { createRegistryClients, staticCredentials } = await import('../../dist/index.js');
  const registry = createRegistryClients({
    credentials: staticCredentials({ username: user, password }),
  }).forRegistry(host);
  return async (tag) => (await registry.getManifest(repo, tag)).digest;
}

async function snyk() {
  const snykClient = require('@snyk/docker-registry-v2-client');
  // It needs the OCI media types named, or it refuses OCI manifests.
  const options = {
    protocol: 'http:',
    acceptManifest:
      'application/vnd.oci.image.manifest.v1+json,application/vnd.oci.image.index.v1+json,' +
      'application/vnd.docker.distribution.manifest.v2+json,application/vnd.docker.distribution.manifest.list.v2+json',
  };
  return async (tag) => {
    const manifest = await snykClient.getManifest(host, repo, tag, user, password, options);
    return manifest.manifestDigest ?? manifest.indexDigest ?? 'n/a';
  };
}

async function dockerRegistryClient() {
  const drc = require('docker-registry-client');
  const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };
  const c = drc.createClientV2({
    name: `http://${host}/${repo}`,
    username: user,
    password,
    insecure: true,
    maxSchemaVersion: 2,
    acceptOCIManifests: true,
    log: quiet,
  });
  return (tag) =>
    new Promise((resolve, reject) => {
      c.getManifest(
        { ref: tag, maxSchemaVersion: 2, acceptManifestLists: true, acceptOCIManifests: true },
        (err, _m, res) => (err ? reject(err) : resolve(res.headers['docker-content-digest'])),
      );
    });
}

const factories = { regauth, snyk, 'docker-registry-client': dockerRegistryClient };
const fetchOne = await factories[client]();
const started = performance.now();
const digests = new Set();
let next = 0;
await Promise.all(
  Array.from({ length: CONCURRENCY }, async () => {
    while (next < tags.length) digests.add(await fetchOne(tags[next++]));
  }),
);
const ms = performance.now() - started;
process.stdout.write(`${JSON.stringify({ ms, digests: digests.size })}\n`);
process.exit(0);
