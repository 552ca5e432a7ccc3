import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { AuthResponse, SentAs } from '../auth/create-auth-client.js';
import { registryError } from './registry-error.js';

/** A registry's answer as the auth layer hands it on. */
function answer(status: number, body: unknown, sentAs?: SentAs, wwwAuthenticate?: string): AuthResponse {
  const text = JSON.stringify(body);
  const headers = wwwAuthenticate === undefined ? {} : { 'www-authenticate': wwwAuthenticate };
  return {
    status,
    url: new URL('http://127.0.0.1:5000/v2/'),
    headers,
    header: (name) => (name === 'www-authenticate' ? wwwAuthenticate : undefined),
    headerValues: (name) => (name === 'www-authenticate' && wwwAuthenticate ? [wwwAuthenticate] : []),
    body: Readable.from([text]),
    bytes: async () => Buffer.from(text),
    text: async () => text,
    dump: async () => {},
    ...(sentAs === undefined ? {} : { sentAs }),
  };
}

const UNAUTHORIZED = { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] };
const INSUFFICIENT =
  'Bearer realm="http://127.0.0.1:1/token",service="s",scope="repository:bob/x:pull,push",error="insufficient_scope"';
const ALICE: SentAs = { anonymous: false, account: 'alice', source: 'docker config /h/.docker/config.json' };
const where = { registry: '127.0.0.1:5000', repository: 'bob/x' };

describe('registryError', () => {
  it('names the account, the action and the repository of a refused push, and keeps them as data', async () => {
    const err = await registryError(
      answer(401, UNAUTHORIZED, ALICE, INSUFFICIENT),
      'upload to 127.0.0.1:5000/bob/x',
      {
        ...where,
        action: 'push',
      },
    );
    expect(err.code).toBe('ERR_DENIED');
    expect(err.message).toBe(
      'alice may not push to 127.0.0.1:5000/bob/x (credentials from docker config /h/.docker/config.json; ' +
        'upload to 127.0.0.1:5000/bob/x: 401 UNAUTHORIZED: authentication required)',
    );
    expect(err.access).toEqual({
      ...where,
      actions: ['pull', 'push'],
      as: 'account',
      account: 'alice',
      credentialSource: 'docker config /h/.docker/config.json',
    });
  });

  it('says a request without credentials was anonymous, and gives no CLI advice', async () => {
    const err = await registryError(
      answer(401, UNAUTHORIZED, { anonymous: true }),
      'manifest 127.0.0.1:5000/bob/x:v1',
      {
        ...where,
        action: 'pull',
      },
    );
    expect(err.code).toBe('ERR_UNAUTHORIZED');
    expect(err.message).toMatch(
      /^an anonymous request may not pull from 127\.0\.0\.1:5000\/bob\/x \(manifest /,
    );
    expect(err.message).not.toMatch(/regauth|--/);
    expect(err.access?.as).toBe('anonymous');
  });

  it('names a delete, a catalog listing, an identity token, and a caller whose send says nothing', async () => {
    const token: SentAs = { anonymous: false, source: 'docker config /c.json' };
    const del = await registryError(answer(403, { errors: [{ code: 'DENIED' }] }, token), 'manifest', {
      ...where,
      action: 'delete',
    });
    expect(del.message).toMatch(
      /^the identity token may not delete from 127\.0\.0\.1:5000\/bob\/x \(credentials from/,
    );
    const catalog = await registryError(answer(401, UNAUTHORIZED, ALICE, INSUFFICIENT), 'catalog', {
      registry: where.registry,
      action: 'list',
    });
    expect(catalog.message).toMatch(/^alice may not list the catalog of 127\.0\.0\.1:5000 /);
    expect(catalog.access).not.toHaveProperty('repository');
    const unknown = await registryError(answer(403, {}), 'manifest', { ...where, action: 'pull' });
    expect(unknown.message).toMatch(
      /^the registry refused to let this request pull from 127\.0\.0\.1:5000\/bob\/x /,
    );
    expect(unknown.access?.as).toBe('unknown');
  });

  it('keeps other errors as they were: no access facts for a missing manifest', async () => {
    const err = await registryError(
      answer(404, { errors: [{ code: 'MANIFEST_UNKNOWN' }] }, ALICE),
      'manifest m',
      {
        ...where,
        action: 'pull',
      },
    );
    expect(err.code).toBe('ERR_MANIFEST_UNKNOWN');
    expect(err.access).toBeUndefined();
    expect(err.message).toBe('manifest m: 404 MANIFEST_UNKNOWN');
  });
});
