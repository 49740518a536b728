/**
 * Differential test of the single-pass strict CBOR decoder against the method it replaced:
 * decode with cbor-x, normalise, re-encode deterministically and require the very same bytes.
 * For random byte strings and random mutations of valid encodings, both must accept exactly the
 * same inputs, and decode accepted inputs to equal values.
 */
import { Decoder } from 'cbor-x';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromHex, isBytes } from '../src/bytes.js';
import { type CborMap, type CborValue, decodeCbor, encodeCbor } from '../src/cbor.js';
import { DecodeError } from '../src/errors.js';
import { mutated } from './helpers/mutate.js';

const oracleDecoder = new Decoder({ useRecords: false, mapsAsObjects: false, structuredClone: false } as ConstructorParameters<
  typeof Decoder
>[0]);

function normalise(v: unknown, depth: number): CborValue {
  if (depth > 16) throw new DecodeError('CBOR nested too deeply');
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new DecodeError('CBOR float or unsafe integer');
    return v;
  }
  if (typeof v === 'bigint') {
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new DecodeError('CBOR integer out of the safe range');
    }
    return Number(v);
  }
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (isBytes(v)) return new Uint8Array(v);
  if (Array.isArray(v)) return v.map((x) => normalise(x, depth + 1));
  if (v instanceof Map) {
    const out: CborMap = new Map();
    for (const [raw, x] of v) {
      const k = typeof raw === 'bigint' && raw <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(raw) : raw;
      if (typeof k !== 'number' || !Number.isSafeInteger(k) || k < 0) throw new DecodeError('CBOR map key is not an unsigned integer');
      out.set(k, normalise(x, depth + 1));
    }
    return out;
  }
  throw new DecodeError('CBOR type not allowed');
}

/** The former `decodeCbor` (without the size limit): the oracle. */
function oracle(bytes: Uint8Array): { ok: true; value: CborValue } | { ok: false } {
  if (bytes.length === 0) return { ok: false };
  try {
    const value = normalise(oracleDecoder.decode(bytes.slice()), 0);
    const again = encodeCbor(value);
    if (again.length !== bytes.length || again.some((b, i) => b !== bytes[i])) return { ok: false };
    return { ok: true, value };
  } catch {
    return { ok: false };
  }
}

function subject(bytes: Uint8Array): { ok: true; value: CborValue } | { ok: false } {
  try {
    return { ok: true, value: decodeCbor(bytes, 1 << 20) };
  } catch (err) {
    expect(err).toBeInstanceOf(DecodeError);
    return { ok: false };
  }
}

function agree(bytes: Uint8Array): void {
  const want = oracle(bytes);
  const got = subject(bytes);
  expect(got.ok, `input ${Buffer.from(bytes).toString('hex')}`).toBe(want.ok);
  if (want.ok && got.ok) expect(got.value).toEqual(want.value);
}

const cborValue: fc.Arbitrary<CborValue> = fc.letrec<{ v: CborValue }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    fc.maxSafeInteger(),
    fc.integer({ min: -300, max: 70000 }),
    fc.constantFrom(0, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, -24, -25, -256, -257, -(2 ** 32), -(2 ** 32) - 1),
    fc.string({ unit: 'grapheme', maxLength: 20 }),
    fc.string({ unit: 'binary', maxLength: 80 }).filter((s) => !/[\uD800-\uDFFF]/.test(s)),
    fc.boolean(),
    fc.uint8Array({ maxLength: 40 }),
    fc.array(tie('v'), { maxLength: 4 }),
    fc.array(fc.tuple(fc.oneof(fc.nat(30), fc.nat(1000), fc.maxSafeNat()), tie('v')), { maxLength: 4 }).map((kv) => new Map(kv)),
  ),
})).v;

/** A valid encoding with a few bytes overwritten, inserted or deleted, or truncated/extended. */
const mutatedCbor = mutated(cborValue.map(encodeCbor));

describe('strict CBOR decoder against the re-encode oracle', () => {
  it('agrees on valid encodings', () => {
    fc.assert(
      fc.property(cborValue, (v) => agree(encodeCbor(v))),
      { numRuns: 1000 },
    );
  });

  it('agrees on random byte strings', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), agree), { numRuns: 20000 });
  });

  it('agrees on random byte strings with a small-structure bias', () => {
    const head = fc.oneof(
      fc.integer({ min: 0, max: 255 }),
      fc.constantFrom(0xa1, 0xa2, 0x82, 0x18, 0x19, 0x1a, 0x1b, 0x41, 0x61, 0x62, 0xf4, 0xf5),
    );
    fc.assert(
      fc.property(fc.array(head, { minLength: 1, maxLength: 24 }), (a) => agree(new Uint8Array(a))),
      { numRuns: 20000 },
    );
  });

  it('agrees on mutations of valid encodings', () => {
    fc.assert(fc.property(mutatedCbor, agree), { numRuns: 20000 });
  });

  it.each([
    ['empty map', 'a0'],
    ['depth 16 scalar', `${'81'.repeat(16)}00`],
    ['depth 17 scalar', `${'81'.repeat(17)}00`],
    ['empty array at depth 16', `${'81'.repeat(16)}80`],
    ['2^53 - 1', '1b001fffffffffffff'],
    ['2^53', '1b0020000000000000'],
    ['-(2^53 - 1)', '3b001ffffffffffffe'],
    ['-(2^53)', '3b001fffffffffffff'],
    ['8-byte uint below 2^32', '1b00000000ffffffff'],
    ['map key 2^40', 'a11b000001000000000001'],
    ['overlong UTF-8', '62c080'],
    ['UTF-8 surrogate', '63eda080'],
    ['short text with BOM', '63efbbbf'],
    ['simple value 16', 'f0'],
    ['simple value 255', 'f8ff'],
    ['break', 'ff'],
    ['reserved ai', '1c'],
    ['negative map key', 'a12001'],
    ['bytes map key', 'a1410001'],
  ])('agrees on %s', (_name, hex) => agree(fromHex(hex)));

  it('keeps a leading U+FEFF in long text (the oracle lost it through TextDecoder and rejected)', () => {
    const s = `\uFEFF${'a'.repeat(80)}`;
    expect(decodeCbor(encodeCbor(s), 1024)).toBe(s);
  });
});
