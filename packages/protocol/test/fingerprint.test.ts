import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as attacks from '../src/attacks.js';
import { u32be } from '../src/bytes.js';
import { type CborMap, decodeCbor, encodeCbor, StructType } from '../src/cbor.js';
import { ErrorCode, ValiseError } from '../src/errors.js';
import {
  decodeTracingRecord,
  encodeTracingRecord,
  epsilonToDecimal,
  fingerprintDocument,
  prepareTracing,
  recipientSymbols,
  type TracingRecord,
  traceLeak,
  traceReading,
} from '../src/fingerprint.js';
import { ALL_CHANNELS, applyMarks, planMarks, readMarks, removeMarks } from '../src/marks.js';
import { deterministicRandomForTesting } from '../src/random.js';

const corpus = (name: string) => readFileSync(new URL(`./fixtures/corpus/${name}`, import.meta.url), 'utf8');
const AR = corpus('ar-cable-economic.txt');
const EN = corpus('en-memo-security.txt');
const EN_SHORT = corpus('en-cable-political.txt');

function recipients(n: number) {
  return Array.from({ length: n }, (_, i) => {
    const id = new Uint8Array(16);
    id.set(u32be(i + 1), 12);
    id[0] = 0xee;
    return { id, name: `Embassy ${i + 1}` };
  });
}

function keyFor(seed: number): { tracingKey: Uint8Array; itemId: Uint8Array } {
  const tracingKey = new Uint8Array(32).map((_, i) => (seed * 31 + i * 7) & 0xff);
  const itemId = new Uint8Array(16).map((_, i) => (seed * 17 + i) & 0xff);
  return { tracingKey, itemId };
}

const expectDecodeError = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    expect(ValiseError.is(e, ErrorCode.Decode)).toBe(true);
    return;
  }
  throw new Error('expected a DecodeError');
};

