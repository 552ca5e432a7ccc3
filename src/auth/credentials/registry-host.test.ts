import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalRegistry, configKeyFor, DOCKER_HUB_CONFIG_KEY, registryHost } from './registry-host.js';

describe('registryHost', () => {
  it.each([
    ['ghcr.io', 'ghcr.io'],
    ['127.0.0.1:5000', '127.0.0.1:5000'],
    ['https://ghcr.io/', 'ghcr.io'],
    ['https://ghcr.io', 'ghcr.io'],
    ['https://registry.example.com:8443/v1/', 'registry.example.com:8443'],
    ['http://localhost:5000', 'localhost:5000'],
    ['https://user@host.example/v2/?x=1', 'host.example'],
    ['https://[::1]:5000/v1/', '[::1]:5000'],
    ['GHCR.IO', 'ghcr.io'],
  ])('turns the key %s into the host %s, as docker ConvertToHostname does', (key, host) => {
    expect(registryHost(key)).toBe(host);
  });

  it.each([
    'https://index.docker.io/v1/',
    'index.docker.io',
    'docker.io',
    'registry-1.docker.io',
    'https://registry-1.docker.io/v2/',
  ])('names Docker Hub docker.io for %s', (key) => {
    expect(registryHost(key)).toBe('docker.io');
  });

  it('gives no host for a podman namespace key without a scheme (quay.io/org)', () => {
    expect(registryHost('quay.io/org')).toBeUndefined();
    expect(registryHost('')).toBeUndefined();
    expect(registryHost('https://')).toBeUndefined();
  });

  it('strips any path after a scheme (property)', () => {
    const host = fc.stringMatching(/^[a-z0-9]([a-z0-9.-]{0,20}[a-z0-9])?(:[0-9]{1,5})?$/);
    const path = fc.stringMatching(/^(\/[A-Za-z0-9._~-]*){0,3}$/);
    fc.assert(
      fc.property(host, fc.constantFrom('http', 'https'), path, (h, scheme, p) => {
        expect(registryHost(`${scheme}://${h}${p}`)).toBe(registryHost(h));
      }),
    );
  });
});

describe('configKeyFor', () => {
  it("uses docker's index URL for Docker Hub, whatever name it is given", () => {
    expect(configKeyFor('docker.io')).toBe(DOCKER_HUB_CONFIG_KEY);
    expect(configKeyFor('registry-1.docker.io')).toBe('https://index.docker.io/v1/');
  });

  it('uses the bare host for other registries', () => {
    expect(configKeyFor('127.0.0.1:5000')).toBe('127.0.0.1:5000');
    expect(canonicalRegistry('Ghcr.io')).toBe('ghcr.io');
  });
});
