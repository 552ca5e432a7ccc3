import { describe, expect, it } from 'vitest';
import { RegauthError } from '../../errors/regauth-error.js';
import { chainCredentials } from './chain-credentials.js';
import type { CredentialSource } from './credential.js';

function fixed(name: string, registries: string[], calls: string[]): CredentialSource {
  return {
    async find(registry) {
      calls.push(`${name} ${registry}`);
      return registries.includes(registry)
        ? { credential: { username: name, password: 'pw' }, source: name }
        : undefined;
    },
  };
}

describe('chainCredentials', () => {
  it('answers with the first source that has a credential, and asks no further', async () => {
    const calls: string[] = [];
    const chain = chainCredentials([
      fixed('first', ['a.example'], calls),
      fixed('second', ['a.example', 'b.example'], calls),
      fixed('third', ['b.example'], calls),
    ]);
    expect((await chain.find('a.example'))?.source).toBe('first');
    expect((await chain.find('b.example'))?.source).toBe('second');
    expect(await chain.find('c.example')).toBeUndefined();
    expect(calls).toEqual([
      'first a.example',
      'first b.example',
      'second b.example',
      'first c.example',
      'second c.example',
      'third c.example',
    ]);
  });

  it('stops at a broken source rather than skipping it', async () => {
    const calls: string[] = [];
    const broken: CredentialSource = {
      find: async () => {
        throw new RegauthError('ERR_INVALID_DOCKER_CONFIG', 'broken');
      },
    };
    const chain = chainCredentials([fixed('first', [], calls), broken, fixed('last', ['a.example'], calls)]);
    await expect(chain.find('a.example')).rejects.toThrow('broken');
    expect(calls).toEqual(['first a.example']);
  });

  it('finds nothing with no sources', async () => {
    expect(await chainCredentials([]).find('a.example')).toBeUndefined();
  });
});
