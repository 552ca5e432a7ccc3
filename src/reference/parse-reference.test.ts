import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RegauthError } from '../errors/regauth-error.js';
import {
  DEFAULT_TAG,
  DOCKER_HUB_API_HOST,
  DOCKER_HUB_CONFIG_KEY,
  DOCKER_HUB_REGISTRY,
  familiarName,
  formatReference,
  type ImageReference,
  parseReference,
  parseRegistry,
  registryApiHost,
  registryConfigKey,
} from './parse-reference.js';

const SHA256 = `sha256:${'a1'.repeat(32)}`;
const SHA512 = `sha512:${'0f'.repeat(64)}`;

/** Runs `fn` and returns the RegauthError it throws; fails the test when it throws nothing or something else. */
function referenceError(fn: () => unknown): RegauthError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RegauthError);
    expect((err as RegauthError).code).toBe('ERR_INVALID_REFERENCE');
    return err as RegauthError;
  }
  throw new Error('expected an ERR_INVALID_REFERENCE error, but nothing was thrown');
}

describe('parseReference', () => {
  it.each<[string, ImageReference]>([
    ['alpine', { registry: 'docker.io', repository: 'library/alpine', tag: 'latest' }],
    ['alpine:3.20', { registry: 'docker.io', repository: 'library/alpine', tag: '3.20' }],
    ['library/alpine', { registry: 'docker.io', repository: 'library/alpine', tag: 'latest' }],
    ['user/app', { registry: 'docker.io', repository: 'user/app', tag: 'latest' }],
    ['user/app/deeper:v1', { registry: 'docker.io', repository: 'user/app/deeper', tag: 'v1' }],
    ['docker.io/alpine', { registry: 'docker.io', repository: 'library/alpine', tag: 'latest' }],
    ['docker.io/user/app:1', { registry: 'docker.io', repository: 'user/app', tag: '1' }],
    [
      'index.docker.io/library/alpine',
      { registry: 'docker.io', repository: 'library/alpine', tag: 'latest' },
    ],
    ['index.docker.io/alpine', { registry: 'docker.io', repository: 'library/alpine', tag: 'latest' }],
    ['localhost/app', { registry: 'localhost', repository: 'app', tag: 'latest' }],
    ['localhost:5000/a/b:tag', { registry: 'localhost:5000', repository: 'a/b', tag: 'tag' }],
    ['127.0.0.1:5000/x', { registry: '127.0.0.1:5000', repository: 'x', tag: 'latest' }],
    ['[::1]:5000/x', { registry: '[::1]:5000', repository: 'x', tag: 'latest' }],
    ['[::1]/x:v2', { registry: '[::1]', repository: 'x', tag: 'v2' }],
    [`host.example/a@${SHA256}`, { registry: 'host.example', repository: 'a', digest: SHA256 }],
    [
      `host.example/a:1.0@${SHA256}`,
      { registry: 'host.example', repository: 'a', tag: '1.0', digest: SHA256 },
    ],
    [`alpine@${SHA512}`, { registry: 'docker.io', repository: 'library/alpine', digest: SHA512 }],
    [
      'ghcr.io/o-r_g/re__po.x:V1_beta-2',
      { registry: 'ghcr.io', repository: 'o-r_g/re__po.x', tag: 'V1_beta-2' },
    ],
    ['My.Registry:443/app', { registry: 'My.Registry:443', repository: 'app', tag: 'latest' }],
    // Docker reads a bare host:port as a Docker Hub name with a tag, not as a registry.
    ['localhost:5000', { registry: 'docker.io', repository: 'library/localhost', tag: '5000' }],
    // registry-1.docker.io is a different name for docker: only index.docker.io is rewritten.
    [
      'registry-1.docker.io/library/alpine',
      { registry: 'registry-1.docker.io', repository: 'library/alpine', tag: 'latest' },
    ],
  ])('normalizes %s', (text, expected) => {
    expect(parseReference(text)).toStrictEqual(expected);
  });

  it('accepts digests of other algorithms with at least 32 encoded characters', () => {
    const digest = `multihash+base58:${'Qm'.repeat(16)}`;
    expect(parseReference(`app@${digest}`).digest).toBe(digest);
  });

  it('leaves out the default tag when asked to', () => {
    const ref = parseReference('alpine', { defaultTag: false });
    expect(ref).toStrictEqual({ registry: 'docker.io', repository: 'library/alpine' });
    expect('tag' in ref).toBe(false);
  });

  it('adds no default tag to a reference that has a digest', () => {
    expect('tag' in parseReference(`alpine@${SHA256}`)).toBe(false);
  });

  it('accepts a name of exactly 255 characters including the registry', () => {
    const repository = `a/${'b'.repeat(255 - 'docker.io/a/'.length)}`;
    expect(parseReference(repository).repository).toBe(repository);
    referenceError(() => parseReference(`${repository}b`));
  });

  it.each<[string, string, string]>([
    ['empty', '', 'it is empty'],
    [
      'uppercase',
      'Alpine',
      'invalid reference "Alpine": repository name must be lowercase (e.g. docker.io/library/alpine:3.20)',
    ],
    ['uppercase after a registry', 'ghcr.io/Owner/app', 'repository name must be lowercase'],
    // distribution would read "User" as a host; the lowercase error is what the user needs.
    ['uppercase first component', 'User/app', 'repository name must be lowercase'],
    ['bad tag', 'alpine:-dash', 'tag "-dash" must be at most 128'],
    ['tag too long', `alpine:${'t'.repeat(129)}`, 'tag "ttt'],
    ['tag with a "+"', 'alpine:a+b', 'tag "a+b"'],
    ['":" with no tag', 'alpine:', 'nothing follows ":"'],
    ['"@" with no digest', 'alpine@', 'nothing follows "@"'],
    ['short sha256', 'alpine@sha256:abc', 'a sha256 digest needs exactly 64 lowercase hex digits'],
    ['uppercase hex', `alpine@sha256:${'A1'.repeat(32)}`, 'needs exactly 64 lowercase hex'],
    ['sha512 with 64 digits', `alpine@sha512:${'a1'.repeat(32)}`, 'a sha512 digest needs exactly 128'],
    ['digest without algorithm', `alpine@${'a1'.repeat(32)}`, 'is not algorithm:hex'],
    ['unknown algorithm, short', 'alpine@md5:0123456789abcdef', 'at least 32 characters'],
    ['uppercase algorithm', `alpine@SHA256:${'a1'.repeat(32)}`, 'digest algorithm "SHA256"'],
    ['two "@"', `alpine@${SHA256}@${SHA256}`, 'digest'],
    ['too long a name', `a/${'b'.repeat(260)}`, 'more than the 255 a registry accepts'],
    ['too long an input', 'a'.repeat(5000), 'longer than 4096 characters'],
    ['trailing slash', 'user/app/', 'empty component'],
    ['leading slash', '/app', 'empty component'],
    ['double slash', 'user//app', 'empty component'],
    ['registry only', 'localhost:5000/', 'repository name after the registry is missing'],
    ['tag only', ':latest', 'the repository name is missing'],
    ['bad separator', 'user/-app', 'repository path component "-app"'],
    ['white space', 'alpine latest', 'repository path component "alpine latest"'],
    ['bad registry', 'exa_mple.com/app', 'registry "exa_mple.com" is not a valid host[:port]'],
    ['bad port', 'localhost:50a0/app', 'registry "localhost:50a0"'],
    ['image ID', 'f'.repeat(64), 'image ID'],
  ])('rejects %s', (_what, text, message) => {
    expect(referenceError(() => parseReference(text)).message).toContain(message);
  });

  it('names an example of a valid reference in every error', () => {
    expect(referenceError(() => parseReference('user//app')).message).toMatch(
      /\(e\.g\. docker\.io\/library\/alpine:3\.20\)$/,
    );
  });

  it('rejects input that is not a string with the typed error', () => {
    referenceError(() => parseReference(42 as unknown as string));
  });
});

