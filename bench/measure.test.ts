import { describe, expect, it } from 'vitest';
import { floorMs, stats } from './measure.js';

describe('floorMs', () => {
  it('adds a round trip per request to the start-up time', () => {
    expect(floorMs({ startMs: 25, rttMs: 20, requests: 3 })).toBe(85);
  });

  it('adds a round trip per handshake round trip as well', () => {
    // One request on one new TLS connection: TCP (1) + TLS 1.3 (1) + the request (1).
    expect(floorMs({ startMs: 25, rttMs: 20, requests: 1, handshakeRoundTrips: 2 })).toBe(85);
  });
});

describe('stats', () => {
  it('takes the middle of an odd list and the mean of the middle two of an even one', () => {
    expect(stats([5, 1, 3])).toEqual({ median: 3, min: 1, max: 5, n: 3 });
    expect(stats([4, 1, 3, 2]).median).toBe(2.5);
  });
});
