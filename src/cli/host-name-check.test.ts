import { describe, expect, it } from 'vitest';
import { runModuleScript } from '../testing/run-module-script.js';
import { type HostNameCheckParts, readyHostNameCheck } from './host-name-check.js';

/** Parts that record what readyHostNameCheck does with them. */
function recording(v8 = '13.6.233.17', fail: { setFlags?: string; isIP?: boolean } = {}) {
  const calls: string[] = [];
  const parts: HostNameCheckParts = {
    v8,
    setFlags: (flags) => {
      calls.push(flags);
      if (flags === fail.setFlags) throw new Error('no such flag');
    },
    isIP: (input) => {
      calls.push(`isIP ${input}`);
      if (fail.isIP) throw new Error('broken');
      return 0;
    },
  };
  return { calls, parts };
}

const WARM_UP = [
  '--no-regexp-optimization',
  'isIP regauth.invalid',
  'isIP regauth.invalid',
  '--regexp-optimization',
];

describe('readyHostNameCheck', () => {
  it('compiles the check once with the optimizations off, then turns them on again, for a registry named by a host name', () => {
    for (const registry of ['registry.example:5000', 'docker.io', 'localhost:5000', '[::1]:5000', 'runsc']) {
      const { calls, parts } = recording();
      readyHostNameCheck(registry, parts);
      expect(calls, registry).toEqual(WARM_UP);
    }
  });

  it('does nothing for an IPv4 address, which node:net tells without the IPv6 pattern', () => {
    for (const registry of ['127.0.0.1:5000', '10.1.2.3']) {
      const { calls, parts } = recording();
      readyHostNameCheck(registry, parts);
      expect(calls, registry).toEqual([]);
    }
  });

  it('leaves a V8 it does not know alone: an unknown flag would be an error on stderr', () => {
    for (const v8 of ['10.2.154.26', '14.0.1', 'unknown']) {
      const { calls, parts } = recording(v8);
      readyHostNameCheck('registry.example', parts);
      expect(calls, v8).toEqual([]);
    }
    for (const v8 of ['11.3.244.8', '12.4.254.21', '13.6.233.17']) {
      const { calls, parts } = recording(v8);
      readyHostNameCheck('registry.example', parts);
      expect(calls, v8).toEqual(WARM_UP);
    }
  });

  it('turns the optimizations on again when the check throws, and throws nothing itself', () => {
    const broken = recording(undefined, { isIP: true });
    expect(() => readyHostNameCheck('registry.example', broken.parts)).not.toThrow();
    expect(broken.calls).toEqual([
      '--no-regexp-optimization',
      'isIP regauth.invalid',
      '--regexp-optimization',
    ]);
    const refused = recording(undefined, { setFlags: '--no-regexp-optimization' });
    expect(() => readyHostNameCheck('registry.example', refused.parts)).not.toThrow();
    expect(refused.calls).toEqual(['--no-regexp-optimization']);
  });

  it("runs on this runtime's V8 without a word on stderr, and node:net still tells names from addresses", async () => {
    const script = `
      const { isIP } = await import('node:net');
      const { readyHostNameCheck } = await import(${JSON.stringify(new URL('./host-name-check.ts', import.meta.url).pathname)});
      readyHostNameCheck('registry.example:5000');
      console.log([isIP('registry.example'), isIP('::1'), isIP('fe80::1%eth0'), isIP('127.0.0.1'), isIP('1.2.3'), /^(a|b)+c$/.test('ababc')].join(' '));`;
    const child = await runModuleScript(script);
    expect(child.stderr).toBe('');
    expect(child.stdout).toBe('0 6 6 4 0 true\n');
  });
});