describe('formatReference', () => {
  it('writes the fully qualified form', () => {
    expect(formatReference(parseReference('alpine'))).toBe('docker.io/library/alpine:latest');
    expect(formatReference(parseReference(`localhost:5000/a/b@${SHA256}`))).toBe(
      `localhost:5000/a/b@${SHA256}`,
    );
    expect(formatReference(parseReference(`host/a:tag@${SHA256}`))).toBe(`docker.io/host/a:tag@${SHA256}`);
    expect(formatReference(parseReference(`host.example/a:tag@${SHA256}`))).toBe(
      `host.example/a:tag@${SHA256}`,
    );
  });
});

describe('familiarName', () => {
  it.each([
    ['alpine', 'alpine:latest'],
    ['docker.io/library/alpine:3.20', 'alpine:3.20'],
    ['user/app:1', 'user/app:1'],
    ['library/a/b', 'library/a/b:latest'],
    [`alpine@${SHA256}`, `alpine@${SHA256}`],
    ['localhost:5000/app:1', 'localhost:5000/app:1'],
    ['docker.io/a.b/c', 'docker.io/a.b/c:latest'],
  ])('shortens %s to %s as docker prints it', (text, familiar) => {
    expect(familiarName(parseReference(text))).toBe(familiar);
  });
});

