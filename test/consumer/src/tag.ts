import { arg, connect, print } from './connect.js';

const registry = connect();
const tagged = await registry.tag(arg(0, 'REF'), process.argv.slice(3));
print(tagged);
