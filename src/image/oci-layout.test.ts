import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RegauthError } from '../errors/regauth-error.js';
import { OCI_INDEX, OCI_MANIFEST } from '../registry/media-types.js';
import { rejection } from '../testing/rejection.js';
import {
  type BlobSource,
  type HeldBytes,
  type LayoutDescriptor,
  OciLayout,
  REF_NAME_ANNOTATION,
  Writeback,
} from './oci-layout.js';
import { PARTIAL_DIR } from './partial-blobs.js';

const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'regauth-oci-layout-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const BYTES = Buffer.from('a layer, or any other blob: the layout does not care what it holds\n');
const DESC = { digest: sha256(BYTES), size: BYTES.length };

/** Every file under blobs/sha256, temporaries included. */
async function blobFiles(layoutDir: string): Promise<string[]> {
  try {
    return (await readdir(join(layoutDir, 'blobs', 'sha256'))).sort();
  } catch {
    return [];
  }
}

function manifestEntry(text: string, annotations?: Record<string, string>): LayoutDescriptor {
  const bytes = Buffer.from(text);
  return {
    mediaType: OCI_MANIFEST,
    digest: sha256(bytes),
    size: bytes.length,
    ...(annotations === undefined ? {} : { annotations }),
  };
}

describe('OciLayout.open', () => {
  it('with create, writes oci-layout with version 1.0.0 and a blobs folder', async () => {
    const target = join(dir, 'new', 'layout');
    const layout = await OciLayout.open(target, { create: true });
    expect(layout.dir).toBe(target);
    expect(JSON.parse(await readFile(join(target, 'oci-layout'), 'utf8'))).toEqual({
      imageLayoutVersion: '1.0.0',
    });
    expect((await stat(join(target, 'blobs'))).isDirectory()).toBe(true);
  });

  it('with create, writes an index.json that lists no image, so the folder is a whole layout', async () => {
    const target = join(dir, 'fresh');
    await OciLayout.open(target, { create: true });
    expect(JSON.parse(await readFile(join(target, 'index.json'), 'utf8'))).toEqual({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [],
    });
    expect((await readdir(target)).sort()).toEqual(['blobs', 'index.json', 'oci-layout']);
  });

  it('with create, gives an existing layout without index.json one, and keeps an existing one', async () => {
    await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    await OciLayout.open(dir, { create: true });
    expect(JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')).manifests).toEqual([]);
    await writeFile(join(dir, 'index.json'), '{"schemaVersion":2,"manifests":[],"keep":1}');
    await OciLayout.open(dir, { create: true });
    expect(await readFile(join(dir, 'index.json'), 'utf8')).toBe(
      '{"schemaVersion":2,"manifests":[],"keep":1}',
    );
    expect((await readdir(dir)).sort()).toEqual(['index.json', 'oci-layout']);
  });

  it('without create, leaves a layout without index.json as it is', async () => {
    await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    await OciLayout.open(dir);
    expect(await readdir(dir)).toEqual(['oci-layout']);
  });

  it('opens an existing layout without rewriting it', async () => {
    await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0","extra":1}');
    await OciLayout.open(dir, { create: true });
    expect(await readFile(join(dir, 'oci-layout'), 'utf8')).toBe('{"imageLayoutVersion":"1.0.0","extra":1}');
  });

  it('without create, refuses a folder that has no oci-layout file and names it', async () => {
    const err = await rejection(OciLayout.open(dir));
    expect(err.code).toBe('ERR_INVALID_LAYOUT');
    expect(err.message).toContain(join(dir, 'oci-layout'));
    expect(await readdir(dir)).toEqual([]);
  });

  it.each([
    ['an unknown major version', '{"imageLayoutVersion":"2.0.0"}'],
    ['a version that is not a string', '{"imageLayoutVersion":1}'],
    ['no version', '{}'],
    ['text that is not JSON', 'imageLayoutVersion=1.0.0'],
  ])('refuses an oci-layout file with %s', async (_what, text) => {
    await writeFile(join(dir, 'oci-layout'), text);
    const err = await rejection(OciLayout.open(dir, { create: true }));
    expect(err.code).toBe('ERR_INVALID_LAYOUT');
    expect(err.message).toContain(join(dir, 'oci-layout'));
  });
});

describe('OciLayout blobs', () => {
  it('stores a blob under blobs/<alg>/<hex> and reads it back verified', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    await layout.writeBlob(DESC, [BYTES.subarray(0, 10), BYTES.subarray(10)]);
    const path = layout.blobPath(DESC.digest);
    expect(path).toBe(join(dir, 'blobs', 'sha256', DESC.digest.slice('sha256:'.length)));
    expect((await readFile(path)).equals(BYTES)).toBe(true);
    expect(await blobFiles(dir)).toEqual([DESC.digest.slice('sha256:'.length)]);
    expect(await layout.hasBlob(DESC)).toBe(true);
    expect((await layout.readBlobBytes(DESC)).equals(BYTES)).toBe(true);
  });

  it('writeBlobBytes stores the same blob as writeBlob', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    await layout.writeBlobBytes(DESC, BYTES);
    expect((await readFile(layout.blobPath(DESC.digest))).equals(BYTES)).toBe(true);
  });

  it('refuses content that hashes to another digest and leaves no file behind', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    const other = Buffer.from(BYTES);
    other[0] = (other[0] ?? 0) ^ 1;
    const err = await rejection(layout.writeBlobBytes(DESC, other));
    expect(err.code).toBe('ERR_DIGEST_MISMATCH');
    expect(err.message).toContain(DESC.digest);
    expect(err.message).toContain(sha256(other));
    expect(await blobFiles(dir)).toEqual([]);
  });

  it('refuses content of the right digest but another size than the descriptor states', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    const err = await rejection(layout.writeBlobBytes({ ...DESC, size: DESC.size + 1 }, BYTES));
    expect(err.code).toBe('ERR_DIGEST_MISMATCH');
    expect(await blobFiles(dir)).toEqual([]);
  });

  it('passes a failing source error through and removes the partial file', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    const boom = new Error('source broke after the first chunk');
    async function* source(): AsyncGenerator<Uint8Array> {
      yield BYTES.subarray(0, 20);
      throw boom;
    }
    await expect(layout.writeBlob(DESC, source())).rejects.toBe(boom);
    expect(await blobFiles(dir)).toEqual([]);
    expect(await layout.hasBlob(DESC)).toBe(false);
  });

  it('hasBlob hashes the file: a corrupted blob of the right size is not there', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    await layout.writeBlobBytes(DESC, BYTES);
    const path = layout.blobPath(DESC.digest);
    const corrupt = Buffer.from(BYTES);
    corrupt[5] = (corrupt[5] ?? 0) ^ 0x80;
    await writeFile(path, corrupt);
    expect(await layout.hasBlob(DESC)).toBe(false);
    // Without a size to compare, the hash alone decides.
    expect(await layout.hasBlob({ digest: DESC.digest })).toBe(false);
  });

  it('hasBlob is false for a missing blob and for a size mismatch', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    expect(await layout.hasBlob(DESC)).toBe(false);
    await layout.writeBlobBytes(DESC, BYTES);
    expect(await layout.hasBlob({ ...DESC, size: DESC.size + 1 })).toBe(false);
    expect(await layout.hasBlob({ digest: DESC.digest })).toBe(true);
  });

  it('openBlob of a missing blob is ERR_INVALID_LAYOUT naming its path', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    const err = await rejection(layout.openBlob(DESC));
    expect(err.code).toBe('ERR_INVALID_LAYOUT');
    expect(err.message).toContain(layout.blobPath(DESC.digest));
    expect(err.message).toContain(DESC.digest);
  });

  it('openBlob of a blob whose size differs from the descriptor is ERR_INVALID_LAYOUT', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    await layout.writeBlobBytes(DESC, BYTES);
    await writeFile(layout.blobPath(DESC.digest), Buffer.concat([BYTES, Buffer.from('x')]));
    const err = await rejection(layout.openBlob(DESC));
    expect(err.code).toBe('ERR_INVALID_LAYOUT');
    expect(err.message).toContain(`${DESC.size + 1} bytes`);
    expect(err.message).toContain(`says ${DESC.size}`);
  });

  it('openBlob streams the stored bytes', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    await layout.writeBlobBytes(DESC, BYTES);
    const chunks: Buffer[] = [];
    for await (const chunk of (await layout.openBlob(DESC)) as AsyncIterable<Buffer>) chunks.push(chunk);
    expect(Buffer.concat(chunks).equals(BYTES)).toBe(true);
  });

  it('readBlobBytes of a corrupt blob is ERR_DIGEST_MISMATCH naming the file', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    const corrupt = Buffer.from(BYTES);
    corrupt[0] = (corrupt[0] ?? 0) ^ 0xff;
    await layout.writeBlobBytes(DESC, BYTES);
    await writeFile(layout.blobPath(DESC.digest), corrupt);
    const err = await rejection(layout.readBlobBytes(DESC));
    expect(err.code).toBe('ERR_DIGEST_MISMATCH');
    expect(err.message).toContain(layout.blobPath(DESC.digest));
    expect(err.message).toContain(sha256(corrupt));
  });
});