describe('registryApiHost and registryConfigKey', () => {
  it('send Docker Hub requests to registry-1.docker.io and keep its v1 config key', () => {
    expect(registryApiHost(DOCKER_HUB_REGISTRY)).toBe(DOCKER_HUB_API_HOST);
    expect(registryApiHost('index.docker.io')).toBe('registry-1.docker.io');
    expect(registryConfigKey('docker.io')).toBe(DOCKER_HUB_CONFIG_KEY);
    expect(registryConfigKey('index.docker.io')).toBe('https://index.docker.io/v1/');
  });

  it('leave other registries unchanged', () => {
    expect(registryApiHost('localhost:5000')).toBe('localhost:5000');
    expect(registryConfigKey('ghcr.io')).toBe('ghcr.io');
  });
});

describe('parseRegistry', () => {
  it.each([
    ['localhost:5000', 'localhost:5000'],
    ['https://host.example:5000/', 'host.example:5000'],
    ['HTTP://host.example', 'host.example'],
    ['docker.io', 'docker.io'],
    ['index.docker.io', 'docker.io'],
    ['https://index.docker.io/v1/', 'docker.io'],
    ['registry.example/v2', 'registry.example'],
    ['[::1]:5000', '[::1]:5000'],
    ['myregistry', 'myregistry'],
  ])('reads %s as %s', (text, registry) => {
    expect(parseRegistry(text)).toBe(registry);
  });

  it.each([
    ['', 'the host is missing'],
    ['https://', 'the host is missing'],
    ['not a host', 'expected host[:port]'],
    ['host:port', 'expected host[:port]'],
    ['docker.io/library/alpine', 'did you mean docker.io?'],
    ['ftp://host', 'expected host[:port]'],
  ])('rejects %s', (text, message) => {
    expect(referenceError(() => parseRegistry(text)).message).toContain(message);
  });

  it('keeps credentials in a URL out of the message', () => {
    const err = referenceError(() => parseRegistry('https://user:hunter2@host.example'));
    expect(err.message).not.toContain('hunter2');
    expect(err.message).toContain('must not hold credentials');
  });
});

// Generators for valid, already-normalized references.
const pathComponent = fc.stringMatching(/^[a-z0-9]{1,8}(?:(?:[._]|__|-{1,3})[a-z0-9]{1,8}){0,3}$/);
const hostComponent = fc.stringMatching(/^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?$/);
const port = fc.integer({ min: 1, max: 65535 }).map((p) => `:${p}`);
const registry = fc.oneof(
  fc.constant(DOCKER_HUB_REGISTRY),
  fc.constant('localhost'),
  fc
    .tuple(fc.array(hostComponent, { minLength: 2, maxLength: 4 }), fc.option(port, { nil: '' }))
    .map(([parts, p]) => `${parts.join('.')}${p}`),
  fc.tuple(hostComponent, port).map(([h, p]) => `${h}${p}`),
  fc.tuple(fc.ipV4(), fc.option(port, { nil: '' })).map(([ip, p]) => `${ip}${p}`),
  fc.tuple(fc.ipV6(), fc.option(port, { nil: '' })).map(([ip, p]) => `[${ip}]${p}`),
);
const tag = fc.stringMatching(/^\w[\w.-]{0,127}$/);
const digest = fc.oneof(
  fc.stringMatching(/^[a-f0-9]{64}$/).map((h) => `sha256:${h}`),
  fc.stringMatching(/^[a-f0-9]{128}$/).map((h) => `sha512:${h}`),
  fc
    .tuple(
      fc.stringMatching(/^[a-z0-9]{1,6}(?:[+._-][a-z0-9]{1,6}){0,2}$/),
      fc.stringMatching(/^[a-zA-Z0-9=_-]{32,80}$/),
    )
    .filter(([alg]) => alg !== 'sha256' && alg !== 'sha512')
    .map(([alg, enc]) => `${alg}:${enc}`),
);
const validReference: fc.Arbitrary<ImageReference> = fc
  .record(
    {
      registry: registry.filter((r) => r !== 'index.docker.io'),
      repository: fc.array(pathComponent, { minLength: 1, maxLength: 4 }).map((parts) => parts.join('/')),
      tag,
      digest,
    },
    { requiredKeys: ['registry', 'repository'], noNullPrototype: true },
  )
  // docker.io names always have a namespace after normalization, and names fit in 255 characters.
  .filter((r) => r.registry !== DOCKER_HUB_REGISTRY || r.repository.includes('/'))
  .filter((r) => r.registry.length + 1 + r.repository.length <= 255);

