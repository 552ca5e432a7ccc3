/**
 * Escapes a value for the inside of an LDAP search filter (RFC 4515 §3): the characters that
 * have a meaning there, `*`, `(`, `)`, `\` and NUL, become `\2a`, `\28`, `\29`, `\5c`, `\00`.
 * Other characters stay as they are: the string form carries UTF-8 (RFC 4515's UTFMB), and
 * escaping the bytes of a multi-byte character would have parsers that decode an escape as one
 * character (ldapts' FilterParser does) look for a different name.
 */
export function escapeLdapFilterValue(value: string): string {
  return value.replace(/[*()\\\0]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * Fills a filter template's `${name}` placeholders with RFC 4515-escaped values. A placeholder
 * without a value is an error rather than an empty match-everything string.
 */
export function fillLdapFilter(template: string, values: Readonly<Record<string, string>>): string {
  return template.replace(/\$\{(\w+)\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`unknown placeholder \${${name}}`);
    return escapeLdapFilterValue(value);
  });
}

/**
 * The value of a DN's first RDN when its attribute type is `type` (RFC 4514 §3, with its escapes
 * `\,` and `\2c` undone), such as `dev` for `cn=dev,ou=groups,dc=example,dc=org`. Undefined for a
 * DN that starts with another type, a multi-valued RDN, or a malformed one: a label is left out
 * rather than guessed.
 */
export function firstRdnValue(dn: string, type: string): string | undefined {
  const eq = dn.indexOf('=');
  if (eq < 0 || dn.slice(0, eq).trim().toLowerCase() !== type.toLowerCase()) return undefined;
  const bytes: number[] = [];
  let i = eq + 1;
  for (; i < dn.length; i++) {
    const c = String.fromCodePoint(dn.codePointAt(i) as number);
    if (c === ',' || c === ';') break;
    if (c === '+') return undefined;
    if (c === '\\') {
      const hex = dn.slice(i + 1, i + 3);
      if (/^[0-9a-fA-F]{2}$/.test(hex)) {
        bytes.push(Number.parseInt(hex, 16));
        i += 2;
      } else if (i + 1 < dn.length) {
        const next = String.fromCodePoint(dn.codePointAt(i + 1) as number);
        bytes.push(...Buffer.from(next, 'utf8'));
        i += next.length;
      } else {
        return undefined;
      }
      continue;
    }
    bytes.push(...Buffer.from(c, 'utf8'));
    i += c.length - 1;
  }
  const value = Buffer.from(bytes).toString('utf8').trim();
  return value === '' ? undefined : value;
}
