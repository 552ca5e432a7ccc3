/**
 * Characters a terminal acts on instead of showing: C0 controls but newline and tab (ESC starts
 * the sequences that set the window title or erase lines, CR returns to the line's start to
 * overwrite it), DEL, the C1 controls (U+009B is CSI on terminals that honour 8-bit controls),
 * and the Unicode bidi controls that reorder what is shown (Trojan Source, CVE-2021-42574).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const UNSAFE_OR_LINE_BREAK = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\t': '\\t', '\r': '\\r' };

function visible(char: string): string {
  const named = NAMED[char];
  if (named !== undefined) return named;
  const code = char.charCodeAt(0);
  return code <= 0xff
    ? `\\x${code.toString(16).padStart(2, '0')}`
    : `\\u{${code.toString(16).padStart(4, '0')}}`;
}

/** How sanitizeServerText treats line breaks. */
export interface SanitizeOptions {
  /** Also show newlines and tabs as `\n` and `\t`: for server text set inside a one-line message. */
  readonly singleLine?: boolean;
}

/**
 * Text that a registry, token server or storage host chose (error messages, bodies, header
 * values, names) made safe to show on a terminal: every control character is replaced by a
 * visible escape such as `\x1b`, so a server can neither retitle the window, erase lines nor
 * print a fake prompt. Idempotent, and text without control characters comes back unchanged.
 */
export function sanitizeServerText(text: string, options: SanitizeOptions = {}): string {
  return text.replace(options.singleLine ? UNSAFE_OR_LINE_BREAK : UNSAFE, visible);
}

/** What JSON.stringify leaves raw of UNSAFE: it escapes C0 controls itself. */
const UNSAFE_IN_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * JSON text safe to show on a terminal that is still valid JSON: the characters of UNSAFE that
 * JSON.stringify leaves as they are (DEL, C1, bidi controls) become `\uXXXX` escapes.
 */
export function stringifyServerJson(value: unknown, space?: number): string {
  return (JSON.stringify(value, null, space) ?? '').replace(
    UNSAFE_IN_JSON,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
