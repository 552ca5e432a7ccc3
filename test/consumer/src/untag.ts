import { arg, connect, print } from './connect.js';

print(await connect().untag(arg(0, 'REF')));
