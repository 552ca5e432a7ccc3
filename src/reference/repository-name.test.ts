import { describe, expect, it } from 'vitest';
import { isValidRepositoryName, MAX_REPOSITORY_NAME_LENGTH, PATH_COMPONENT_RE } from './repository-name.js';

describe('isValidRepositoryName', () => {
  it.each([
    'alpine',
    'library/alpine',
    'vieux/sshfs',
    'a/b/c/d/e',
    'foo.bar/baz_qux/a__b/c-d/e---f',
    'localhost/foo',
    'localhost:5000/foo/bar',
    'registry-1.docker.io/library/alpine',
    'Registry.Example.COM/team/app',
    '[::1]:5000/foo',
    '[2001:db8::1]/foo',
    '0/1',
  ])('accepts %s', (name) => {
    expect(isValidRepositoryName(name)).toBe(true);
  });

  it.each([
    ['an empty name', ''],
    ['an uppercase path component', 'library/Alpine'],
    ['an uppercase single component (not a host without a path)', 'Alpine'],
    ['a leading separator', '-foo/bar'],
    ['a trailing separator', 'foo/bar.'],
    ['two dots in a row', 'foo..bar'],
    ['three underscores', 'foo___bar'],
    ['a mix of separators', 'foo._bar'],
    ['an empty path component', 'foo//bar'],
    ['a trailing slash', 'foo/bar/'],
    ['a leading slash', '/foo'],
    ['a host with nothing after it', 'localhost:5000'],
    ['a port that is not a number', 'localhost:http/foo'],
    ['a host part that ends in a hyphen', 'host-/foo'],
    ['white space', 'foo /bar'],
    ['a tag', 'library/alpine:3.20'],
    ['a digest', 'library/alpine@sha256:abc'],
  ])('rejects %s', (_why, name) => {
    expect(isValidRepositoryName(name)).toBe(false);
  });

  it('accepts a name of exactly 255 characters and rejects one more', () => {
    expect(MAX_REPOSITORY_NAME_LENGTH).toBe(255);
    const name = `${'a'.repeat(127)}/${'b'.repeat(127)}`;
    expect(name).toHaveLength(255);
    expect(isValidRepositoryName(name)).toBe(true);
    expect(isValidRepositoryName(`${name}b`)).toBe(false);
  });

  it('counts the host part in the 255-character limit', () => {
    const host = 'registry.example.com:5000/';
    expect(isValidRepositoryName(host + 'a'.repeat(255 - host.length))).toBe(true);
    expect(isValidRepositoryName(host + 'a'.repeat(256 - host.length))).toBe(false);
  });
});

describe('PATH_COMPONENT_RE', () => {
  it('matches one lowercase component and nothing with a slash or host', () => {
    expect(PATH_COMPONENT_RE.test('a-b.c_d__e')).toBe(true);
    expect(PATH_COMPONENT_RE.test('a/b')).toBe(false);
    expect(PATH_COMPONENT_RE.test('A')).toBe(false);
    expect(PATH_COMPONENT_RE.test('')).toBe(false);
  });
});
