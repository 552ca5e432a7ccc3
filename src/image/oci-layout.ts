import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { parseDigest } from '../digest/digest.js';
import { fileSystemError, withFileSystemErrors } from '../errors/file-system-error.js';
import { RegauthError } from '../errors/regauth-error.js';
import type { BlobDescriptor } from './read-blob.js';

export const OCI_LAYOUT_VERSION = '1.0.0';
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
const WRITE_BATCH_BYTES = 1024 * 1024;

export interface LayoutDescriptor extends BlobDescriptor {
  readonly mediaType: string;
  readonly size: number;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly platform?: Readonly<Record<string, unknown>>;
}

interface IndexFile {
  schemaVersion: 2;
  mediaType?: string;
  manifests: LayoutDescriptor[];
  [key: string]: unknown;
}

/**
 * An OCI image layout on disk (image-spec image-layout.md): `oci-layout`, `index.json`,
 * `blobs/<alg>/<hex>`. Blobs are written to a temporary file and renamed only once their digest
 * is right, so an interrupted or corrupt transfer never leaves a blob under its name.
 */
export class OciLayout {
  readonly dir: string;

  private constructor(dir: string) {
    this.dir = dir;
  }

  /** Opens a layout; with `create`, makes the folder and its `oci-layout` file when missing. */
  static async open(dir: string, options: { create?: boolean } = {}): Promise<OciLayout> {
    const layoutFile = join(dir, 'oci-layout');
    let text: string | undefined;
    try {
      text = await readFile(layoutFile, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTDIR' && !options.create) {
        throw new RegauthError(
          'ERR_INVALID_LAYOUT',
          `${dir} is not an OCI image layout: it is a file, not a folder; give the layout's folder`,
          { cause: err },
        );
      }
      if (code !== 'ENOENT') throw fileSystemError(err, 'open the OCI image layout', dir);
    }
    if (text === undefined) {
      if (!options.create) {
        throw new RegauthError(
          'ERR_INVALID_LAYOUT',
          `${dir} is not an OCI image layout: ${layoutFile} is missing`,
        );
      }
      await withFileSystemErrors('create the OCI image layout', dir, async () => {
        await mkdir(join(dir, 'blobs'), { recursive: true });
        await writeFile(layoutFile, JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION }));
      });
      return new OciLayout(dir);
    }
    let version: unknown;
    try {
      version = (JSON.parse(text) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
    } catch {
      version = undefined;
    }
    if (typeof version !== 'string' || !version.startsWith('1.')) {
      throw new RegauthError(
        'ERR_INVALID_LAYOUT',
        `${layoutFile}: expected {"imageLayoutVersion":"1.0.0"}, found ${JSON.stringify(text.slice(0, 80))}`,
      );
    }
    return new OciLayout(dir);
  }

  blobPath(digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return join(this.dir, 'blobs', algorithm, hex);
  }

  /** Whether the layout holds this blob with the right size and digest (hashed, not trusted). */
  async hasBlob(descriptor: BlobDescriptor): Promise<boolean> {
    const path = this.blobPath(descriptor.digest);
    try {
      const info = await stat(path);
      if (descriptor.size !== undefined && info.size !== descriptor.size) return false;
    } catch {
      return false;
    }
    const { algorithm } = parseDigest(descriptor.digest);
    const hash = createHash(algorithm);
    for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) hash.update(chunk);
    return `${algorithm}:${hash.digest('hex')}` === descriptor.digest;
  }

  /**
   * Writes a blob from `source`, hashing it on the way; renamed into place only when the digest
   * (and size, when known) match. On any failure the temporary file is removed.
   */
  async writeBlob(
    descriptor: BlobDescriptor,
    source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    options: { readonly sourceVerifies?: boolean } = {},
  ): Promise<void> {
    const path = this.blobPath(descriptor.digest);
    const { algorithm } = parseDigest(descriptor.digest);
    const temp = `${path}.${randomBytes(6).toString('hex')}.partial`;
    // A source that checks the digest itself (readBlob throws before its last chunk is taken)
    // need not be hashed twice: the rename below happens only after it finished cleanly.
    const hash = options.sourceVerifies ? undefined : createHash(algorithm);
    let size = 0;
    const file = await withFileSystemErrors('write a blob into', this.dir, async () => {
      await mkdir(join(this.dir, 'blobs', algorithm), { recursive: true });
      return open(temp, 'w');
    });
    try {
      // Network chunks are ~64 KiB: gather them into one writev per WRITE_BATCH_BYTES, so a
      // gigabyte costs a thousand system calls, not sixteen thousand.
      let batch: Uint8Array[] = [];
      let batched = 0;
      for await (const chunk of source) {
        hash?.update(chunk);
        size += chunk.length;
        batch.push(chunk);
        batched += chunk.length;
        if (batched >= WRITE_BATCH_BYTES) {
          await file.writev(batch);
          batch = [];
          batched = 0;
        }
      }
      if (batch.length > 0) await file.writev(batch);
      await file.sync();
      await file.close();
      const actual = hash === undefined ? descriptor.digest : `${algorithm}:${hash.digest('hex')}`;
      if (actual !== descriptor.digest || (descriptor.size !== undefined && size !== descriptor.size)) {
        throw new RegauthError(
          'ERR_DIGEST_MISMATCH',
          `blob ${descriptor.digest}: received ${size} bytes hashing to ${actual}; nothing was written`,
        );
      }
      await rename(temp, path);
    } catch (err) {
      await file.close().catch(() => {});
      await rm(temp, { force: true });
      throw fileSystemError(err, 'write a blob to', path);
    }
  }

  async writeBlobBytes(descriptor: BlobDescriptor, bytes: Uint8Array): Promise<void> {
    await this.writeBlob(descriptor, [bytes]);
  }

  /** A blob as a stream (from byte `start` on); a missing blob is an error naming its file. */
  async openBlob(descriptor: BlobDescriptor, start = 0): Promise<Readable> {
    const path = this.blobPath(descriptor.digest);
    try {
      const info = await stat(path);
      if (descriptor.size !== undefined && info.size !== descriptor.size) {
        throw new RegauthError(
          'ERR_INVALID_LAYOUT',
          `${path} has ${info.size} bytes, but the manifest says ${descriptor.size}: the layout is corrupt`,
        );
      }
    } catch (err) {
      if (err instanceof RegauthError) throw err;
      throw new RegauthError(
        'ERR_INVALID_LAYOUT',
        `blob ${descriptor.digest} is missing from the layout: ${path}`,
        {
          cause: err,
        },
      );
    }
    return createReadStream(path, { start, highWaterMark: 1024 * 1024 });
  }

  /** A small blob (manifest, config) read whole and checked against its digest. */
  async readBlobBytes(descriptor: BlobDescriptor): Promise<Buffer> {
    const stream = await this.openBlob(descriptor);
    const chunks: Buffer[] = [];
    for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
    const bytes = Buffer.concat(chunks);
    const { algorithm } = parseDigest(descriptor.digest);
    const actual = `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
    if (actual !== descriptor.digest) {
      throw new RegauthError(
        'ERR_DIGEST_MISMATCH',
        `${this.blobPath(descriptor.digest)} hashes to ${actual}, not ${descriptor.digest}: the layout is corrupt`,
      );
    }
    return bytes;
  }

  async readIndex(): Promise<IndexFile> {
    const file = join(this.dir, 'index.json');
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { schemaVersion: 2, manifests: [] };
      throw fileSystemError(err, 'read', file);
    }
    try {
      const index = JSON.parse(text) as IndexFile;
      if (!Array.isArray(index.manifests)) throw new Error('no manifests list');
      return index;
    } catch (cause) {
      throw new RegauthError(
        'ERR_INVALID_LAYOUT',
        `${file} is not an OCI image index: ${(cause as Error).message}`,
        {
          cause,
        },
      );
    }
  }

  /**
   * The manifest entry of `index.json` named `refName` (its ref.name annotation); without a
   * name, the only entry. An unknown or ambiguous name lists what the layout has.
   */
  async findManifest(refName?: string): Promise<LayoutDescriptor> {
    const index = await this.readIndex();
    const names = index.manifests.map((m) => m.annotations?.[REF_NAME_ANNOTATION] ?? m.digest);
    const found =
      refName === undefined
        ? index.manifests.length === 1
          ? index.manifests[0]
          : undefined
        : index.manifests.find(
            (m) => m.annotations?.[REF_NAME_ANNOTATION] === refName || m.digest === refName,
          );
    if (!found) {
      const which =
        refName === undefined
          ? 'which image to use (name one as DIR:TAG)'
          : `no image named ${JSON.stringify(refName)}`;
      throw new RegauthError(
        'ERR_INVALID_LAYOUT',
        `${this.dir}: ${which}; it has: ${names.join(', ') || 'nothing'}`,
      );
    }
    return found;
  }

  /** Adds a manifest to `index.json` under `refName`, replacing an entry of the same name. */
  async addManifest(descriptor: LayoutDescriptor, refName?: string): Promise<void> {
    const index = await this.readIndex();
    const entry: LayoutDescriptor =
      refName === undefined
        ? descriptor
        : { ...descriptor, annotations: { ...descriptor.annotations, [REF_NAME_ANNOTATION]: refName } };
    index.manifests = index.manifests.filter((m) =>
      refName === undefined
        ? m.digest !== descriptor.digest
        : m.annotations?.[REF_NAME_ANNOTATION] !== refName,
    );
    index.manifests.push(entry);
    const file = join(this.dir, 'index.json');
    const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await writeFile(temp, JSON.stringify({ ...index, schemaVersion: 2 }));
      await rename(temp, file);
    } catch (err) {
      await rm(temp, { force: true });
      throw fileSystemError(err, 'write', file);
    }
  }
}
