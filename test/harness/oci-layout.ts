import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A minimal ustar archive of regular files: enough for a real image layer. */
export function tarFiles(files: Readonly<Record<string, string>>): Buffer {
  const blocks: Buffer[] = [];
  for (const [name, text] of Object.entries(files)) {
    const data = Buffer.from(text);
    const header = Buffer.alloc(512);
    header.write(name, 0, 100);
    header.write('0000644\0', 100);
    header.write('0000000\0', 108);
    header.write('0000000\0', 116);
    header.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124);
    header.write(
      `${Math.floor(Date.UTC(2024, 0, 1) / 1000)
        .toString(8)
        .padStart(11, '0')}\0`,
      136,
    );
    header.write('        ', 148);
    header.write('0', 156);
    header.write('ustar\0', 257);
    header.write('00', 263);
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    blocks.push(header, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

export interface BuiltImage {
  readonly manifestDigest: string;
  readonly manifest: string;
}

/**
 * Writes an OCI image layout holding one single-platform image tagged `tag`, with one gzipped
 * layer per entry of `layers`.
 */
export async function buildOciLayout(
  dir: string,
  options: {
    tag?: string;
    layers?: readonly Readonly<Record<string, string>>[];
    /** Layers given as bytes (e.g. random data, to exercise chunked transfers). */
    rawLayers?: readonly Buffer[];
    platform?: string;
    /** Labels of the image config (a large one makes a config bigger than a pipe's buffer). */
    labels?: Readonly<Record<string, string>>;
  } = {},
): Promise<BuiltImage> {
  const blobs = join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const put = async (data: Buffer) => {
    const hex = sha256(data);
    await writeFile(join(blobs, hex), data);
    return { digest: `sha256:${hex}`, size: data.length };
  };
  const layerFiles = options.layers ?? [{ 'hello.txt': 'hello from regauth\n' }];
  const layers = [];
  const diffIds = [];
  for (const files of layerFiles) {
    const tar = tarFiles(files);
    diffIds.push(`sha256:${sha256(tar)}`);
    layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...(await put(gzipSync(tar))) });
  }
  for (const raw of options.rawLayers ?? []) {
    diffIds.push(`sha256:${sha256(raw)}`);
    layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...(await put(raw)) });
  }
  const [os = 'linux', architecture = 'amd64'] = (options.platform ?? 'linux/amd64').split('/');
  const config = await put(
    Buffer.from(
      JSON.stringify({
        architecture,
        os,
        config: { Cmd: ['/bin/sh'], ...(options.labels ? { Labels: options.labels } : {}) },
        rootfs: { type: 'layers', diff_ids: diffIds },
      }),
    ),
  );
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers,
  });
  const m = await put(Buffer.from(manifest));
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...m,
          annotations: { 'org.opencontainers.image.ref.name': options.tag ?? 'latest' },
        },
      ],
    }),
  );
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  return { manifestDigest: m.digest, manifest };
}

export interface BuiltIndex {
  readonly indexDigest: string;
  readonly index: string;
  /** Per platform (`linux/arm64`): its manifest and config, as written. */
  readonly images: Readonly<Record<string, { manifest: string; manifestDigest: string; config: string }>>;
}

/** Writes an OCI layout whose `tag` is an image index over one image per platform. */
export async function buildOciIndexLayout(
  dir: string,
  options: { tag?: string; platforms: readonly string[] },
): Promise<BuiltIndex> {
  const images: Record<string, { manifest: string; manifestDigest: string; config: string }> = {};
  const entries = [];
  for (const platform of options.platforms) {
    const built = await buildOciLayout(dir, {
      tag: platform,
      platform,
      layers: [{ 'platform.txt': `${platform}\n` }],
    });
    const manifest = JSON.parse(built.manifest) as { config: { digest: string } };
    const { readFile } = await import('node:fs/promises');
    const config = await readFile(join(dir, 'blobs', 'sha256', manifest.config.digest.slice(7)), 'utf8');
    images[platform] = { manifest: built.manifest, manifestDigest: built.manifestDigest, config };
    const [os, architecture, variant] = platform.split('/');
    entries.push({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: built.manifestDigest,
      size: Buffer.byteLength(built.manifest),
      platform: { os, architecture, ...(variant ? { variant } : {}) },
    });
  }
  const index = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: entries,
  });
  const indexBytes = Buffer.from(index);
  const indexDigest = `sha256:${sha256(indexBytes)}`;
  await writeFile(join(dir, 'blobs', 'sha256', indexDigest.slice(7)), indexBytes);
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.index.v1+json',
          digest: indexDigest,
          size: indexBytes.length,
          annotations: { 'org.opencontainers.image.ref.name': options.tag ?? 'latest' },
        },
      ],
    }),
  );
  return { indexDigest, index, images };
}
