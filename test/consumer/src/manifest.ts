// A manifest with credentials: the registry answers 401, the token server gives a token for
// Basic credentials, the manifest comes with the bearer token.
import { isImageIndex, type TraceEvent } from 'regauth';
import { arg, connect, print } from './connect.js';

const exchanges: { method: string; path: string; status: number }[] = [];
const trace = (event: TraceEvent) => {
  if (event.kind === 'response')
    exchanges.push({ method: event.method, path: new URL(event.url).pathname, status: event.status });
};
const { digest, mediaType, json, bytes } = await connect(trace).manifest(arg(0, 'REF'));
print({
  digest,
  mediaType,
  size: bytes.length,
  kind: json.schemaVersion === 1 ? 'schema1' : isImageIndex(json) ? 'index' : 'image',
  config: json.schemaVersion === 2 && 'config' in json ? json.config.digest : undefined,
  layers: json.schemaVersion === 2 && 'layers' in json ? json.layers.map((l) => l.digest) : [],
  exchanges,
});
