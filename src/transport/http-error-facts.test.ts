import { afterEach, describe, expect, it } from 'vitest';
import { isRegauthError } from '../errors/regauth-error.js';
import { loopbackServers } from '../testing/loopback-server.js';
import { createTransport } from './create-transport.js';
import { errorRequest, httpErrorFacts } from './http-error-facts.js';

const SECRET = 'pw-Zq81-secret';
const servers = loopbackServers();
afterEach(() => servers.closeAll());

describe('errorRequest', () => {
  it('drops user info and hides query values off the protocol allow-list', () => {
    const url = new URL(`https://bob:${SECRET}@reg.example/v2/a/blobs/x?X-Amz-Signature=${SECRET}&digest=d1`);
    const request = errorRequest('GET', url);
    expect(request).toEqual({
      method: 'GET',
      url: 'https://reg.example/v2/a/blobs/x?X-Amz-Signature=redacted&digest=d1',
    });
  });

  it('takes the method from the response when the transport set it, else the one given', () => {
    const url = new URL('http://127.0.0.1:1/v2/');
    expect(httpErrorFacts({ status: 500, url, method: 'HEAD' }, 'GET')).toEqual({
      status: 500,
      request: { method: 'HEAD', url: 'http://127.0.0.1:1/v2/' },
    });
    expect(httpErrorFacts({ status: 404, url })).toEqual({ status: 404 });
  });
});

describe('transport errors', () => {
  it('name the request of a failed connection without the password in its URL', async () => {
    const server = await servers.start((_req, res) => {
      res.end();
    });
    const port = server.port;
    await server.close();
    const send = createTransport({ env: {}, maxRetries: 0 });
    const err = await send({
      method: 'GET',
      url: new URL(`http://u:${SECRET}@127.0.0.1:${port}/v2/?sig=${SECRET}`),
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isRegauthError(err, 'ERR_NETWORK')).toBe(true);
    if (!isRegauthError(err, 'ERR_NETWORK')) return;
    expect(err.request).toEqual({ method: 'GET', url: `http://127.0.0.1:${port}/v2/?sig=redacted` });
    expect(err.status).toBeUndefined();
    expect(`${err.message} ${String(err)} ${JSON.stringify(err.request)}`).not.toContain(SECRET);
  });

  it('mark each response with the method that got it', async () => {
    const server = await servers.start((_req, res) => {
      res.end();
    });
    const send = createTransport({ env: {}, maxRetries: 0 });
    const res = await send({ method: 'HEAD', url: server.url('/v2/') });
    await res.dump();
    expect(res.method).toBe('HEAD');
  });
});