describe('OciLayout index', () => {
  it('reads a layout without index.json as an empty index', async () => {
    await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    const layout = await OciLayout.open(dir);
    expect(await layout.readIndex()).toEqual({ schemaVersion: 2, manifests: [] });
  });

  it('refuses an index.json without a manifests list', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    await writeFile(join(dir, 'index.json'), '{"schemaVersion":2}');
    const err = await rejection(layout.readIndex());
    expect(err.code).toBe('ERR_INVALID_LAYOUT');
    expect(err.message).toContain(join(dir, 'index.json'));
  });

  it('addManifest replaces the entry with the same ref.name and keeps the others', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    const v1 = manifestEntry('v1');
    const other = manifestEntry('other');
    const v2 = manifestEntry('v2');
    await layout.addManifest(v1, 'latest');
    await layout.addManifest(other, 'stable');
    await layout.addManifest(v2, 'latest');
    const index = await layout.readIndex();
    expect(index.schemaVersion).toBe(2);
    expect(index.manifests).toEqual([
      { ...other, annotations: { [REF_NAME_ANNOTATION]: 'stable' } },
      { ...v2, annotations: { [REF_NAME_ANNOTATION]: 'latest' } },
    ]);
    // Written through a temporary file that is renamed: nothing else is left in the folder.
    expect((await readdir(dir)).sort()).toEqual(['blobs', 'index.json', 'oci-layout']);
  });

  it('addManifest keeps other fields of index.json and the descriptor annotations', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    await writeFile(
      join(dir, 'index.json'),
      JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [], annotations: { keep: 'me' } }),
    );
    const entry = manifestEntry('m', { 'org.example.note': 'kept' });
    await layout.addManifest(entry, 'v1');
    const written = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as Record<string, unknown>;
    expect(written.mediaType).toBe(OCI_INDEX);
    expect(written.annotations).toEqual({ keep: 'me' });
    expect(written.manifests).toEqual([
      { ...entry, annotations: { 'org.example.note': 'kept', [REF_NAME_ANNOTATION]: 'v1' } },
    ]);
  });

  it('addManifest without a name replaces the entry with the same digest', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    const a = manifestEntry('a');
    const b = manifestEntry('b');
    await layout.addManifest(a);
    await layout.addManifest(b);
    await layout.addManifest(a);
    expect((await layout.readIndex()).manifests).toEqual([b, a]);
  });

  it('findManifest finds an entry by its name', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    const a = manifestEntry('a');
    const b = manifestEntry('b');
    await layout.addManifest(a, 'one');
    await layout.addManifest(b, 'two');
    expect((await layout.findManifest('two')).digest).toBe(b.digest);
    expect((await layout.findManifest('one')).digest).toBe(a.digest);
  });

  it('findManifest without a name takes the only entry', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    const a = manifestEntry('a');
    await layout.addManifest(a, 'only');
    expect((await layout.findManifest()).digest).toBe(a.digest);
  });

  it('findManifest without a name refuses several entries and lists their names', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    const unnamed = manifestEntry('c');
    await layout.addManifest(manifestEntry('a'), 'one');
    await layout.addManifest(manifestEntry('b'), 'two');
    await layout.addManifest(unnamed);
    const err = await rejection(layout.findManifest());
    expect(err.code).toBe('ERR_INVALID_LAYOUT');
    expect(err.message).toContain('which image to use');
    // An entry without a name is listed by its digest.
    expect(err.message).toContain(`it has: one, two, ${unnamed.digest}`);
  });

  it('findManifest refuses an unknown name and lists what the layout has', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    await layout.addManifest(manifestEntry('a'), 'one');
    const err = await rejection(layout.findManifest('missing'));
    expect(err.code).toBe('ERR_INVALID_LAYOUT');
    expect(err.message).toContain('no image named "missing"');
    expect(err.message).toContain('it has: one');
  });

  it('findManifest on an empty layout says it holds no image', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    const err = await rejection(layout.findManifest('v1'));
    expect(err.code).toBe('ERR_INVALID_LAYOUT');
    expect(err.message).toBe(
      `${dir} holds no image: ${join(dir, 'index.json')} lists none; pull or copy an image into it first`,
    );
  });

  it('findManifest on a layout without index.json (an older interrupted pull) says so', async () => {
    await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    const layout = await OciLayout.open(dir);
    const err = await rejection(layout.findManifest());
    expect(err.code).toBe('ERR_INVALID_LAYOUT');
    expect(err.message).toContain(`${dir} holds no image: it has no ${join(dir, 'index.json')}`);
  });
});

