// What every program here shares: the account from the environment, and printing a result.
import { createRegistry, type Registry, type TraceEvent } from 'regauth';

/** A Registry with the account in REGISTRY_USER / REGISTRY_PASSWORD (none when unset). */
export function connect(trace?: (event: TraceEvent) => void): Registry {
  const username = process.env.REGISTRY_USER;
  const password = process.env.REGISTRY_PASSWORD;
  return createRegistry({
    ...(username === undefined || password === undefined ? {} : { credentials: { username, password } }),
    ...(trace === undefined ? {} : { trace }),
  });
}

/** The program's n-th argument; a missing one ends it with a usage line. */
export function arg(n: number, name: string): string {
  const value = process.argv[2 + n];
  if (value === undefined) {
    process.stderr.write(`usage: missing ${name}\n`);
    process.exit(2);
  }
  return value;
}

export function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}
