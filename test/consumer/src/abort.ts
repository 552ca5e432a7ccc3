// Aborts a pull once its first blob bytes arrive: the pull rejects with ERR_ABORTED, and leaves
// no unfinished file behind (a folder it made is gone; a layout that was there is as it was).
import { isRegauthError, ociLayout } from 'regauth';
import { arg, connect, print } from './connect.js';

const controller = new AbortController();
try {
  const summary = await connect().pull(arg(0, 'REF'), ociLayout(arg(1, 'DIR')), {
    signal: controller.signal,
    onProgress: (event) => {
      if (event.kind === 'blob-bytes') controller.abort();
    },
  });
  print({ pulled: summary.digest });
} catch (err) {
  if (!isRegauthError(err, 'ERR_ABORTED')) throw err;
  print({ error: err.code, message: err.message });
}
