import { parsePlatform } from 'regauth';
import { arg, connect, print } from './connect.js';

const platform = process.argv[3];
const registry = connect();
print({
  digest: await registry.digest(
    arg(0, 'REF'),
    platform === undefined ? {} : { platform: parsePlatform(platform) },
  ),
});