describe.each(['yielded', 'pumped'] as const)('OciLayout partial downloads (%s source)', (kind) => {
  const BIG = Buffer.alloc(3 * 1024 * 1024 + 777);
  for (let i = 0; i < BIG.length; i++) BIG[i] = (i * 7 + (i >> 10)) & 0xff;
  const BIG_DESC = { digest: sha256(BIG), size: BIG.length };
  const hex = BIG_DESC.digest.slice('sha256:'.length);
  const partialFolder = () => join(dir, PARTIAL_DIR, 'sha256');
  const partialFiles = async () => (await readdir(partialFolder()).catch(() => [] as string[])).sort();
  /**
   * The source as writeBlob is given it: the function itself, or pumped (pumpBlob's way), each
   * chunk a view of one scratch buffer overwritten after write returns, as a connection's read
   * buffer is: a writer that kept a chunk instead of writing it out would keep garbage.
   */
  const asSource = (fn: (held: HeldBytes | undefined) => AsyncIterable<Uint8Array>): BlobSource =>
    kind === 'yielded'
      ? fn
      : {
          pump: async (held, write) => {
            const scratch = Buffer.alloc(100_000);
            for await (const chunk of fn(held)) {
              for (let at = 0; at < chunk.length; at += scratch.length) {
                const part = chunk.subarray(at, at + scratch.length);
                scratch.set(part);
                write(scratch.subarray(0, part.length));
                scratch.fill(0xee);
              }
            }
          },
        };
  const networkBreak = () => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });

  /** A resumable source like readBlob: gets what was held, yields the rest in 64 KiB chunks. */
  function resumable(
    blob: Buffer,
    options: { breakAt?: number; calls?: (number | undefined)[]; gate?: () => Promise<void> } = {},
  ): (held: HeldBytes | undefined) => AsyncIterable<Uint8Array> {
    return (held) =>
      (async function* () {
        options.calls?.push(held?.size);
        if (held) {
          const chunks: Buffer[] = [];
          for await (const chunk of held.read()) chunks.push(Buffer.from(chunk));
          expect(Buffer.concat(chunks).length).toBe(held.size);
        }
        for (let at = held?.size ?? 0; at < blob.length; at += 64 * 1024) {
          await options.gate?.();
          const end = Math.min(at + 64 * 1024, blob.length);
          if (options.breakAt !== undefined && end > options.breakAt) {
            if (options.breakAt > at) yield blob.subarray(at, options.breakAt);
            throw networkBreak();
          }
          yield blob.subarray(at, end);
        }
      })();
  }

  it('keeps the bytes of a broken download under a stable name, written out to the last one', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    // Not a multiple of the write batch: the last, unbatched bytes must reach the file too.
    const BREAK = 1024 * 1024 + 4242;
    await expect(
      layout.writeBlob(BIG_DESC, asSource(resumable(BIG, { breakAt: BREAK }))),
    ).rejects.toMatchObject({
      code: 'ECONNRESET',
    });
    expect(await partialFiles()).toEqual([hex]);
    const kept = await readFile(join(partialFolder(), hex));
    expect(kept.length).toBe(BREAK);
    expect(kept.equals(BIG.subarray(0, BREAK))).toBe(true);
    expect(await blobFiles(dir)).toEqual([]);
  });

  it('says where a RegauthError left the bytes', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    const source = async function* () {
      yield BIG.subarray(0, 5000);
      throw new RegauthError('ERR_NETWORK', 'blob x: the connection broke');
    };
    const err = await rejection(
      layout.writeBlob(
        BIG_DESC,
        asSource(() => source()),
      ),
    );
    expect(err.code).toBe('ERR_NETWORK');
    expect(err.message).toBe(
      `blob x: the connection broke; the 5000 bytes received are kept in ${join(partialFolder(), hex)}, and the next pull into this layout continues from there`,
    );
  });

  it('resumes from the kept bytes, verifies the whole blob and leaves no partial file', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    await expect(
      layout.writeBlob(BIG_DESC, asSource(resumable(BIG, { breakAt: 2_000_000 }))),
    ).rejects.toMatchObject({
      code: 'ECONNRESET',
    });
    const calls: (number | undefined)[] = [];
    await layout.writeBlob(BIG_DESC, asSource(resumable(BIG, { calls })));
    expect(calls).toEqual([2_000_000]);
    expect((await readFile(layout.blobPath(BIG_DESC.digest))).equals(BIG)).toBe(true);
    expect(await partialFiles()).toEqual([]);
    expect(await blobFiles(dir)).toEqual([hex]);
  });

  it('discards a corrupt partial file and fetches the blob again from its first byte', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    const corrupt = Buffer.from(BIG.subarray(0, 100_000));
    corrupt[500] = (corrupt[500] ?? 0) ^ 0x40;
    await mkdir(partialFolder(), { recursive: true });
    await writeFile(join(partialFolder(), hex), corrupt);
    const calls: (number | undefined)[] = [];
    await layout.writeBlob(BIG_DESC, asSource(resumable(BIG, { calls })));
    expect(calls).toEqual([100_000, undefined]);
    expect((await readFile(layout.blobPath(BIG_DESC.digest))).equals(BIG)).toBe(true);
    expect(await partialFiles()).toEqual([]);
  });

  it('discards a partial file longer than the blob without handing it to the source', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    await mkdir(partialFolder(), { recursive: true });
    await writeFile(join(partialFolder(), hex), Buffer.concat([BIG, Buffer.from('more')]));
    const calls: (number | undefined)[] = [];
    await layout.writeBlob(BIG_DESC, asSource(resumable(BIG, { calls })));
    expect(calls).toEqual([undefined]);
    expect(await layout.hasBlob(BIG_DESC)).toBe(true);
  });

  it('starts over when the registry refuses the range (416)', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    await mkdir(partialFolder(), { recursive: true });
    await writeFile(join(partialFolder(), hex), BIG.subarray(0, 1000));
    const calls: (number | undefined)[] = [];
    await layout.writeBlob(
      BIG_DESC,
      asSource((held) => {
        calls.push(held?.size);
        if (held) {
          return (async function* () {
            yield* [];
            throw new RegauthError('ERR_REGISTRY', 'blob: 416 Range Not Satisfiable', { status: 416 });
          })();
        }
        return resumable(BIG)(undefined);
      }),
    );
    expect(calls).toEqual([1000, undefined]);
    expect(await layout.hasBlob(BIG_DESC)).toBe(true);
    expect(await partialFiles()).toEqual([]);
  });

  it('keeps no partial file when the fresh download itself proves wrong', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    const wrong = Buffer.from(BIG);
    wrong[9] = (wrong[9] ?? 0) ^ 1;
    const err = await rejection(layout.writeBlob(BIG_DESC, asSource(resumable(wrong))));
    expect(err.code).toBe('ERR_DIGEST_MISMATCH');
    expect(await partialFiles()).toEqual([]);
    expect(await blobFiles(dir)).toEqual([]);
  });

  it('lets two writers of one blob into one layout run at once without sharing a file', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    const other = await OciLayout.open(dir);
    await mkdir(partialFolder(), { recursive: true });
    await writeFile(join(partialFolder(), hex), BIG.subarray(0, 700_000));
    // Each chunk waits for a turn, so the two writers interleave chunk by chunk.
    let turn = Promise.resolve();
    const gate = () => {
      const mine = turn.then(() => new Promise<void>((r) => setImmediate(r)));
      turn = mine;
      return mine;
    };
    const callsA: (number | undefined)[] = [];
    const callsB: (number | undefined)[] = [];
    await Promise.all([
      layout.writeBlob(BIG_DESC, asSource(resumable(BIG, { calls: callsA, gate }))),
      other.writeBlob(BIG_DESC, asSource(resumable(BIG, { calls: callsB, gate }))),
    ]);
    // One took the kept bytes over, the other started on a file of its own.
    expect([...callsA, ...callsB].sort()).toEqual([700_000, undefined]);
    expect((await readFile(layout.blobPath(BIG_DESC.digest))).equals(BIG)).toBe(true);
    expect(await partialFiles()).toEqual([]);
  });

  it('a plain iterable source never takes over kept bytes, and removes its own on failure', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    await mkdir(partialFolder(), { recursive: true });
    await writeFile(join(partialFolder(), hex), BIG.subarray(0, 1000));
    const boom = new Error('source broke');
    async function* source(): AsyncGenerator<Uint8Array> {
      yield BIG.subarray(0, 20);
      throw boom;
    }
    await expect(layout.writeBlob(BIG_DESC, source())).rejects.toBe(boom);
    expect(await partialFiles()).toEqual([hex]);
    expect((await readFile(join(partialFolder(), hex))).length).toBe(1000);
  });

  it('sweepPartials removes kept partial files and their folder', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    await expect(layout.writeBlob(BIG_DESC, asSource(resumable(BIG, { breakAt: 10 })))).rejects.toMatchObject(
      {
        code: 'ECONNRESET',
      },
    );
    expect(await partialFiles()).toEqual([hex]);
    await layout.sweepPartials();
    expect((await readdir(dir)).sort()).toEqual(['blobs', 'index.json', 'oci-layout']);
  });

  it('removeIfEmpty removes a folder it made that holds nothing, with the parents it made', async () => {
    const target = join(dir, 'made', 'layout');
    const layout = await OciLayout.open(target, { create: true });
    expect(layout.createdDir).toBe(join(dir, 'made'));
    expect(await layout.removeIfEmpty()).toBe(true);
    expect(await readdir(dir)).toEqual([]);
  });

  it('removeIfEmpty keeps a layout that holds a partial download, a blob, or was there before', async () => {
    const target = join(dir, 'made');
    const layout = await OciLayout.open(target, { create: true });
    await expect(layout.writeBlob(BIG_DESC, resumable(BIG, { breakAt: 10 }))).rejects.toMatchObject({
      code: 'ECONNRESET',
    });
    expect(await layout.removeIfEmpty()).toBe(false);
    expect((await readdir(target)).sort()).toEqual([PARTIAL_DIR, 'blobs', 'index.json', 'oci-layout']);

    await layout.sweepPartials();
    await layout.writeBlobBytes(DESC, BYTES);
    expect(await layout.removeIfEmpty()).toBe(false);
    expect(await layout.hasBlob(DESC)).toBe(true);

    const existing = await OciLayout.open(dir, { create: true });
    expect(existing.createdDir).toBeUndefined();
    expect(await existing.removeIfEmpty()).toBe(false);
    expect(await readdir(dir)).toContain('oci-layout');
  });
});

