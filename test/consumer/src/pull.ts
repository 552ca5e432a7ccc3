// Pulls an image into an OCI layout folder and into a docker-archive tar, counting progress events.
import { dockerArchive, ociLayout, type TransferEvent } from 'regauth';
import { arg, connect, print } from './connect.js';

const ref = arg(0, 'REF');
const events: Partial<Record<TransferEvent['kind'], number>> = {};
const onProgress = (event: TransferEvent) => {
  events[event.kind] = (events[event.kind] ?? 0) + 1;
};
const registry = connect();
const layout = await registry.pull(ref, ociLayout(arg(1, 'DIR')), { jobs: 2, onProgress });
const archive = await registry.pull(ref, dockerArchive(arg(2, 'TAR')));
print({ layout, archive: archive.digest, events });