describe('tracing record codec', () => {
  const arbRecord: fc.Arbitrary<TracingRecord> = fc
    .record({
      itemId: fc.uint8Array({ minLength: 16, maxLength: 16 }),
      tracingKey: fc.uint8Array({ minLength: 32, maxLength: 32 }),
      recipients: fc.uniqueArray(
        fc.record({ id: fc.uint8Array({ minLength: 16, maxLength: 16 }), name: fc.string({ maxLength: 40, unit: 'grapheme' }) }),
        { minLength: 1, maxLength: 12, selector: (r) => Array.from(r.id).join(',') },
      ),
      c: fc.integer({ min: 1, max: 16 }),
      mantissa: fc.integer({ min: 1, max: 999 }).filter((m) => m % 10 !== 0),
      exponent: fc.integer({ min: 3, max: 22 }),
      channels: fc.subarray([...ALL_CHANNELS], { minLength: 1 }),
      positions: fc.integer({ min: 0, max: 2 ** 20 }),
      originalHash: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    })
    .map(({ mantissa, exponent, ...r }) => ({ ...r, epsilon: mantissa / Number(`1e${exponent}`) }));

  it('round-trips, deterministically, and re-encodes to the same bytes', () => {
    fc.assert(
      fc.property(arbRecord, (record) => {
        const bytes = encodeTracingRecord(record);
        const back = decodeTracingRecord(bytes);
        expect(back).toEqual(record);
        expect(encodeTracingRecord(back)).toEqual(bytes);
      }),
      { numRuns: 200 },
    );
  });

  it('writes ε as a canonical decimal, never a float', () => {
    expect(epsilonToDecimal(1e-6)).toEqual({ mantissa: 1, exponent: 6 });
    expect(epsilonToDecimal(2.5e-7)).toEqual({ mantissa: 25, exponent: 8 });
    expect(epsilonToDecimal(0.01)).toEqual({ mantissa: 1, exponent: 2 });
    for (const bad of [0, 1, -1e-6, Number.NaN, 1 / 3, 1e-30]) expect(() => epsilonToDecimal(bad)).toThrow();
  });

  it('rejects random bytes with DecodeError only', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        expectDecodeError(() => decodeTracingRecord(bytes));
      }),
      { numRuns: 1000 },
    );
  });

  it('mutated encodings either decode to a valid record or fail with DecodeError', () => {
    fc.assert(
      fc.property(arbRecord, fc.nat(), fc.integer({ min: 1, max: 255 }), fc.boolean(), (record, at, x, truncate) => {
        const bytes = encodeTracingRecord(record);
        const i = at % bytes.length;
        const bad = truncate ? bytes.subarray(0, i) : bytes.map((b, k) => (k === i ? b ^ x : b));
        try {
          const back = decodeTracingRecord(bad);
          expect(encodeTracingRecord(back)).toEqual(bad);
        } catch (e) {
          expect(ValiseError.is(e, ErrorCode.Decode)).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('rejects each invalid field', () => {
    const valid = encodeTracingRecord({
      itemId: new Uint8Array(16),
      tracingKey: new Uint8Array(32),
      recipients: recipients(2),
      c: 3,
      epsilon: 1e-6,
      channels: ['kashida', 'zero-width'],
      positions: 10,
      originalHash: new Uint8Array(32),
    });
    const edit = (f: (m: CborMap) => void) => {
      const m = decodeCbor(valid, 1 << 22) as CborMap;
      f(m);
      return encodeCbor(m);
    };
    expect(decodeTracingRecord(edit(() => {}))).toBeTruthy();
    const cases: ((m: CborMap) => void)[] = [
      (m) => m.set(1, StructType.SafetyNumberPayload),
      (m) => m.set(0, 2),
      (m) => m.set(2, new Uint8Array(15)),
      (m) => m.set(3, new Uint8Array(31)),
      (m) => m.set(4, []),
      (m) => {
        const r = m.get(4) as CborMap[];
        m.set(4, [r[0]!, r[0]!]); // duplicate id
      },
      (m) => (m.get(4) as CborMap[])[0]!.set(2, 1), // unknown recipient field
      (m) => (m.get(4) as CborMap[])[0]!.set(1, 'x'.repeat(257)),
      (m) => m.set(5, 0),
      (m) => m.set(5, 17),
      (m) => m.set(6, 10), // mantissa multiple of 10
      (m) => m.set(6, 0),
      (m) => m.set(6, 10 ** 6), // ε = 1
      (m) => m.set(7, 0),
      (m) => m.set(7, 23),
      (m) => m.set(8, []),
      (m) => m.set(8, ['zero-width', 'kashida']), // out of order (canonical: kashida first)
      (m) => m.set(8, ['kashida', 'kashida']),
      (m) => m.set(8, ['emoji']),
      (m) => m.set(9, 2 ** 20 + 1),
      (m) => m.set(10, new Uint8Array(31)),
      (m) => m.set(11, 0), // unknown key
      (m) => m.delete(10),
    ];
    for (const f of cases) expectDecodeError(() => decodeTracingRecord(edit(f)));
  });
});

describe('fingerprintDocument and traceLeak', () => {
  const people = recipients(40);

  it('makes distinct, deterministic copies that unmark to the original', () => {
    const opts = { ...keyFor(1), recipients: people.slice(0, 8) };
    const a = fingerprintDocument(EN_SHORT, opts);
    const b = fingerprintDocument(EN_SHORT, opts);
    expect(a.copies).toEqual(b.copies);
    expect(new Set(a.copies).size).toBe(8);
    expect(a.record.positions).toBe(a.report.points);
    expect(a.report.points).toBeGreaterThan(100);
    const plan = planMarks(EN_SHORT, a.record.channels);
    for (const copy of a.copies) {
      expect(copy).not.toBe(EN_SHORT);
      expect(removeMarks(copy, plan)).toBe(EN_SHORT);
    }
    expect(decodeTracingRecord(encodeTracingRecord(a.record))).toEqual(a.record);
    // Another key gives other copies.
    expect(fingerprintDocument(EN_SHORT, { ...keyFor(2), recipients: people.slice(0, 8) }).copies[0]).not.toBe(a.copies[0]);
  });

  it('names a single leaker from a whole copy, excerpts, NFKC and a PDF copy, Arabic and English', () => {
    const random = deterministicRandomForTesting('fingerprint.test/single');
    for (const [text, seed] of [
      [AR, 3],
      [EN, 4],
    ] as const) {
      const { copies, record } = fingerprintDocument(text, { ...keyFor(seed), recipients: people });
      const decoded = decodeTracingRecord(encodeTracingRecord(record));
      for (const leaker of [0, 23]) {
        const copy = copies[leaker]!;
        const leaks = [copy, attacks.excerpt(copy, 0.25, random), attacks.nfkc(copy), attacks.pdfCopy(attacks.excerpt(copy, 0.3, random))];
        for (const leak of leaks) {
          const result = traceLeak(leak, text, decoded);
          expect(result.accused.map((s) => s.index)).toEqual([leaker]);
          const top = result.accused[0]!;
          expect(top.score).toBeGreaterThanOrEqual(result.threshold);
          expect(top.falseAccusationBound).toBeLessThanOrEqual(record.epsilon);
          expect(top.evidence!.length).toBe(result.read);
          expect(top.evidence!.filter((e) => e.matched).length).toBe(top.matches);
        }
      }
    }
  });

  it('treats channels that were normalised away as erased, not as evidence', () => {
    const { copies, record } = fingerprintDocument(EN, { ...keyFor(10), recipients: people.slice(0, 5) });
    const result = traceLeak(attacks.stripZeroWidth(copies[1]!), EN, record);
    expect(result.accused.map((s) => s.index)).toEqual([1]);
    expect(result.read).toBeLessThan(result.positions);
  });

  it('traces a coalition of 3 (interleave, majority, random choice): >= 1 colluder, no innocent', () => {
    const random = deterministicRandomForTesting('fingerprint.test/coalition');
    const { copies, record } = fingerprintDocument(EN, { ...keyFor(5), recipients: people });
    const coalition = [4, 17, 31];
    const mine = coalition.map((i) => copies[i]!);
    const ctx = prepareTracing(EN, record, { codewords: true });
    for (const leak of [attacks.interleave(mine, random), attacks.majority(mine), attacks.randomChoice(mine, random)]) {
      const result = traceLeak(leak, EN, record);
      expect(result.accused.length).toBeGreaterThan(0);
      for (const s of result.accused) expect(coalition).toContain(s.index);
      // The prepared, lean path gives the same accusations and scores.
      const lean = traceReading(ctx, readMarks(ctx.plan, leak), { details: false });
      expect(lean.accused.map((s) => s.index)).toEqual(result.accused.map((s) => s.index));
      expect(lean.threshold).toBe(result.threshold);
      expect(lean.suspects.map((s) => s.score)).toEqual(result.suspects.map((s) => s.score));
    }
  });

  it('accuses nobody for the unmarked original or an unrelated text', () => {
    const { record } = fingerprintDocument(AR, { ...keyFor(6), recipients: people });
    for (const leak of [AR, EN, '']) {
      const result = traceLeak(leak, AR, record);
      expect(result.accused).toEqual([]);
    }
  });

  it('reports capacity, warns or refuses below the target', () => {
    const big = fingerprintDocument(EN, { ...keyFor(7), recipients: people });
    expect(big.report.maxCoalition.whole).toBeGreaterThanOrEqual(big.report.maxCoalition.half);
    expect(big.report.c).toBe(3);
    const tiny = 'A short note. It says very little.';
    const warned = fingerprintDocument(tiny, { ...keyFor(8), recipients: people, policy: 'warn' });
    expect(warned.report.meetsTarget).toBe(false);
    expect(warned.report.warnings.length).toBeGreaterThan(0);
    expect(() => fingerprintDocument(tiny, { ...keyFor(8), recipients: people, policy: 'refuse' })).toThrow(/refused/);
  });

  it('checks its arguments and that the original matches the record', () => {
    const { record } = fingerprintDocument(EN_SHORT, { ...keyFor(9), recipients: people.slice(0, 3) });
    const arg = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(ValiseError.is(e, ErrorCode.Argument)).toBe(true);
        return;
      }
      throw new Error('expected an ArgumentError');
    };
    arg(() => traceLeak(EN_SHORT, `${EN_SHORT} `, record));
    arg(() => traceLeak(EN_SHORT, EN_SHORT, { ...record, positions: record.positions + 1 }));
    arg(() => fingerprintDocument(EN_SHORT, { ...keyFor(9), recipients: [] }));
    arg(() => fingerprintDocument(EN_SHORT, { ...keyFor(9), recipients: [people[0]!, people[0]!] }));
    arg(() => fingerprintDocument(EN_SHORT, { ...keyFor(9), recipients: people, c: 0 }));
    arg(() => fingerprintDocument(EN_SHORT, { ...keyFor(9), recipients: people, epsilon: 1 / 3 }));
    arg(() => fingerprintDocument(EN_SHORT, { tracingKey: new Uint8Array(31), itemId: new Uint8Array(16), recipients: people }));
    // The symbols of a re-derived copy give back the very same copy.
    const ctx = prepareTracing(EN_SHORT, record, { codewords: true });
    const again = fingerprintDocument(EN_SHORT, { ...keyFor(9), recipients: people.slice(0, 3) }).copies;
    expect(applyMarks(ctx.plan, recipientSymbols(ctx, 2))).toBe(again[2]);
  });
});
