import { arg, connect, print } from './connect.js';

print({ tags: await connect().tags(arg(0, 'REPOSITORY')) });
