// A closed-loop load generator: CONNECTIONS keep-alive connections, each sending the next
// request as soon as the last answer arrived, for SECONDS. Usage:
// LOAD_CREDENTIALS=user:password node load.mjs <url> <connections> <seconds>
// Basic credentials come from the environment, never the command line, where any user of the
// machine can read them (ps). `{i}` in them becomes the connection's number (0 …), so each
// connection can log in as a user of its own.
// Prints {"requests","errors","rps","p50","p99"} (latencies in ms) on stdout.
import { Pool } from 'undici';

const [urlText, connText, secondsText] = process.argv.slice(2);
const creds = process.env.LOAD_CREDENTIALS;
const url = new URL(urlText);
const connections = Number(connText);
const seconds = Number(secondsText);
const headersOf = (i) =>
  creds
    ? { authorization: `Basic ${Buffer.from(creds.replaceAll('{i}', String(i))).toString('base64')}` }
    : {};
const pool = new Pool(url.origin, { connections, pipelining: 1 });
const path = url.pathname + url.search;
const latencies = [];
let errors = 0;
const deadline = performance.now() + seconds * 1000;

async function loop(_, i) {
  const headers = headersOf(i);
  while (performance.now() < deadline) {
    const t = performance.now();
    try {
      const res = await pool.request({ method: 'GET', path, headers });
      await res.body.dump();
      if (res.statusCode !== 200) errors++;
      else latencies.push(performance.now() - t);
    } catch {
      errors++;
    }
  }
}

const started = performance.now();
await Promise.all(Array.from({ length: connections }, loop));
const elapsed = (performance.now() - started) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p) =>
  latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)] ?? 0;
process.stdout.write(
  `${JSON.stringify({ requests: latencies.length, errors, rps: latencies.length / elapsed, p50: pct(50), p99: pct(99) })}\n`,
);
await pool.close();
