import { describe, expect, it } from 'vitest';
import { escapeLdapFilterValue, fillLdapFilter, firstRdnValue } from './ldap-escape.js';

describe('escapeLdapFilterValue (RFC 4515 §3)', () => {
  it('escapes the characters with a meaning in a filter, and only those', () => {
    expect(escapeLdapFilterValue('*)(uid=*')).toBe('\\2a\\29\\28uid=\\2a');
    expect(escapeLdapFilterValue('a\\2a')).toBe('a\\5c2a');
    expect(escapeLdapFilterValue('a\u0000b')).toBe('a\\00b');
    expect(escapeLdapFilterValue('jürgen ǅ 😀')).toBe('jürgen ǅ 😀');
  });

  it('fills placeholders with escaped values and refuses unknown ones', () => {
    expect(fillLdapFilter('(&(uid=${user})(member=${dn}))', { user: '*', dn: 'cn=a\\,b' })).toBe(
      '(&(uid=\\2a)(member=cn=a\\5c,b))',
    );
    expect(() => fillLdapFilter('(uid=${name})', { user: 'x' })).toThrow(/\$\{name\}/);
  });
});

describe('firstRdnValue (RFC 4514)', () => {
  it('takes the first RDN value of the given type, escapes undone', () => {
    expect(firstRdnValue('cn=dev,ou=groups,dc=example,dc=org', 'cn')).toBe('dev');
    expect(firstRdnValue('CN=Domain Admins,CN=Users,DC=corp', 'cn')).toBe('Domain Admins');
    expect(firstRdnValue('cn=a\\,b,ou=groups', 'cn')).toBe('a,b');
    expect(firstRdnValue('cn=j\\C3\\BCrgen,ou=groups', 'cn')).toBe('jürgen');
    expect(firstRdnValue('cn=😀 team,ou=groups', 'cn')).toBe('😀 team');
  });

  it('leaves out what it cannot name exactly', () => {
    expect(firstRdnValue('ou=dev,dc=example', 'cn')).toBeUndefined();
    expect(firstRdnValue('cn=a+uid=b,dc=example', 'cn')).toBeUndefined();
    expect(firstRdnValue('cn=,dc=example', 'cn')).toBeUndefined();
    expect(firstRdnValue('not a dn', 'cn')).toBeUndefined();
    expect(firstRdnValue('cn=a\\', 'cn')).toBeUndefined();
  });
});
