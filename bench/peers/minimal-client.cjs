// A Node program with nothing of its own, doing what the bench times regauth doing: what Node
// itself costs any CLI for that work, measured the same way. It is handed a token (fetched before, not timed),
// asks for nothing else, reads no configuration and keeps no cache, and still checks every
// digest. It connects once node:http(s) is loaded, without opening its connection ahead.
//
//   node minimal-client.cjs manifest URL TOKEN_FILE [CA_FILE]
//     One GET of a manifest; prints its body. The Docker-Content-Digest header must be the
//     SHA-256 of the body. CA_FILE: the only CA trusted (cheaper than adding it to Node's roots).
//   node minimal-client.cjs blobs TOKEN_FILE DIR URL ...
//     GETs every blob at once, each hashed on its way to DIR/<hex>, its digest (sha256:<hex>)
//     being the URL's last part.
//
// Exits 1 with a line on stderr when anything is wrong. Only node: built-ins: nothing to load.
const { createHash } = require('node:crypto');
const { createWriteStream, readFileSync } = require('node:fs');
const { join } = require('node:path');

const [mode, ...args] = process.argv.slice(2);

function fail(message) {
  process.stderr.write(`minimal-client: ${message}\n`);
  process.exitCode = 1;
}

function get(url, token, ca, onResponse) {
  const target = new URL(url);
  const { request } = require(target.protocol === 'https:' ? 'node:https' : 'node:http');
  const req = request(target, {
    headers: {
      authorization: `Bearer ${token}`,
      accept:
        'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, ' +
        'application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json',
    },
    ...(ca === undefined ? {} : { ca }),
  });
  req.on('error', (err) => fail(`${target.pathname}: ${err.message}`));
  req.on('response', (res) => {
    if (res.statusCode !== 200) {
      res.resume();
      fail(`${target.pathname}: HTTP ${res.statusCode}`);
      return;
    }
    onResponse(res);
  });
  req.end();
}

function manifest(url, tokenFile, caFile) {
  const token = readFileSync(tokenFile, 'utf8').trim();
  const ca = caFile === undefined ? undefined : readFileSync(caFile, 'utf8');
  get(url, token, ca, (res) => {
    const chunks = [];
    // A body cut off ends with this error, and with neither 'end' nor an exit code otherwise.
    res.on('error', (err) => fail(`${new URL(url).pathname}: ${err.message}`));
    res.on('data', (chunk) => chunks.push(chunk));
    res.on('end', () => {
      const body = Buffer.concat(chunks);
      const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
      if (digest !== res.headers['docker-content-digest']) {
        fail(
          `the manifest's SHA-256 is ${digest}, the registry said ${res.headers['docker-content-digest']}`,
        );
        return;
      }
      process.stdout.write(body);
    });
  });
}

function blobs(tokenFile, dir, urls) {
  const token = readFileSync(tokenFile, 'utf8').trim();
  for (const url of urls) {
    const expected = url.slice(url.lastIndexOf('/') + 1);
    if (!/^sha256:[0-9a-f]{64}$/.test(expected)) {
      fail(`${url}: its last part is not a sha256 digest`);
      continue;
    }
    const file = join(dir, expected.slice('sha256:'.length));
    get(url, token, undefined, (res) => {
      const hash = createHash('sha256');
      const out = createWriteStream(file);
      res.on('data', (chunk) => hash.update(chunk));
      res.on('error', (err) => fail(`${url}: ${err.message}`));
      out.on('error', (err) => fail(`${file}: ${err.message}`));
      out.on('finish', () => {
        const digest = `sha256:${hash.digest('hex')}`;
        if (digest !== expected) fail(`${file}: its SHA-256 is ${digest}, not ${expected}`);
      });
      res.pipe(out);
    });
  }
}

try {
  if (mode === 'manifest' && args.length >= 2 && args.length <= 3) manifest(args[0], args[1], args[2]);
  else if (mode === 'blobs' && args.length >= 3) blobs(args[0], args[1], args.slice(2));
  else fail('usage: minimal-client.cjs manifest URL TOKEN_FILE [CA_FILE] | blobs TOKEN_FILE DIR URL ...');
} catch (err) {
  // A token or CA file that cannot be read, a URL that does not parse.
  fail(err.message);
}
