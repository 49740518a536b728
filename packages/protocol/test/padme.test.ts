import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { padme } from '../src/padme.js';

describe('Padmé', () => {
  it('matches the paper’s definition on known values', () => {
    // E = floor(log2 L), S = floor(log2 E) + 1, the low E - S bits are rounded up.
    expect([0, 1, 2, 3, 9, 100, 1000, 1024, 1025].map(padme)).toEqual([0, 1, 2, 3, 10, 104, 1024, 1024, 1088]);
    expect(padme(2 ** 30 - 1)).toBe(2 ** 30);
    expect(padme(100 * 2 ** 20)).toBe(104857600);
  });

  it('never shrinks, is idempotent, and costs at most 12% beyond 16 bytes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), (n) => {
        const p = padme(n);
        expect(p).toBeGreaterThanOrEqual(n);
        expect(padme(p)).toBe(p);
        if (n > 16) expect(p / n).toBeLessThanOrEqual(1.12);
      }),
      { numRuns: 2000 },
    );
  });
});
