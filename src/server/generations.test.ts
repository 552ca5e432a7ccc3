import { describe, expect, it } from 'vitest';
import { Generations } from './generations.js';

describe('Generations', () => {
  it('keeps a request on the generation it entered and says when the old one is drained', async () => {
    const first = { n: 1 };
    const second = { n: 2 };
    const generations = new Generations(first);
    const request = generations.enter();
    expect(generations.swap(second)).toBe(first);
    expect(request.generation).toBe(first);
    expect(generations.enter().generation).toBe(second);
    let drained: boolean | undefined;
    const waiting = generations.drained(first).then((d) => {
      drained = d;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(drained).toBeUndefined();
    request.leave();
    request.leave(); // a second leave changes nothing
    await waiting;
    expect(drained).toBe(true);
    expect(generations.active(first)).toBe(0);
    expect(generations.active(second)).toBe(1);
  });

  it('gives up waiting after the grace', async () => {
    const generations = new Generations({ n: 1 });
    const held = generations.enter();
    expect(await generations.drained(held.generation, 10)).toBe(false);
  });
});
