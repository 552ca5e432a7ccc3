// A typed error branch: isRegauthError narrows to the code, whose facts (status, request) are typed.
import { isRegauthError } from 'regauth';
import { arg, connect, print } from './connect.js';

try {
  await connect().manifest(arg(0, 'REF'));
  print({ found: true });
} catch (err) {
  if (isRegauthError(err, 'ERR_MANIFEST_UNKNOWN')) {
    const code: 'ERR_MANIFEST_UNKNOWN' = err.code;
    print({ code, status: err.status, method: err.request?.method, message: err.message });
  } else {
    throw err;
  }
}
