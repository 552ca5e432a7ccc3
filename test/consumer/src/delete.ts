// Deletes an image by tag. Other tags on the same digest make it a refusal: said, with those
// tags read from the error's data, and nothing deleted; `force` as a second argument deletes anyway.
import { isRegauthError } from 'regauth';
import { arg, connect, print } from './connect.js';

const registry = connect();
try {
  print(await registry.delete(arg(0, 'REF'), { force: process.argv[3] === 'force' }));
} catch (err) {
  if (!isRegauthError(err, 'ERR_REFUSED') || err.hint?.kind !== 'shared-digest') throw err;
  print({ refused: true, digest: err.hint.digest, otherTags: err.hint.otherTags });
}
