import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** An OCI layout holding one artifact: the empty config, one layer of `payload`, and `subject`. */
export async function buildArtifactLayout(
  dir: string,
  options: {
    artifactType: string;
    payload: string;
    subject: { mediaType: string; digest: string; size: number };
    annotations?: Record<string, string>;
  },
): Promise<{ digest: string; size: number }> {
  const blobs = join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const put = async (data: Buffer) => {
    const hex = createHash('sha256').update(data).digest('hex');
    await writeFile(join(blobs, hex), data);
    return { digest: `sha256:${hex}`, size: data.length };
  };
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: options.artifactType,
      config: { mediaType: 'application/vnd.oci.empty.v1+json', ...(await put(Buffer.from('{}'))) },
      layers: [{ mediaType: 'application/octet-stream', ...(await put(Buffer.from(options.payload))) }],
      subject: options.subject,
      ...(options.annotations ? { annotations: options.annotations } : {}),
    }),
  );
  const m = await put(manifest);
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m }],
    }),
  );
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  return m;
}
