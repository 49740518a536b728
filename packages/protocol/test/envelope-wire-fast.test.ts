/**
 * Differential test of scanPreludeFrame and framedEntryPrelude (the prelude validated in place,
 * each recipient's one-entry prelude spliced from the envelope's bytes) against what they
 * replace: readPreludeFrame, then `framePrelude(encodePrelude({ ...prelude, entries: [entry] }))`
 * per entry. On valid envelopes, mutations of them and random bytes, both must accept the same
 * envelopes, throw DecodeErrors with the same message for the others, and give byte-identical
 * per-recipient preludes and the same records offset.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concat, toHex, u32be, utf8 } from '../src/bytes.js';
import { encodeCbor } from '../src/cbor.js';
import { seal } from '../src/envelope.js';
import {
  type EnvelopePrelude,
  encodePrelude,
  framedEntryPrelude,
  framePrelude,
  MAX_ENC_LENGTH,
  MAX_PRELUDE_SIZE,
  preludeLayoutOfDecodedForTesting,
  readPreludeFrame,
  scanPreludeFrame,
  scanPreludeFrameFastForTesting,
  sliceEnvelope,
  splitEnvelope,
} from '../src/envelope-wire.js';
import { ArgumentError, DecodeError } from '../src/errors.js';
import { KemId } from '../src/hpke.js';
import { mutated } from './helpers/mutate.js';
import { makeOrg } from './helpers/org.js';

type Split = { ok: true; recordsOffset: number; preludes: string[] } | { ok: false; message: string };

function attempt(split: () => { recordsOffset: number; preludes: Uint8Array[] }): Split {
  try {
    const { recordsOffset, preludes } = split();
    return { ok: true, recordsOffset, preludes: preludes.map(toHex) };
  } catch (err) {
    expect(err).toBeInstanceOf(DecodeError);
    return { ok: false, message: (err as Error).message };
  }
}

/** The former way: decode the prelude, re-encode it with one entry per recipient. */
function oracle(envelope: Uint8Array): Split {
  return attempt(() => {
    const { prelude, recordsOffset } = readPreludeFrame(envelope);
    return { recordsOffset, preludes: prelude.entries.map((entry) => framePrelude(encodePrelude({ ...prelude, entries: [entry] }))) };
  });
}

function subject(envelope: Uint8Array): Split {
  return attempt(() => {
    const layout = scanPreludeFrame(envelope);
    expect(layout.entryOffsets).toHaveLength(layout.entryCount + 1);
    const preludes = Array.from({ length: layout.entryCount }, (_, i) => framedEntryPrelude(envelope, layout, i));
    return { recordsOffset: layout.recordsOffset, preludes };
  });
}

function agree(envelope: Uint8Array): Split {
  const want = oracle(envelope);
  const got = subject(envelope);
  if (got.ok !== want.ok)
    expect.fail(`input ${toHex(envelope.subarray(0, 80))}: the scanner ${got.ok ? 'accepts' : 'rejects'}, the decoder does not`);
  expect(got).toEqual(want);
  const fast = scanPreludeFrameFastForTesting(envelope);
  if (fast !== undefined) {
    if (!want.ok) expect.fail(`input ${toHex(envelope.subarray(0, 80))}: the fast scan accepts what readPreludeFrame rejects`);
    // The fallback layout (computed from the decoded prelude) is the scanner's.
    expect(preludeLayoutOfDecodedForTesting(envelope)).toEqual(fast);
  }
  return want;
}

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
const prelude: fc.Arbitrary<EnvelopePrelude> = fc.record({
  envelopeId: bytes(16),
  kem: fc.oneof(fc.constantFrom(0x647a, 0x0020, 0, 23, 24, 255, 256, 0xffff), fc.nat({ max: 0xffff })),
  hintKey: bytes(32),
  entries: fc.array(
    fc.record({
      hint: bytes(16),
      enc: fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.uint8Array({ minLength: 250, maxLength: 300 })),
      ct: fc.oneof(fc.uint8Array({ minLength: 17, maxLength: 40 }), fc.uint8Array({ minLength: 250, maxLength: 300 })),
    }),
    { minLength: 1, maxLength: 5 },
  ),
});
/** `u32be(P) || prelude || records`, the records arbitrary (they are never read). */
const envelope = fc.tuple(prelude, fc.uint8Array({ maxLength: 20 })).map(([p, records]) => concat(framePrelude(encodePrelude(p)), records));

/** Smaller entries, so that mutations mostly land on the structure. */
const smallEnvelope = fc
  .tuple(
    prelude.map((p) => ({
      ...p,
      entries: p.entries.slice(0, 3).map((e) => ({ ...e, enc: e.enc.subarray(0, 3), ct: e.ct.subarray(0, 17) })),
    })),
    fc.uint8Array({ maxLength: 4 }),
  )
  .map(([p, records]) => concat(framePrelude(encodePrelude(p)), records));

const mutatedEnvelope = mutated(smallEnvelope, { moveLength: true });

