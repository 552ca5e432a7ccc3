import { afterEach, describe, expect, it } from 'vitest';
import { isRegauthError } from '../errors/regauth-error.js';
import { closedPort, loopbackServers } from '../testing/loopback-server.js';
import { createTransport } from '../transport/create-transport.js';
import type { Send } from '../transport/http-types.js';
import { RegistrySchemes } from './registry-schemes.js';

const servers = loopbackServers();
afterEach(() => servers.closeAll());

function transport(): Send {
  return createTransport({ env: {}, maxRetries: 0, sleep: async () => {} });
}

describe('RegistrySchemes', () => {
  it('speaks plain HTTP to a loopback registry that answers the TLS handshake with HTTP, after one ping', async () => {
    const server = await servers.start((_req, res) => {
      res.end('{}');
    });
    let pings = 0;
    const send = transport();
    const schemes = new RegistrySchemes({
      send: (req) => {
        pings++;
        return send(req);
      },
    });
    const all = await Promise.all([1, 2, 3].map(() => schemes.scheme(server.host)));
    expect(all).toEqual(['http', 'http', 'http']);
    expect((await schemes.baseUrl(server.host)).href).toBe(`http://${server.host}/`);
    expect(pings).toBe(1);
    // The TLS attempt never reached the HTTP handler: no request was spent on it.
    expect(server.requests).toEqual([]);
  });

  it('rewrites requests to the registry host only, with the scheme found', async () => {
    const server = await servers.start((_req, res) => {
      res.end('{}');
    });
    const seen: string[] = [];
    const schemes = new RegistrySchemes({ send: transport() });
    const send = transport();
    // Only the registry's own host is ever contacted: another host (a realm) is just recorded.
    const wrapped = schemes.wrap(async (req) => {
      seen.push(req.url.href);
      return send({
        ...req,
        url: req.url.host === server.host ? req.url : new URL(`http://${server.host}/`),
      });
    });
    for (const url of [
      `https://${server.host}/v2/`,
      'https://realm.example/token',
      `http://${server.host}/v2/x`,
    ]) {
      await (await wrapped({ method: 'GET', url: new URL(url), registry: server.host, scopes: [] })).dump();
    }
    expect(seen[0]).toBe(`http://${server.host}/v2/`);
    expect(seen[1]).toBe('https://realm.example/token');
    expect(seen[2]).toBe(`http://${server.host}/v2/x`);
  });

  it('leaves remote registries on HTTPS and everything on HTTP with insecure, without a ping', async () => {
    const send: Send = async () => {
      throw new Error('no ping expected');
    };
    expect(await new RegistrySchemes({ send }).scheme('registry.example:5000')).toBe('https');
    expect(await new RegistrySchemes({ send, insecure: true }).scheme('127.0.0.1:5000')).toBe('http');
  });

  it("takes the TLS probe's plain HTTP without a ping; any other answer of it, the ping decides", async () => {
    const server = await servers.start((_req, res) => {
      res.end('{}');
    });
    const notes: string[] = [];
    const probed: string[] = [];
    let pings = 0;
    const send = transport();
    const schemes = (answer: 'tls' | 'plain' | undefined | Error) =>
      new RegistrySchemes({
        send: (req) => {
          pings++;
          return send(req);
        },
        trace: (e) => {
          if (e.kind === 'note') notes.push(e.text);
        },
        probeTls: async (host) => {
          probed.push(host);
          if (answer instanceof Error) throw answer;
          return answer;
        },
      });
    expect(await schemes('plain').scheme(server.host)).toBe('http');
    expect(probed).toEqual([server.host]);
    expect(pings).toBe(0);
    expect(notes).toEqual([`${server.host} answers HTTPS with plain HTTP; speaking plain HTTP to it`]);
    // The probe saw TLS, or could not tell: the ping (a checked HTTPS request) has the last word.
    for (const answer of ['tls', undefined, new Error('probe broke')] as const) {
      pings = 0;
      expect(await schemes(answer).scheme(server.host)).toBe('http');
      expect(pings).toBe(1);
    }
    expect(server.requests).toEqual([]);
  });

  it('never falls back to plain HTTP when the TLS handshake fails for another reason, and asks again later', async () => {
    const port = await closedPort();
    const schemes = new RegistrySchemes({ send: transport() });
    const failed = await schemes.scheme(`127.0.0.1:${port}`).catch((err: unknown) => err);
    expect(isRegauthError(failed, 'ERR_NETWORK')).toBe(true);
    const server = await servers.start((_req, res) => {
      res.end('{}');
    });
    // Not a cached failure: the same object finds a registry that came up since.
    expect(await schemes.scheme(server.host)).toBe('http');
  });
});
