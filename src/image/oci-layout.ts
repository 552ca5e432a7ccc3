import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, writeSync } from 'node:fs';
import {
  link,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  rmdir,
  stat,
  truncate,
  writeFile,
} from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { parseDigest } from '../digest/digest.js';
import { fileSystemError, withFileSystemErrors } from '../errors/file-system-error.js';
import { RegauthError } from '../errors/regauth-error.js';
import { OCI_INDEX } from '../registry/media-types.js';
import { PARTIAL_DIR, PartialBlobs, type PartialClaim } from './partial-blobs.js';
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

export interface WriteBlobOptions {
  /** The source checks the digest itself (readBlob): the bytes are not hashed a second time. */
  readonly sourceVerifies?: boolean;
  /**
   * The signal the source heeds. When it has aborted, the blob's partial file is removed
   * (unless `keepPartial`) instead of kept for the next run.
   */
  readonly signal?: AbortSignal;
  /** Keep the partial file of a blob whose download was aborted, for a later run to resume. */
  readonly keepPartial?: boolean;
}

/** Where a resumable download picks up: the first bytes of the blob, kept by an earlier run. */
export interface HeldBytes {
  readonly size: number;
  read(): AsyncIterable<Uint8Array>;
}

/**
 * What `writeBlob` writes: chunks from the first byte on, or a resumable download that is given
 * the bytes an earlier run kept and yields those after them.
 */
export type BlobSource =
  | AsyncIterable<Uint8Array>
  | Iterable<Uint8Array>
  | ((held: HeldBytes | undefined) => AsyncIterable<Uint8Array>)
  | PumpedBlobSource;

/**
 * A resumable download that hands each chunk to a writer instead of yielding it (pumpBlob):
 * given the bytes held as a function source is, it calls `write` with the bytes after them, in
 * order, each chunk valid only while `write` runs, and checks the digest of the whole blob.
 */
export interface PumpedBlobSource {
  pump(held: HeldBytes | undefined, write: (chunk: Uint8Array) => void): Promise<void>;
}

function isPumped(source: BlobSource): source is PumpedBlobSource {
  return typeof (source as Partial<PumpedBlobSource>).pump === 'function';
}

/**
 * The kernel is asked to start writing a blob out every this many bytes (fdatasync, off the
 * event loop), so the disk works while the download goes on: the final fsync then waits for
 * the last stretch only, not for the whole blob at once (at 350 MB/s, 0.7 s for 256 MiB).
 */
const WRITEBACK_BYTES = 32 * 1024 * 1024;

/**
 * Starts fdatasync on a file every WRITEBACK_BYTES written, one at a time. Linux reports a
 * failed writeback once per open file, to the first sync that asks: an error here is kept and
 * thrown by settled(), so the blob fails instead of the final fsync finding nothing wrong.
 */
export class Writeback {
  readonly #sync: () => Promise<void>;
  readonly #every: number;
  #since = 0;
  #running: Promise<void> | undefined;
  #failed: { readonly err: unknown } | undefined;

  /** `sync`: the file's datasync. `every`: left out, WRITEBACK_BYTES. */
  constructor(sync: () => Promise<void>, every = WRITEBACK_BYTES) {
    this.#sync = sync;
    this.#every = every;
  }

