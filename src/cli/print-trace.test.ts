import { describe, expect, it } from 'vitest';
import { formatTraceEvent } from './print-trace.js';

describe('formatTraceEvent', () => {
  it('prints a request the way httpie does: request line, Host, headers, blank line', () => {
    expect(
      formatTraceEvent({
        kind: 'request',
        method: 'GET',
        url: 'http://127.0.0.1:5000/v2/a/tags/list?n=100',
        headers: { 'user-agent': 'regauth', authorization: 'Bearer <redacted>' },
      }),
    ).toBe(
      'GET /v2/a/tags/list?n=100 HTTP/1.1\nHost: 127.0.0.1:5000\nUser-Agent: regauth\nAuthorization: Bearer <redacted>\n\n',
    );
  });

  it('escapes whatever control characters reach it, whichever part of the event holds them', () => {
    const out = [
      formatTraceEvent({
        kind: 'response',
        method: 'GET',
        url: 'http://r/',
        status: 401,
        headers: { 'www-authenticate': 'Bearer realm="x\u009b2K"' },
        ms: 1,
      }),
      formatTraceEvent({ kind: 'body', url: 'http://r/', text: '{"m": "\u001b]0;pwned\u0007\r"}' }),
      formatTraceEvent({ kind: 'note', text: 'r asks for \u001b[2KBasic authorization' }),
    ].join('');
    expect(out).toBe(
      'HTTP/1.1 401 Unauthorized\nWww-Authenticate: Bearer realm="x\\x9b2K"\n\n' +
        '{"m": "\\x1b]0;pwned\\x07\\r"}\n\n' +
        '# r asks for \\x1b[2KBasic authorization\n\n',
    );
  });
});
