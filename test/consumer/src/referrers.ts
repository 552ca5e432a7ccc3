// The manifests that refer to an image (signatures, SBOMs), all or of one artifact type.
import { arg, connect, print } from './connect.js';

const artifactType = process.argv[3];
const referrers = await connect().referrers(
  arg(0, 'REF'),
  artifactType === undefined ? {} : { artifactType },
);
print({ referrers: referrers.map((d) => ({ digest: d.digest, artifactType: d.artifactType })) });