  wrote(bytes: number): void {
    this.#since += bytes;
    if (this.#since < this.#every || this.#running !== undefined || this.#failed !== undefined) return;
    this.#since = 0;
    this.#running = this.#sync()
      .catch((err: unknown) => {
        this.#failed = { err };
      })
      .finally(() => {
        this.#running = undefined;
      });
  }

  /** Waits for the one running, if any (before the file is synced or closed); throws the error of any that failed. */
  async settled(): Promise<void> {
    await this.#running;
    if (this.#failed !== undefined) throw this.#failed.err;
  }
}

/** Writes all of `chunk` at the file's end, now: the chunk may be a view of a buffer reused next. */
function writeAllSync(fd: number, chunk: Uint8Array): void {
  let done = 0;
  while (done < chunk.length) done += writeSync(fd, chunk, done, chunk.length - done);
}

const ignore = () => {};

/** Errors that prove a partial download wrong, rather than only interrupted. */
function provesPartialWrong(err: unknown): boolean {
  if (!(err instanceof RegauthError)) return false;
  // 416: the registry will not serve from there (the blob is shorter than the partial file);
  // 206 with another range than asked (readBlob's ERR_REGISTRY).
  return (
    err.code === 'ERR_DIGEST_MISMATCH' ||
    err.status === 416 ||
    (err.code === 'ERR_REGISTRY' && err.status === 206)
  );
}

async function restart(claim: PartialClaim): Promise<PartialClaim> {
  await withFileSystemErrors('start over the partial download', claim.path, () => truncate(claim.path, 0));
  return { path: claim.path, size: 0 };
}

function keptError(err: unknown, kept: { path: string; size: number }): unknown {
  if (!(err instanceof RegauthError)) return err;
  return new RegauthError(
    err.code,
    `${err.message}; the ${kept.size} bytes received are kept in ${kept.path}, and the next pull into this layout continues from there`,
    {
      cause: err,
      registryErrors: err.registryErrors,
      ...(err.status === undefined ? {} : { status: err.status }),
      ...(err.access === undefined ? {} : { access: err.access }),
    },
  );
}

/**
 * Writes `index.json` listing no image unless the layout has one: to a temporary file first,
 * linked into place, so it is never seen half-written and never replaces an index.
 */
async function writeEmptyIndex(dir: string): Promise<void> {
  const file = join(dir, 'index.json');
  // A layout that has its index (the usual case) is left untouched: it may be read-only.
  if (
    await stat(file).then(
      () => true,
      () => false,
    )
  )
    return;
  const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(temp, JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }));
  try {
    await link(temp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    await rm(temp, { force: true });
  }
}

/**
 * An OCI image layout on disk (image-spec image-layout.md): `oci-layout`, `index.json`,
 * `blobs/<alg>/<hex>`. Blobs are written to a partial file outside `blobs/` and renamed only once
 * their digest is right, so an interrupted or corrupt transfer never leaves a blob under its name,
 * and an interrupted download can be resumed by the next run.
 */
export class OciLayout {
  readonly dir: string;
  /** The topmost folder `open` made for this layout (`dir` or a parent), when it made one. */
  readonly createdDir: string | undefined;
  readonly #partials: PartialBlobs;

  private constructor(dir: string, createdDir?: string) {
    this.dir = dir;
    this.createdDir = createdDir;
    this.#partials = new PartialBlobs(dir);
  }

