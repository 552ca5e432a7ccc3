import { ociLayout } from 'regauth';
import { arg, connect, print } from './connect.js';

const refName = process.argv[4];
const summary = await connect().push(ociLayout(arg(0, 'DIR'), refName), arg(1, 'REF'), { jobs: 2 });
print(summary);
