// The baseline for the token-server load test: a node:http server that answers every request
// with a small JSON body and nothing else. Prints its port on stdout.
import { createServer } from 'node:http';

const body = '{"token":"x"}';
const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
