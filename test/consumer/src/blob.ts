// Reads a blob as a Web stream and hashes it; a blob that does not match its digest errors at its
// end, so the hash below is never of a wrong blob taken as whole.
import { createHash } from 'node:crypto';
import { isRegauthError } from 'regauth';
import { arg, connect, print } from './connect.js';

const { size, body } = await connect().blob(arg(0, 'REPOSITORY'), arg(1, 'DIGEST'));
const hash = createHash('sha256');
let received = 0;
try {
  for await (const chunk of body) {
    hash.update(chunk);
    received += chunk.length;
  }
  print({ size, received, sha256: `sha256:${hash.digest('hex')}` });
} catch (err) {
  if (!isRegauthError(err)) throw err;
  print({ size, received, error: err.code });
}