  /**
   * Opens a layout; with `create`, makes the folder when missing, with `blobs/`, an `index.json`
   * that lists no image, and then `oci-layout`: a folder that has `oci-layout` is always a whole
   * layout (umoci and `push` both refuse one without `index.json`). An existing layout made
   * without `index.json` gets one.
   */
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
      const created = await withFileSystemErrors('create the OCI image layout', dir, async () => {
        const made = await mkdir(join(dir, 'blobs'), { recursive: true });
        await writeEmptyIndex(dir);
        await writeFile(layoutFile, JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION }));
        return made;
      });
      // mkdir names the first folder it made: `blobs` alone when `dir` was there already.
      return new OciLayout(
        dir,
        created === undefined || created === join(dir, 'blobs') ? undefined : created,
      );
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
    if (options.create)
      await withFileSystemErrors('complete the OCI image layout (index.json) in', dir, () =>
        writeEmptyIndex(dir),
      );
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
   * Writes a blob from `source`, renamed into `blobs/` only when its digest (and size, when
   * known) match. The bytes go to a partial file of this writer's own (see PartialBlobs).
   *
   * A plain iterable is written from its first byte, and its partial file is removed on any
   * failure. A resumable source, a function, is handed what an earlier run left for this digest
   * (`held`): it must yield the bytes after those and verify the digest of the whole blob. When
   * it breaks (the network, a signal), what it yielded is written out and the partial file stays
   * for the next run; when its data proves wrong (a digest mismatch, a registry refusing the
   * range), the partial file is discarded and, if it held bytes, the blob is fetched once more
   * from its first byte.
   */
  async writeBlob(
    descriptor: BlobDescriptor,
    source: BlobSource,
    options: WriteBlobOptions = {},
  ): Promise<void> {
    const path = this.blobPath(descriptor.digest);
    const resumable = typeof source === 'function' || isPumped(source);
    let claim = await withFileSystemErrors('write a blob into', this.dir, async () => {
      await mkdir(dirname(path), { recursive: true });
      return this.#partials.claim(descriptor.digest, { resume: resumable });
    });
    for (;;) {
      if (descriptor.size !== undefined && claim.size > descriptor.size) claim = await restart(claim);
      try {
        await this.#fill(descriptor, claim, source, options.sourceVerifies === true);
        await withFileSystemErrors('move the finished blob to', path, () => rename(claim.path, path));
        return;
      } catch (err) {
        if (options.signal?.aborted && !options.keepPartial) {
          // The caller stopped it and asked for nothing to be kept: the bytes go, whatever
          // an earlier run had left under this digest and this writer took over.
          await rm(claim.path, { force: true });
          throw err;
        }
        const suspect = provesPartialWrong(err);
        if (resumable && suspect && claim.size > 0) {
          claim = await restart(claim);
          continue;
        }
        if (!resumable || suspect) {
          await rm(claim.path, { force: true });
          throw err;
        }
        // A partial that cannot be put back is the next run's to find: the first error stands.
        const kept = await this.#partials.release(claim, descriptor.digest).catch(() => undefined);
        throw kept === undefined ? err : keptError(err, kept);
      }
    }
  }

  /** Appends what `source` yields to the claimed file, then syncs it and checks size and digest. */
  async #fill(
    descriptor: BlobDescriptor,
    claim: PartialClaim,
    source: BlobSource,
    sourceVerifies: boolean,
  ): Promise<void> {
    const { algorithm } = parseDigest(descriptor.digest);
    const held = (): AsyncIterable<Buffer> =>
      createReadStream(claim.path, { start: 0, end: claim.size - 1, highWaterMark: WRITE_BATCH_BYTES });
    // A source that checks the digest itself (readBlob throws before its last chunk is taken)
    // need not be hashed twice: the rename happens only after it finished cleanly.
    const hash = sourceVerifies ? undefined : createHash(algorithm);
    if (hash && claim.size > 0) for await (const chunk of held()) hash.update(chunk);
    let size = claim.size;
    const given = claim.size > 0 ? { size: claim.size, read: held } : undefined;
    const file = await withFileSystemErrors('write a blob to', claim.path, () => open(claim.path, 'a'));
    const writeback = new Writeback(() => file.datasync());
    // Network chunks from a stream are ~64 KiB: gather them into one writev per WRITE_BATCH_BYTES,
    // so a gigabyte costs a thousand system calls, not sixteen thousand.
    let batch: Uint8Array[] = [];
    let batched = 0;
    try {
      if (isPumped(source)) {
        // Each chunk is written before the next is read: it may be a view of a reused buffer.
        await source.pump(given, (chunk) => {
          hash?.update(chunk);
          writeAllSync(file.fd, chunk);
          size += chunk.length;
          writeback.wrote(chunk.length);
        });
      } else {
        for await (const chunk of typeof source === 'function' ? source(given) : source) {
          hash?.update(chunk);
          size += chunk.length;
          batch.push(chunk);
          batched += chunk.length;
          if (batched >= WRITE_BATCH_BYTES) {
            const full = batch;
            const bytes = batched;
            batch = [];
            batched = 0;
            await file.writev(full);
            writeback.wrote(bytes);
          }
        }
        if (batch.length > 0) {
          const last = batch;
          batch = [];
          await file.writev(last);
        }
      }
      await writeback.settled();
      await file.sync();
    } catch (err) {
      // What arrived before a break is written out: the next run resumes after the file's last
      // byte, so the file must hold every byte before it (the final digest check guards the rest).
      if (batch.length > 0) await file.writev(batch).catch(ignore);
      await writeback.settled().catch(ignore);
      await file.close().catch(ignore);
      throw fileSystemError(err, 'write a blob to', claim.path);
    }
    await file.close();
    const actual = hash === undefined ? descriptor.digest : `${algorithm}:${hash.digest('hex')}`;
    if (actual !== descriptor.digest || (descriptor.size !== undefined && size !== descriptor.size)) {
      throw new RegauthError(
        'ERR_DIGEST_MISMATCH',
        `blob ${descriptor.digest}: received ${size} bytes hashing to ${actual}; nothing was written`,
      );
    }
  }

  /**
   * Removes the partial downloads no running pull holds (and their folder): called after a pull
   * succeeded, so that a layout holds no partial files once an image is complete.
   */
  async sweepPartials(): Promise<void> {
    await this.#partials.sweep();
  }

  /** Removes the partial-download folders when they hold nothing (after an aborted pull). */
  async removeEmptyPartialFolders(): Promise<void> {
    await this.#partials.removeEmptyFolders();
  }

  /**
   * Undoes `open({ create: true })` after a pull that kept nothing: removes the layout's skeleton
   * (`oci-layout`, an `index.json` listing no image, empty folders) and the folders `open` made.
   * Anything else found there (a blob, a partial download, a listed image) keeps it all.
   */
  async removeIfEmpty(): Promise<boolean> {
    if (this.createdDir === undefined) return false;
    // Only folders inside, recursively: removed on the way, as nothing is lost with them.
    const emptyFolders = async (folder: string): Promise<boolean> => {
      for (const entry of await readdir(folder, { withFileTypes: true })) {
        if (!entry.isDirectory() || !(await emptyFolders(join(folder, entry.name)))) return false;
        await rmdir(join(folder, entry.name));
      }
      return true;
    };
    const isFolder = async (path: string) =>
      (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
    try {
      for (const folder of [join(this.dir, 'blobs'), this.#partials.dir]) {
        if ((await isFolder(folder)) && !(await emptyFolders(folder))) return false;
      }
      const index = await this.readIndex().catch(() => undefined);
      if (index === undefined || index.manifests.length > 0) return false;
      const skeleton = ['blobs', PARTIAL_DIR, 'index.json', 'oci-layout'];
      if ((await readdir(this.dir)).some((name) => !skeleton.includes(name))) return false;
      await rm(join(this.dir, 'oci-layout'), { force: true });
      await rm(join(this.dir, 'index.json'), { force: true });
      for (const folder of [join(this.dir, 'blobs'), this.#partials.dir]) await rmdir(folder).catch(ignore);
      for (let folder = this.dir; ; folder = dirname(folder)) {
        await rmdir(folder);
        if (folder === this.createdDir || dirname(folder) === folder) break;
      }
      return true;
    } catch {
      // Another writer got there meanwhile: what it put there stays.
      return false;
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
    if (index.manifests.length === 0) {
      const file = join(this.dir, 'index.json');
      const why = (await stat(file).catch(() => undefined))
        ? `${file} lists none`
        : `it has no ${file} (a pull that did not finish?)`;
      throw new RegauthError(
        'ERR_INVALID_LAYOUT',
        `${this.dir} holds no image: ${why}; pull or copy an image into it first`,
      );
    }
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
      throw new RegauthError('ERR_INVALID_LAYOUT', `${this.dir}: ${which}; it has: ${names.join(', ')}`);
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
