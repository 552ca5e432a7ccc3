import { sanitizeServerText } from '../errors/sanitize-server-text.js';

/**
 * Writes names a registry listed (tags, repositories) to stdout, one a line, a page at a time
 * as the pages come, so a long list never sits in memory whole. A name is server text: control
 * characters in it, newlines included, are shown as escapes, so one name is one line and
 * cannot act on the terminal.
 */
export async function printNames(pages: AsyncIterable<readonly string[]>): Promise<void> {
  for await (const page of pages) {
    const text = page.map((name) => `${sanitizeServerText(name, { singleLine: true })}\n`).join('');
    if (!process.stdout.write(text)) await new Promise((r) => process.stdout.once('drain', r));
  }
}
