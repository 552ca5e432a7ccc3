import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isRegauthError, RegauthError } from '../errors/regauth-error.js';
import { formatScope } from './format-scope.js';
import { parseScope, parseScopeList } from './parse-scope.js';

/** Runs `fn` and returns the RegauthError it throws; fails the test when it throws nothing or something else. */
function scopeError(fn: () => unknown): RegauthError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RegauthError);
    expect((err as RegauthError).code).toBe('ERR_INVALID_SCOPE');
    return err as RegauthError;
  }
  throw new Error('expected an ERR_INVALID_SCOPE error, but nothing was thrown');
}

describe('parseScope', () => {
  it('splits a repository scope into type, name and actions', () => {
    expect(parseScope('repository:library/alpine:pull')).toEqual({
      type: 'repository',
      name: 'library/alpine',
      actions: ['pull'],
    });
  });

  it('leaves out the class when the type has none', () => {
    expect('class' in parseScope('repository:library/alpine:pull')).toBe(false);
  });

  it('reads the resource class of repository(plugin)', () => {
    expect(parseScope('repository(plugin):vieux/sshfs:pull')).toEqual({
      type: 'repository',
      class: 'plugin',
      name: 'vieux/sshfs',
      actions: ['pull'],
    });
  });

  it('accepts the catalog scope with the * action', () => {
    expect(parseScope('registry:catalog:*')).toEqual({ type: 'registry', name: 'catalog', actions: ['*'] });
  });

  it('keeps a host:port prefix in the name', () => {
    expect(parseScope('repository:localhost:5000/foo/bar:pull,push')).toEqual({
      type: 'repository',
      name: 'localhost:5000/foo/bar',
      actions: ['pull', 'push'],
    });
  });

  it('keeps the order of actions and collapses duplicates', () => {
    expect(parseScope('repository:foo/bar:push,pull,push,pull').actions).toEqual(['push', 'pull']);
  });

  it('skips empty entries in the action list', () => {
    expect(parseScope('repository:foo/bar:pull,,push,').actions).toEqual(['pull', 'push']);
  });

  it('lets names of other types than repository hold characters a repository name may not', () => {
    expect(parseScope('registry:Catalog_V2:*').name).toBe('Catalog_V2');
  });

  it('rejects uppercase letters in a repository path', () => {
    expect(scopeError(() => parseScope('repository:library/Alpine:pull')).message).toContain(
      '"library/Alpine" is not a valid repository name',
    );
    scopeError(() => parseScope('repository:Alpine:pull'));
  });

  it('rejects an uppercase resource type', () => {
    expect(scopeError(() => parseScope('Repository:library/alpine:pull')).message).toContain(
      'resource type "Repository"',
    );
  });

  it('rejects a scope without actions', () => {
    expect(scopeError(() => parseScope('repository:foo/bar:')).message).toContain('names no action');
    expect(scopeError(() => parseScope('repository:foo/bar:,,')).message).toContain('names no action');
  });

  it('rejects a scope with only a type and a name', () => {
    expect(scopeError(() => parseScope('repository:foo/bar')).message).toContain(
      'needs a type, a name and actions',
    );
  });

  it('rejects a scope without a type', () => {
    scopeError(() => parseScope(':foo/bar:pull'));
  });

  it('rejects an empty name', () => {
    expect(scopeError(() => parseScope('registry::*')).message).toContain('name is empty');
  });

  it('rejects white space inside a name', () => {
    expect(scopeError(() => parseScope('registry:cata\tlog:*')).message).toContain('white space');
  });

  it('rejects actions that are not lowercase words or *', () => {
    expect(scopeError(() => parseScope('repository:foo/bar:Pull')).message).toContain('action "Pull"');
    scopeError(() => parseScope('repository:foo/bar:pull*'));
    scopeError(() => parseScope('repository:foo/bar:pull push'));
  });

  it('rejects input longer than 1024 characters before looking at it', () => {
    const long = `registry:${'a'.repeat(1014)}:*`;
    expect(long.length).toBe(1025);
    expect(scopeError(() => parseScope(long)).message).toContain('longer than 1024 characters');
    // One character less is judged on its merits.
    expect(parseScope(`registry:${'a'.repeat(1013)}:*`).name).toHaveLength(1013);
  });

  it('quotes only the first 80 characters of a long scope in its message', () => {
    const text = `registry:${'x'.repeat(200)}:PULL`;
    const message = scopeError(() => parseScope(text)).message;
    expect(message).toContain(`invalid scope "${text.slice(0, 80)}…": action "PULL"`);
    expect(message).not.toContain(text.slice(0, 81));
  });

  it('rejects a repository name longer than 255 characters', () => {
    const name = `${'a'.repeat(100)}/${'b'.repeat(154)}`;
    expect(name).toHaveLength(255);
    expect(parseScope(`repository:${name}:pull`).name).toBe(name);
    scopeError(() => parseScope(`repository:${name}b:pull`));
  });

  it('throws only ERR_INVALID_SCOPE errors, whatever the input', () => {
    const scopeish = fc.string({
      unit: fc.constantFrom(...'repository(plugin):registry/catalog*,pull push:5000._-AZ \t'.split('')),
      maxLength: 60,
    });
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), scopeish), (text) => {
        try {
          const scope = parseScope(text);
          expect(scope.actions.length).toBeGreaterThan(0);
        } catch (err) {
          expect(isRegauthError(err, 'ERR_INVALID_SCOPE')).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('parseScopeList', () => {
  it('parses several space-separated scopes in order', () => {
    expect(parseScopeList('repository:a/b:pull,push repository:c/d:pull registry:catalog:*')).toEqual([
      { type: 'repository', name: 'a/b', actions: ['pull', 'push'] },
      { type: 'repository', name: 'c/d', actions: ['pull'] },
      { type: 'registry', name: 'catalog', actions: ['*'] },
    ]);
  });

  it('ignores leading, trailing and repeated spaces', () => {
    expect(parseScopeList('  repository:a/b:pull   repository:c/d:push ').map(formatScope)).toEqual([
      'repository:a/b:pull',
      'repository:c/d:push',
    ]);
  });

  it('returns no scopes for an empty value', () => {
    expect(parseScopeList('')).toEqual([]);
    expect(parseScopeList('   ')).toEqual([]);
  });

  it('fails as a whole when one scope is invalid', () => {
    expect(scopeError(() => parseScopeList('repository:a/b:pull repository:C/D:pull')).message).toContain(
      'C/D',
    );
  });
});
