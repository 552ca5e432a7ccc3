// Copies an image. With a third argument, the destination is another registry reached with no
// account (DEST_USER/DEST_PASSWORD when set): its own Registry, passed as `to`.
import { createRegistry } from 'regauth';
import { arg, connect, print } from './connect.js';

const registry = connect();
const across = process.argv[4] === 'across';
const user = process.env.DEST_USER;
const password = process.env.DEST_PASSWORD;
const to = across
  ? createRegistry(
      user === undefined || password === undefined ? {} : { credentials: { username: user, password } },
    )
  : undefined;
const summary = await registry.copy(arg(0, 'SRC'), arg(1, 'DST'), to === undefined ? {} : { to });
print(summary);
