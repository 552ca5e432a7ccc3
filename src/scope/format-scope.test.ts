import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatScope } from './format-scope.js';
import { parseScope, type ResourceScope } from './parse-scope.js';

const lowerAlnum = fc.string({
  unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789'),
  minLength: 1,
});
const pathComponent = fc
  .tuple(lowerAlnum, fc.array(fc.tuple(fc.constantFrom('.', '_', '__', '-', '---'), lowerAlnum)))
  .map(([head, rest]) => head + rest.map(([sep, part]) => sep + part).join(''));
const host = fc
  .tuple(
    fc.array(fc.stringMatching(/^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?$/), {
      minLength: 1,
      maxLength: 3,
    }),
    fc.option(fc.integer({ min: 0, max: 65535 }), { nil: undefined }),
  )
  .map(([parts, port]) => parts.join('.') + (port === undefined ? '' : `:${port}`));
const repositoryName = fc
  .tuple(fc.option(host, { nil: undefined }), fc.array(pathComponent, { minLength: 1, maxLength: 4 }))
  .map(([h, path]) => (h === undefined ? '' : `${h}/`) + path.join('/'))
  .filter((name) => name.length <= 255);
const otherName = fc
  .oneof(
    fc.string({ minLength: 1, maxLength: 80 }),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 80 }),
  )
  .filter((name) => !/\s/.test(name));
const actions = fc.uniqueArray(fc.oneof(fc.constant('*'), fc.stringMatching(/^[a-z]{1,8}$/)), {
  minLength: 1,
  maxLength: 4,
});

const validScope: fc.Arbitrary<ResourceScope> = fc
  .tuple(
    fc.oneof(
      fc.tuple(fc.constant('repository'), repositoryName),
      fc.tuple(
        fc.stringMatching(/^[a-z0-9]{1,10}$/).filter((type) => type !== 'repository'),
        otherName,
      ),
    ),
    fc.option(fc.stringMatching(/^[a-z0-9]{1,8}$/), { nil: undefined }),
    actions,
  )
  .map(([[type, name], cls, acts]) =>
    cls === undefined ? { type, name, actions: acts } : { type, class: cls, name, actions: acts },
  );

describe('formatScope', () => {
  it('writes type, name and actions joined by ":" and ","', () => {
    expect(formatScope({ type: 'repository', name: 'localhost:5000/foo', actions: ['pull', 'push'] })).toBe(
      'repository:localhost:5000/foo:pull,push',
    );
  });

  it('writes the class in parentheses after the type', () => {
    expect(formatScope({ type: 'repository', class: 'plugin', name: 'vieux/sshfs', actions: ['pull'] })).toBe(
      'repository(plugin):vieux/sshfs:pull',
    );
  });

  it('is undone by parseScope', () => {
    fc.assert(
      fc.property(validScope, (scope) => {
        expect(parseScope(formatScope(scope))).toStrictEqual(scope);
      }),
      { numRuns: 1000 },
    );
  });
});
