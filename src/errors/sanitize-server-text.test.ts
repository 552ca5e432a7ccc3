import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { controlCharacters } from '../testing/control-characters.js';
import { sanitizeServerText, stringifyServerJson } from './sanitize-server-text.js';

describe('sanitizeServerText', () => {
  it('shows a window-title sequence, a line erase, a carriage return and C1 CSI as visible escapes', () => {
    expect(sanitizeServerText('a\u001b]0;pwned\u0007b')).toBe('a\\x1b]0;pwned\\x07b');
    expect(sanitizeServerText('\u001b[2Kregauth: Login Succeeded\r')).toBe(
      '\\x1b[2Kregauth: Login Succeeded\\r',
    );
    expect(sanitizeServerText('x\u009b2Ky\u007f')).toBe('x\\x9b2Ky\\x7f');
    expect(sanitizeServerText('abc\u202edcba')).toBe('abc\\u{202e}dcba');
  });

  it('keeps newlines and tabs, unless the text goes inside a one-line message', () => {
    expect(sanitizeServerText('line 1\n\tline 2')).toBe('line 1\n\tline 2');
    expect(sanitizeServerText('line 1\n\tline 2', { singleLine: true })).toBe('line 1\\n\\tline 2');
  });

  it('leaves printable text, including non-ASCII letters, exactly as it is', () => {
    const text = 'manifest unknown: müll/app:v1 — 镜像 ✓ "quoted" \\x1b';
    expect(sanitizeServerText(text)).toBe(text);
  });

  it('leaves no control character in any string, and is idempotent', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.boolean(), (text, singleLine) => {
        const once = sanitizeServerText(text, { singleLine });
        expect(controlCharacters(once, { lineBreaks: singleLine })).toEqual([]);
        expect(sanitizeServerText(once, { singleLine })).toBe(once);
      }),
    );
  });
});

describe('stringifyServerJson', () => {
  it('escapes DEL, C1 and bidi controls as JSON escapes, so the text stays JSON and shows them', () => {
    const value = { message: 'a\u001b[2K\u009b2K\u007f\u202eb' };
    const text = stringifyServerJson(value, 2);
    expect(text).toBe('{\n  "message": "a\\u001b[2K\\u009b2K\\u007f\\u202eb"\n}');
    expect(JSON.parse(text)).toEqual(value);
    expect(sanitizeServerText(text)).toBe(text);
  });
});
