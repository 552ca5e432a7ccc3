import { STATUS_CODES } from 'node:http';
import { sanitizeServerText } from '../errors/sanitize-server-text.js';
import type { TraceEvent } from '../transport/trace.js';

function titleCase(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());
}

function headerLines(headers: Readonly<Record<string, string | string[]>>): string[] {
  const lines: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    for (const v of Array.isArray(value) ? value : [value]) lines.push(`${titleCase(name)}: ${v}`);
  }
  return lines;
}

/**
 * Formats a trace event the way the seed shows the exchange (httpie style): request line and
 * headers, a blank line, status line and headers, then small JSON bodies. Values arrive
 * redacted from the transport; whatever a server wrote in them is shown with its control
 * characters escaped, since this goes to a terminal.
 */
export function formatTraceEvent(event: TraceEvent): string {
  return sanitizeServerText(format(event));
}

function format(event: TraceEvent): string {
  switch (event.kind) {
    case 'request': {
      const url = new URL(event.url);
      const lines = [
        `${event.method} ${url.pathname}${url.search} HTTP/1.1`,
        `Host: ${url.host}`,
        ...headerLines(event.headers),
      ];
      if (event.body !== undefined) lines.push('', event.body);
      return `${lines.join('\n')}\n\n`;
    }
    case 'response':
      return `${[`HTTP/1.1 ${event.status} ${STATUS_CODES[event.status] ?? ''}`.trimEnd(), ...headerLines(event.headers)].join('\n')}\n\n`;
    case 'body':
      return `${event.text}\n\n`;
    case 'retry':
      return `# retrying ${event.url} in ${event.waitMs} ms (attempt ${event.attempt}: ${event.reason})\n\n`;
    case 'note':
      return `# ${event.text}\n\n`;
  }
}
