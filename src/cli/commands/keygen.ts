import {
  generateSigningKey,
  type KeygenAlgorithm,
  writeSigningKey,
} from '../../server/generate-signing-key.js';
import { loadSigningMaterial } from '../../server/signing-key.js';

export async function keygenCommand(opts: {
  key: string;
  cert: string;
  algorithm: KeygenAlgorithm;
  subject: string;
  days: number;
}): Promise<void> {
  const pair = await generateSigningKey({
    algorithm: opts.algorithm,
    subject: opts.subject,
    days: opts.days,
  });
  await writeSigningKey(pair, opts.key, opts.cert);
  const material = loadSigningMaterial(pair.keyPem, pair.certPem, { key: opts.key, certificate: opts.cert });
  process.stderr.write(
    `wrote ${opts.algorithm} key ${opts.key} and certificate ${opts.cert} (valid until ${material.notAfter.toISOString()})\n` +
      `key id (kid): ${material.kid}\n` +
      `registry config: auth.token.rootcertbundle: ${opts.cert}\n`,
  );
}