describe('prelude scanner against readPreludeFrame and re-encoding', () => {
  it('valid envelopes: the same records offset and byte-identical per-recipient preludes, on the fast path', () => {
    fc.assert(
      fc.property(envelope, (env) => {
        expect(agree(env).ok).toBe(true);
        expect(scanPreludeFrameFastForTesting(env)).toBeDefined();
        expect(agree(Buffer.from(env)).ok).toBe(true);
      }),
      { numRuns: 500 },
    );
  }, 60_000);

  it('agrees on mutations of valid envelopes', () => {
    fc.assert(
      fc.property(mutatedEnvelope, (b) => void agree(b)),
      { numRuns: 10000 },
    );
  }, 60_000);

  it('agrees on random bytes, and on random bytes behind a prelude header', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), (b) => void agree(b)),
      { numRuns: 5000 },
    );
    const head = [0xa6, 0x00, 0x01, 0x01, 0x0a, 0x02, 0x50];
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), fc.nat({ max: 8 }), (tail, extra) => {
        const p = [...head, ...tail];
        const len = Math.max(0, p.length - (extra % 4));
        agree(concat(u32be(len), new Uint8Array(p)));
      }),
      { numRuns: 5000 },
    );
  }, 60_000);

  it('agrees at the limits of every field', () => {
    const base: EnvelopePrelude = {
      envelopeId: new Uint8Array(16).fill(1),
      kem: 0x647a,
      hintKey: new Uint8Array(32).fill(2),
      entries: [{ hint: new Uint8Array(16).fill(3), enc: new Uint8Array(1), ct: new Uint8Array(17) }],
    };
    const env = (p: EnvelopePrelude, records = new Uint8Array(3)) => concat(framePrelude(encodePrelude(p)), records);
    const entry = base.entries[0]!;
    const valid: EnvelopePrelude[] = [
      { ...base, entries: [{ ...entry, enc: new Uint8Array(MAX_ENC_LENGTH) }] },
      { ...base, entries: [{ ...entry, ct: new Uint8Array(70_000) }] },
      { ...base, entries: Array.from({ length: 24 }, () => entry) },
      { ...base, entries: Array.from({ length: 256 }, () => entry) },
      { ...base, entries: Array.from({ length: 4096 }, () => entry) },
    ];
    for (const p of valid) {
      expect(scanPreludeFrameFastForTesting(env(p))).toBeDefined();
      expect(agree(env(p)).ok).toBe(true);
    }
    const invalid: EnvelopePrelude[] = [
      { ...base, kem: 0x10000 },
      { ...base, envelopeId: new Uint8Array(15) },
      { ...base, hintKey: new Uint8Array(33) },
      { ...base, entries: [] },
      { ...base, entries: Array.from({ length: 4097 }, () => entry) },
      { ...base, entries: [{ ...entry, hint: new Uint8Array(17) }] },
      { ...base, entries: [{ ...entry, enc: new Uint8Array(0) }] },
      { ...base, entries: [{ ...entry, enc: new Uint8Array(MAX_ENC_LENGTH + 1) }] },
      { ...base, entries: [{ ...entry, ct: new Uint8Array(16) }] },
    ];
    for (const p of invalid) expect(agree(env(p)).ok).toBe(false);
    const good = encodePrelude(base);
    const framed = (p: Uint8Array, n = p.length) => concat(u32be(n), p);
    const bad: [string, Uint8Array][] = [
      ['empty', new Uint8Array(0)],
      ['no prelude', u32be(0)],
      ['prefix cut short', new Uint8Array(3)],
      ['prelude past the end', framed(good, good.length + 1)],
      ['prelude over the limit', framed(good, MAX_PRELUDE_SIZE + 1)],
      ['one byte short', framed(good, good.length - 1)],
      ['trailing byte in the prelude', framed(concat(good, new Uint8Array(1)))],
      ['unknown key in an entry', framed(encodeRaw(base, (e) => [...e, [3, 0]]))],
      ['entry as an array', framed(good.map((x, i) => (i === good.indexOf(0xa3) ? 0x83 : x)))],
    ];
    for (const [what, b] of bad) {
      expect(scanPreludeFrameFastForTesting(b), what).toBeUndefined();
      expect(agree(b).ok, what).toBe(false);
    }
  }, 60_000);

  it('sealed envelopes: each recipient slice is the re-encoded one, and splitEnvelope and sliceEnvelope agree with it', () => {
    const org = makeOrg('prelude-scanner');
    const sender = org.addDevice('HQ', 'Headquarters');
    for (const kem of [KemId.XWing, KemId.DhkemX25519HkdfSha256]) {
      const devices = ['Paris', 'Rome', 'Oslo'].map((city) => org.addDevice(city, `Embassy in ${city}`, { kem }));
      const env = seal(
        { subject: 'Circular', classification: 'RESTRICTED', distribution: [] },
        utf8('body'),
        sender.sender,
        devices.map((d) => d.verified),
        { randomForTesting: org.random },
      );
      const want = agree(env);
      expect(want.ok).toBe(true);
      const { deliveries, records } = splitEnvelope(env);
      if (want.ok) expect(deliveries.map(toHex)).toEqual(want.preludes);
      expect(toHex(records)).toBe(toHex(env.subarray(want.ok ? want.recordsOffset : 0)));
      for (let i = 0; i < deliveries.length; i++) expect(toHex(sliceEnvelope(env, i))).toBe(toHex(concat(deliveries[i]!, records)));
      expect(() => sliceEnvelope(env, deliveries.length)).toThrow(DecodeError);
      expect(() => sliceEnvelope(env, 0.5)).toThrow(DecodeError);
      const layout = scanPreludeFrame(env);
      expect(() => framedEntryPrelude(env, layout, -1)).toThrow(ArgumentError);
      expect(() => framedEntryPrelude(env, layout, layout.entryCount)).toThrow(ArgumentError);
    }
  }, 60_000);
});

/** A prelude encoded generically with its entries' fields changed by `f` (to build near misses). */
function encodeRaw(p: EnvelopePrelude, f: (entry: [number, unknown][]) => [number, unknown][]): Uint8Array {
  return encodeCbor(
    new Map<number, unknown>([
      [0, 1],
      [1, 10],
      [2, p.envelopeId],
      [3, p.kem],
      [4, p.hintKey],
      [
        5,
        p.entries.map(
          (e) =>
            new Map(
              f([
                [0, e.hint],
                [1, e.enc],
                [2, e.ct],
              ]),
            ),
        ),
      ],
    ]) as never,
  );
}
