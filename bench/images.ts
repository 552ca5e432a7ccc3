import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Writes an OCI layout holding one image with `layers` layers of `layerBytes` random bytes each
 * (incompressible, so every tool moves the same bytes), streamed to disk 8 MiB at a time.
 */
export async function writeRandomImage(
  dir: string,
  options: { layers: number; layerBytes: number; tag: string },
): Promise<{ manifestDigest: string; totalBytes: number; layerDigests: string[] }> {
  const blobs = join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const layerDescriptors = [];
  const layerDigests: string[] = [];
  const block = 8 * 1024 * 1024;
  for (let l = 0; l < options.layers; l++) {
    const hash = createHash('sha256');
    const temp = join(blobs, `layer-${l}.tmp`);
    const file = await open(temp, 'w');
    let written = 0;
    while (written < options.layerBytes) {
      const chunk = randomBytes(Math.min(block, options.layerBytes - written));
      hash.update(chunk);
      await file.write(chunk);
      written += chunk.length;
    }
    await file.close();
    const hex = hash.digest('hex');
    await rename(temp, join(blobs, hex));
    layerDigests.push(`sha256:${hex}`);
    layerDescriptors.push({
      mediaType: 'application/vnd.oci.image.layer.v1.tar',
      digest: `sha256:${hex}`,
      size: written,
    });
  }
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: layerDigests },
    }),
  );
  await writeFile(join(blobs, sha256Hex(config)), config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: `sha256:${sha256Hex(config)}`,
        size: config.length,
      },
      layers: layerDescriptors,
    }),
  );
  const manifestHex = sha256Hex(manifest);
  await writeFile(join(blobs, manifestHex), manifest);
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: `sha256:${manifestHex}`,
          size: manifest.length,
          annotations: { 'org.opencontainers.image.ref.name': options.tag },
        },
      ],
    }),
  );
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  return {
    manifestDigest: `sha256:${manifestHex}`,
    totalBytes: options.layers * options.layerBytes,
    layerDigests,
  };
}

/**
 * Writes a random image (writeRandomImage) to `dir`, pushes it to `ref` with `push` (given the
 * CLI arguments), flushes the disk so that its writes do not weigh on what is timed next, and
 * removes the local copy.
 */
export async function pushRandomImage(
  dir: string,
  ref: string,
  options: {
    layers: number;
    layerBytes: number;
    push: (args: readonly string[]) => Promise<unknown>;
  },
): Promise<{ manifestDigest: string; totalBytes: number; layerDigests: string[] }> {
  const image = await writeRandomImage(dir, {
    layers: options.layers,
    layerBytes: options.layerBytes,
    tag: 'v1',
  });
  await options.push(['push', dir, ref, '--quiet']);
  await rm(dir, { recursive: true, force: true });
  await promisify(execFile)('sync');
  return image;
}
