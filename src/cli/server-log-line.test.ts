import { describe, expect, it } from 'vitest';
import type { ServerLogEntry } from '../server/token-server.js';
import { serverLogLine } from './server-log-line.js';

const TIME = new Date('2026-11-30T12:00:00.123Z');

/** What `regauth serve` wrote before: the entry copied between time and level. */
const spread = (entry: ServerLogEntry) =>
  `${JSON.stringify({ time: TIME.toISOString(), ...entry, level: 'level' in entry ? entry.level : 'info' })}\n`;

describe('serverLogLine', () => {
  it('writes a token line byte for byte as copying the entry between time and level did', () => {
    const entry: ServerLogEntry = {
      msg: 'token',
      method: 'GET',
      grantType: 'basic',
      account: 'alice',
      address: '192.0.2.1',
      clientId: 'a "quoted" \\ client\n',
      requested: ['repository:alice/a:pull'],
      granted: [],
      outcome: 'issued',
      status: 200,
      authn: 'htpasswd',
      labels: ['team'],
    };
    const line = serverLogLine(entry, TIME);
    expect(line).toBe(spread(entry));
    expect(line.endsWith('"level":"info"}\n')).toBe(true);
    expect(JSON.parse(line)).toMatchObject({ time: TIME.toISOString(), clientId: 'a "quoted" \\ client\n' });
  });

  it('keeps a warning where its level stands, and a one-field entry whole', () => {
    const warn: ServerLogEntry = {
      msg: 'X-Forwarded-For ignored',
      level: 'warn',
      peer: '192.0.2.1',
      hint: 'h',
    };
    expect(serverLogLine(warn, TIME)).toBe(spread(warn));
    expect(serverLogLine({ msg: 'shutting down' }, TIME)).toBe(spread({ msg: 'shutting down' }));
    expect(JSON.parse(serverLogLine({ msg: 'shutting down' }, TIME))).toEqual({
      time: TIME.toISOString(),
      msg: 'shutting down',
      level: 'info',
    });
  });
});