describe('Writeback', () => {
  it('starts a sync each time the bytes written since the last pass the step, one at a time', async () => {
    let started = 0;
    let finish = () => {};
    const writeback = new Writeback(() => {
      started++;
      return new Promise<void>((resolve) => {
        finish = resolve;
      });
    }, 100);
    writeback.wrote(60);
    expect(started).toBe(0);
    writeback.wrote(60);
    expect(started).toBe(1);
    // One is running: no second one however much is written meanwhile.
    writeback.wrote(500);
    expect(started).toBe(1);
    finish();
    await writeback.settled();
    writeback.wrote(100);
    expect(started).toBe(2);
    finish();
    await writeback.settled();
  });

  it('keeps the error of a sync that failed, for settled() to throw, and starts no more', async () => {
    let started = 0;
    const lost = Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
    const writeback = new Writeback(async () => {
      started++;
      throw lost;
    }, 10);
    writeback.wrote(10);
    await expect(writeback.settled()).rejects.toBe(lost);
    writeback.wrote(100);
    expect(started).toBe(1);
    await expect(writeback.settled()).rejects.toBe(lost);
  });

  it('writes a pumped blob larger than a writeback step whole', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'regauth-writeback-'));
    try {
      const blob = Buffer.alloc(40 * 1024 * 1024 + 5);
      for (let i = 0; i < blob.length; i += 4096) blob[i] = (i >> 12) & 0xff;
      const descriptor = { digest: sha256(blob), size: blob.length };
      const layout = await OciLayout.open(dir, { create: true });
      await layout.writeBlob(descriptor, {
        pump: async (_held, write) => {
          for (let at = 0; at < blob.length; at += 1024 * 1024) write(blob.subarray(at, at + 1024 * 1024));
        },
      });
      expect(sha256(await readFile(layout.blobPath(descriptor.digest)))).toBe(descriptor.digest);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
