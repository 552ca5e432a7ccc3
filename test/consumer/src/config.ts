import { arg, connect, print } from './connect.js';

const { digest, json } = await connect().config(arg(0, 'REF'));
print({ digest, os: json.os, architecture: json.architecture, diffIds: json.rootfs.diff_ids });
