import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RegauthError } from '../errors/regauth-error.js';
import {
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  DOCKER_MANIFEST_V1,
  DOCKER_MANIFEST_V1_SIGNED,
  OCI_INDEX,
  OCI_MANIFEST,
} from '../registry/media-types.js';
import { parseManifest } from './parse-manifest.js';

const WHAT = 'manifest r.example/app:1';
const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const hex = (c: string) => c.repeat(64);

const CONFIG = {
  mediaType: 'application/vnd.oci.image.config.v1+json',
  digest: `sha256:${hex('c')}`,
  size: 1234,
};
const LAYER_A = {
  mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
  digest: `sha256:${hex('a')}`,
  size: 10,
};
const LAYER_B = {
  mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd',
  digest: `sha256:${hex('b')}`,
  size: 0,
  annotations: { 'org.opencontainers.image.title': 'b.tar' },
};

function thrown(fn: () => unknown): RegauthError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RegauthError);
    return err as RegauthError;
  }
  throw new Error('expected a RegauthError, but parseManifest returned');
}

describe('parseManifest', () => {
  it('reads an OCI image manifest: config and layers in order, descriptors kept whole', () => {
    const parsed = parseManifest(
      json({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: CONFIG, layers: [LAYER_A, LAYER_B] }),
      '',
      WHAT,
    );
    expect(parsed).toEqual({
      kind: 'image',
      mediaType: OCI_MANIFEST,
      config: CONFIG,
      layers: [LAYER_A, LAYER_B],
    });
  });

  it('reads a Docker v2 manifest, taking the media type from the hint when the body has none', () => {
    const config = { ...CONFIG, mediaType: 'application/vnd.docker.container.image.v1+json' };
    const layer = { ...LAYER_A, mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip' };
    const parsed = parseManifest(json({ schemaVersion: 2, config, layers: [layer] }), DOCKER_MANIFEST, WHAT);
    expect(parsed).toEqual({ kind: 'image', mediaType: DOCKER_MANIFEST, config, layers: [layer] });
  });

  it("prefers the body's mediaType over the hint", () => {
    const parsed = parseManifest(
      json({ schemaVersion: 2, mediaType: DOCKER_MANIFEST, config: CONFIG, layers: [] }),
      OCI_MANIFEST,
      WHAT,
    );
    expect(parsed.mediaType).toBe(DOCKER_MANIFEST);
  });

  it('fills a missing descriptor mediaType with an empty string', () => {
    const { digest, size } = LAYER_A;
    const parsed = parseManifest(
      json({ schemaVersion: 2, config: CONFIG, layers: [{ digest, size }] }),
      '',
      WHAT,
    );
    expect(parsed.kind === 'image' && parsed.layers).toEqual([{ digest, size, mediaType: '' }]);
  });

  it('reads an image manifest without layers (an artifact) as one with none', () => {
    const parsed = parseManifest(
      json({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: CONFIG }),
      '',
      WHAT,
    );
    expect(parsed.kind === 'image' && parsed.layers).toEqual([]);
  });

  it('keeps the OCI 1.1 subject', () => {
    const subject = { mediaType: OCI_MANIFEST, digest: `sha256:${hex('d')}`, size: 512 };
    const parsed = parseManifest(
      json({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: CONFIG, layers: [LAYER_A], subject }),
      '',
      WHAT,
    );
    expect(parsed.kind === 'image' && parsed.subject).toEqual(subject);
  });

  it('reads an OCI index: its child manifests with their platforms', () => {
    const child = {
      mediaType: OCI_MANIFEST,
      digest: `sha256:${hex('e')}`,
      size: 700,
      platform: { architecture: 'arm64', os: 'linux', variant: 'v8' },
    };
    const parsed = parseManifest(
      json({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [child] }),
      '',
      WHAT,
    );
    expect(parsed).toEqual({ kind: 'index', mediaType: OCI_INDEX, manifests: [child] });
  });

  it('reads a Docker manifest list named only by the hint', () => {
    const child = { mediaType: DOCKER_MANIFEST, digest: `sha256:${hex('f')}`, size: 528 };
    const parsed = parseManifest(json({ schemaVersion: 2, manifests: [child] }), DOCKER_MANIFEST_LIST, WHAT);
    expect(parsed).toEqual({ kind: 'index', mediaType: DOCKER_MANIFEST_LIST, manifests: [child] });
  });

  it('reads a body with manifests and no config as an index even without any media type', () => {
    const child = { mediaType: OCI_MANIFEST, digest: `sha256:${hex('1')}`, size: 1 };
    const parsed = parseManifest(json({ schemaVersion: 2, manifests: [child] }), '', WHAT);
    expect(parsed.kind).toBe('index');
  });

  it('refuses an index media type without a manifests list', () => {
    const err = thrown(() => parseManifest(json({ schemaVersion: 2, mediaType: OCI_INDEX }), '', WHAT));
    expect(err.code).toBe('ERR_MANIFEST_INVALID');
    expect(err.message).toContain(WHAT);
  });

  it.each([
    ['schemaVersion 1', json({ schemaVersion: 1, name: 'app', tag: '1', fsLayers: [] }), ''],
    ['a schema 1 media type hint', json({ schemaVersion: 2, config: CONFIG }), DOCKER_MANIFEST_V1],
    ['a signed schema 1 media type hint', json({ fsLayers: [] }), DOCKER_MANIFEST_V1_SIGNED],
  ])('refuses %s with ERR_UNSUPPORTED', (_what, bytes, hint) => {
    const err = thrown(() => parseManifest(bytes, hint, WHAT));
    expect(err.code).toBe('ERR_UNSUPPORTED');
    expect(err.message).toContain('schema 1');
    expect(err.message).toContain(WHAT);
  });

  it.each([
    ['text that is not JSON', Buffer.from('<html>502 Bad Gateway</html>')],
    ['a JSON array', json([CONFIG])],
    ['JSON null', json(null)],
    ['a JSON string', json('manifest')],
  ])('refuses %s with ERR_MANIFEST_INVALID', (_what, bytes) => {
    const err = thrown(() => parseManifest(bytes, OCI_MANIFEST, WHAT));
    expect(err.code).toBe('ERR_MANIFEST_INVALID');
    expect(err.message).toBe(`${WHAT} is not a JSON object`);
  });

  it.each([
    ['a missing size', { mediaType: LAYER_B.mediaType, digest: LAYER_B.digest }],
    ['a negative size', { ...LAYER_B, size: -1 }],
    ['a fractional size', { ...LAYER_B, size: 1.5 }],
    ['a size given as a string', { ...LAYER_B, size: '10' }],
    ['a digest without an algorithm', { ...LAYER_B, digest: hex('b') }],
    ['a digest with an upper-case algorithm', { ...LAYER_B, digest: `SHA256:${hex('b')}` }],
    ['a digest with a path in it', { ...LAYER_B, digest: `sha256:../../${hex('b')}` }],
    ['no digest', { mediaType: LAYER_B.mediaType, size: 1 }],
    ['null', null],
  ])('refuses a layer with %s and names it as layers[1]', (_what, bad) => {
    const err = thrown(() =>
      parseManifest(
        json({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: CONFIG, layers: [LAYER_A, bad] }),
        '',
        WHAT,
      ),
    );
    expect(err.code).toBe('ERR_MANIFEST_INVALID');
    expect(err.message).toContain(`${WHAT} layers[1]`);
  });

  it('names a bad config, subject and index entry by their field', () => {
    const bad = { digest: 'nope', size: 1 };
    const cases: [unknown, string][] = [
      [{ schemaVersion: 2, layers: [] }, 'config'],
      [{ schemaVersion: 2, config: bad, layers: [] }, 'config'],
      [{ schemaVersion: 2, config: CONFIG, layers: [], subject: bad }, 'subject'],
      [{ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [LAYER_A, LAYER_A, bad] }, 'manifests[2]'],
    ];
    for (const [body, field] of cases) {
      const err = thrown(() => parseManifest(json(body), '', WHAT));
      expect(err.code).toBe('ERR_MANIFEST_INVALID');
      expect(err.message).toContain(`${WHAT} ${field} `);
    }
  });

  it('refuses layers that are not a list', () => {
    const err = thrown(() => parseManifest(json({ schemaVersion: 2, config: CONFIG, layers: {} }), '', WHAT));
    expect(err.code).toBe('ERR_MANIFEST_INVALID');
    expect(err.message).toContain('layers is not a list');
  });

  describe('property: registry bytes never break it with anything but a RegauthError', () => {
    const descriptorLike = fc.record(
      {
        mediaType: fc.oneof(fc.constantFrom(OCI_MANIFEST, DOCKER_MANIFEST, ''), fc.jsonValue()),
        digest: fc.oneof(fc.stringMatching(/^sha256:[0-9a-f]{64}$/), fc.string(), fc.jsonValue()),
        size: fc.oneof(fc.nat(), fc.integer(), fc.double(), fc.jsonValue()),
        annotations: fc.jsonValue(),
        platform: fc.jsonValue(),
      },
      { requiredKeys: [] },
    );
    const fieldValue = fc.oneof(
      fc.jsonValue(),
      descriptorLike,
      fc.array(fc.oneof(descriptorLike, fc.jsonValue()), { maxLength: 4 }),
    );
    const manifestLike = fc.record(
      {
        schemaVersion: fc.oneof(fc.constantFrom(1, 2), fc.jsonValue()),
        mediaType: fc.oneof(
          fc.constantFrom(OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST_V1),
          fc.jsonValue(),
        ),
        config: fieldValue,
        layers: fieldValue,
        manifests: fieldValue,
        subject: fieldValue,
      },
      { requiredKeys: [] },
    );
    const hint = fc.oneof(
      fc.constantFrom(
        '',
        OCI_MANIFEST,
        OCI_INDEX,
        DOCKER_MANIFEST,
        DOCKER_MANIFEST_LIST,
        DOCKER_MANIFEST_V1_SIGNED,
      ),
      fc.string(),
    );

    /** Parses, and when it succeeds, checks the result is sound for what callers do with it. */
    function check(bytes: Uint8Array, mediaTypeHint: string): void {
      let parsed: ReturnType<typeof parseManifest>;
      try {
        parsed = parseManifest(bytes, mediaTypeHint, WHAT);
      } catch (err) {
        if (!(err instanceof RegauthError)) throw err;
        expect(['ERR_MANIFEST_INVALID', 'ERR_UNSUPPORTED']).toContain(err.code);
        return;
      }
      const descriptors =
        parsed.kind === 'index'
          ? parsed.manifests
          : [parsed.config, ...parsed.layers, ...(parsed.subject ? [parsed.subject] : [])];
      for (const d of descriptors) {
        expect(typeof d.digest).toBe('string');
        expect(Number.isSafeInteger(d.size) && d.size >= 0).toBe(true);
        expect(typeof d.mediaType).toBe('string');
      }
    }

    it('holds for arbitrary JSON values', () => {
      fc.assert(
        fc.property(fc.jsonValue(), hint, (value, h) => check(json(value), h)),
        { numRuns: 500 },
      );
    });

    it('holds for manifest-shaped JSON with arbitrary fields', () => {
      fc.assert(
        fc.property(manifestLike, hint, (value, h) => check(json(value), h)),
        { numRuns: 1000 },
      );
    });

    it('holds for arbitrary bytes', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 256 }), hint, (bytes, h) => check(bytes, h)),
        { numRuns: 300 },
      );
    });
  });
});
