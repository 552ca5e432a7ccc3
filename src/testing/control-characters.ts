/** Bidi controls that reorder what a terminal shows (Trojan Source, CVE-2021-42574). */
const BIDI = new Set([
  0x061c, 0x200e, 0x200f, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069,
]);

/**
 * Test-only: the characters in `text` that a terminal would act on instead of showing (C0 but
 * newline and tab, DEL, C1, bidi controls), written out independently of the code under test.
 */
export function controlCharacters(text: string, options: { lineBreaks?: boolean } = {}): string[] {
  const found: string[] = [];
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    const lineBreak = code === 0x0a || code === 0x09;
    if (
      (code < 0x20 && (!lineBreak || options.lineBreaks)) ||
      (code >= 0x7f && code <= 0x9f) ||
      BIDI.has(code)
    ) {
      found.push(char);
    }
  }
  return found;
}
