/** The main job: `valise demo` runs end to end against a real relay and tells its story. */
import { describe, expect, it } from 'vitest';
import { runDemo } from '../src/demo.js';

describe('valise demo', () => {
  it('delivers the circulars to the three embassies, keeps them off the relay in clear, traces the leak, and honours revocation', async () => {
    const lines: string[] = [];
    const r = await runDemo({ say: (l) => lines.push(l) });
    expect(r.received.map((x) => x.unit)).toEqual(['Embassy in Paris', 'Embassy in Nairobi', 'Embassy in Jakarta']);
    expect(r.received.every((x) => x.subject === 'Circular 7/2026: consular fees' && x.from === 'Amina Diallo')).toBe(true);
    expect(r.plaintextOnRelay).toBe(false);
    expect(r.refusedAfterRevocation).toMatch(/revoked/);
    // The fingerprinted circular: distinct copies of one text, the record only at the records office,
    // and the leak (half of a PDF copy) traced to Nairobi alone; the unmarked original to nobody.
    const fp = r.fingerprint;
    expect(fp.copiesDistinct).toBe(true);
    expect(fp.copiesStripToOriginal).toBe(true);
    expect(fp.recordOnlyAtRecordsOffice).toBe(true);
    expect(fp.accused).toEqual(['Wanjiru Kamau, Embassy in Nairobi']);
    expect(fp.score).toBeGreaterThanOrEqual(fp.threshold as number);
    expect(fp.falseAccusationBound).toBeLessThan(1e-6);
    expect(fp.originalAccused).toEqual([]);
    const text = lines.join('\n');
    for (let step = 1; step <= 15; step++) expect(text).toContain(`[${step}]`);
    expect(text).toMatch(/ACCUSED: Wanjiru Kamau, Embassy in Nairobi: score/);
    expect(text).toMatch(/the unmarked original, traced the same way: no one accused; \d+ positions read/);
    expect(text).toMatch(/Paris fetches again: 0 new/);
    expect(text).toMatch(/\d{5}( \d{5}){11}/);
  }, 120_000);
});
