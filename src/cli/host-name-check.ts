import { isIP } from 'node:net';

/** What readyHostNameCheck uses; tests pass their own to see what it does. */
export interface HostNameCheckParts {
  readonly setFlags: (flags: string) => void;
  readonly isIP: (input: string) => number;
  /** V8's version (`process.versions.v8`). */
  readonly v8: string;
}

/**
 * The V8 majors known to have `--regexp-optimization` (Node 20's 11.3, 22's 12.4, 24's 13.6): an
 * unknown flag would make V8 print an error on stderr, so a V8 not known here is left alone.
 */
const KNOWN_V8_MAJORS = { min: 11, max: 13 } as const;

/** An IPv4 address, the only kind of host node:net tells from a name without the IPv6 pattern. */
const IPV4_LITERAL = /^\d{1,3}(?:\.\d{1,3}){3}$/;

/**
 * Makes node:net's check of whether a host is an address cheap before the first connection to a
 * host name. Node makes that check on every connection to a name (net.connect, and TLS's server
 * name), before anything is sent; for a name it runs the IPv6 pattern, one of the largest regular
 * expressions in Node, which V8 compiles on first use with every optimization, then again as
 * machine code on the second: about 10 ms of a CLI run on a slow core, on the way to the first
 * byte on the wire. Compiled once here with V8's regexp optimizations off, it costs about 1 ms,
 * and a host name still takes microseconds to match. The flag is on again at once, for every other
 * pattern. For the CLI only: a library must not change its caller's V8 flags.
 */
export function readyHostNameCheck(registry: string, parts?: HostNameCheckParts): void {
  const host = registry.startsWith('[') ? registry : (registry.split(':')[0] ?? registry);
  if (IPV4_LITERAL.test(host)) return;
  const v8 = parts?.v8 ?? process.versions.v8;
  const major = Number(v8.split('.')[0]);
  if (!(major >= KNOWN_V8_MAJORS.min && major <= KNOWN_V8_MAJORS.max)) return;
  try {
    // node:v8 is loaded only here: imported with the command's bundle, it cost Node 20 about
    // 5 ms of every start, a registry named by address included.
    parts ??= {
      setFlags: (process.getBuiltinModule('node:v8') as typeof import('node:v8')).setFlagsFromString,
      isIP,
      v8,
    };
    parts.setFlags('--no-regexp-optimization');
    try {
      // Twice: V8 compiles a pattern to bytecode on its first run and to machine code on its second.
      parts.isIP('regauth.invalid');
      parts.isIP('regauth.invalid');
    } finally {
      parts.setFlags('--regexp-optimization');
    }
  } catch {
    // Only a cost saved: nothing is lost without it.
  }
}
