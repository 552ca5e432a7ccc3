import { arg, connect, print } from './connect.js';

print({ repositories: await connect().catalog(arg(0, 'REGISTRY')) });