describe('parseReference properties', () => {
  it('reads back what formatReference writes', () => {
    fc.assert(
      fc.property(validReference, (ref) => {
        expect(parseReference(formatReference(ref), { defaultTag: false })).toStrictEqual(ref);
        const withDefault = parseReference(formatReference(ref));
        expect(withDefault.tag).toBe(ref.tag ?? (ref.digest === undefined ? DEFAULT_TAG : undefined));
      }),
      { numRuns: 500 },
    );
  });

  it('reads back the familiar name to the same reference', () => {
    fc.assert(
      fc.property(validReference, (ref) => {
        expect(parseReference(familiarName(ref), { defaultTag: false })).toStrictEqual(ref);
      }),
    );
  });

  const referenceish = fc.string({
    unit: fc.constantFrom(
      'a',
      'B',
      '0',
      '.',
      ':',
      '/',
      '@',
      '-',
      '_',
      '__',
      '[',
      ']',
      ' ',
      'localhost',
      'sha256:',
      'docker.io/',
      'é',
    ),
    maxLength: 40,
  });

  it('throws nothing but ERR_INVALID_REFERENCE on any string, and normalizes what it accepts', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 300 }), referenceish), (text) => {
        let ref: ImageReference;
        try {
          ref = parseReference(text);
        } catch (err) {
          expect(err).toBeInstanceOf(RegauthError);
          expect((err as RegauthError).code).toBe('ERR_INVALID_REFERENCE');
          return;
        }
        // Accepted input is normalized: formatting and parsing again changes nothing.
        expect(parseReference(formatReference(ref))).toStrictEqual(ref);
        expect(ref.registry).not.toBe('index.docker.io');
      }),
      { numRuns: 2000 },
    );
  });

  it('throws nothing but ERR_INVALID_REFERENCE from parseRegistry', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 100 }), referenceish), (text) => {
        try {
          const host = parseRegistry(text);
          expect(parseRegistry(host)).toBe(host);
        } catch (err) {
          expect(err).toBeInstanceOf(RegauthError);
          expect((err as RegauthError).code).toBe('ERR_INVALID_REFERENCE');
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('answers quickly on pathological input', () => {
    const inputs = [
      `${'a-'.repeat(2000)}!`,
      `${'a.'.repeat(2000)}/x`,
      `x/${'a'.repeat(4000)}!`,
      `${'a'.repeat(4090)}:`,
      `a@sha256:${'0'.repeat(4000)}`,
    ];
    const start = performance.now();
    for (const text of inputs) referenceError(() => parseReference(text));
    // Backtracking on these inputs would take seconds to hours; a loaded 2-core CI machine
    // takes a few hundred milliseconds at worst for the linear parse, never 2 s.
    expect(performance.now() - start).toBeLessThan(2000);
  });
});

describe('parseReference with a transport prefix of skopeo and podman', () => {
  it.each([
    [
      'docker://localhost:5000/app:v1',
      /"docker:\/\/" is the registry transport .*drop the prefix .*"localhost:5000\/app:v1"$/,
    ],
    [
      'docker-daemon:alpine:3.20',
      /"docker-daemon:" names an image in the local docker engine.*drop the prefix .*"alpine:3\.20"$/,
    ],
    ['oci:./layout:v1', /"oci:" names an OCI image layout; give the layout's folder itself to push or pull$/],
  ])('%s: says what the prefix is and what to do', (text, message) => {
    expect(() => parseReference(text)).toThrow(message);
  });

  it('keeps a valid reference that merely starts like a transport (oci:v1 is library/oci:v1)', () => {
    expect(parseReference('oci:v1')).toEqual({ registry: 'docker.io', repository: 'library/oci', tag: 'v1' });
  });
});
