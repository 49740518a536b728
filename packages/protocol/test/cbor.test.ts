import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../src/bytes.js';
import { type CborValue, decodeCbor, decodeStructure, encodeCbor, encodeStructure, MapReader, StructType } from '../src/cbor.js';
import { DecodeError, ValiseError } from '../src/errors.js';

const cborValue: fc.Arbitrary<CborValue> = fc.letrec<{ v: CborValue }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    fc.maxSafeInteger(),
    fc.string({ unit: 'grapheme', maxLength: 20 }),
    fc.boolean(),
    fc.uint8Array({ maxLength: 40 }),
    fc.array(tie('v'), { maxLength: 4 }),
    fc.array(fc.tuple(fc.nat(1000), tie('v')), { maxLength: 4 }).map((kv) => new Map(kv)),
  ),
})).v;

describe('deterministic CBOR (RFC 8949 §4.2.1)', () => {
  it('round-trips any value and re-encodes to identical bytes', () => {
    fc.assert(
      fc.property(cborValue, (v) => {
        const bytes = encodeCbor(v);
        const back = decodeCbor(bytes, 1 << 20);
        expect(back).toEqual(v);
        expect(toHex(encodeCbor(back))).toBe(toHex(bytes));
      }),
      { numRuns: 500 },
    );
  });

  it('encodes with the shortest integer forms and sorted map keys', () => {
    expect(toHex(encodeCbor(0))).toBe('00');
    expect(toHex(encodeCbor(23))).toBe('17');
    expect(toHex(encodeCbor(24))).toBe('1818');
    expect(toHex(encodeCbor(65535))).toBe('19ffff');
    expect(toHex(encodeCbor(2 ** 32))).toBe('1b0000000100000000');
    expect(toHex(encodeCbor(1_700_000_000_000))).toBe('1b0000018bcfe56800');
    expect(toHex(encodeCbor(-1))).toBe('20');
    expect(toHex(encodeCbor(-(2 ** 40)))).toBe('3b000000ffffffffff');
    expect(
      toHex(
        encodeCbor(
          new Map([
            [10, 1],
            [2, 2],
            [1, 3],
          ]),
        ),
      ),
    ).toBe('a3010302020a01');
    expect(toHex(encodeCbor(new Uint8Array([1, 2])))).toBe('420102');
    expect(toHex(encodeCbor('é'))).toBe('62c3a9');
  });

  it.each([
    ['unsorted keys', 'a2020101 01'.replace(/ /g, '')],
    ['duplicate keys', 'a201010102'],
    ['non-minimal integer', '1817'],
    ['non-minimal length', '5801ff'],
    ['float', 'fb3ff8000000000000'],
    ['half float', 'f93c00'],
    ['tag', 'c249010000000000000000'],
    ['typed-array tag', 'd84043010203'],
    ['indefinite map', 'bf0001ff'],
    ['indefinite array', '9f01ff'],
    ['indefinite bytes', '5f42010243030405ff'],
    ['invalid UTF-8', '62c328'],
    ['text map key', 'a1616101'],
    ['null', 'f6'],
    ['undefined', 'f7'],
    ['trailing bytes', '0000'],
    ['truncated', '4301'],
    ['integer beyond 2^53', '1bffffffffffffffff'],
  ])('rejects %s', (_name, hex) => {
    expect(() => decodeCbor(fromHex(hex), 1024)).toThrow(DecodeError);
  });

  it('enforces the size limit before decoding', () => {
    const big = encodeCbor(new Uint8Array(2000));
    expect(() => decodeCbor(big, 1000)).toThrow(/exceeds the limit/);
  });

  it('gives only DecodeError for random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          decodeCbor(bytes, 1024);
        } catch (err) {
          expect(err).toBeInstanceOf(DecodeError);
          expect(ValiseError.is(err, 'VALISE_DECODE')).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('never modifies its input and never aliases it', () => {
    fc.assert(
      fc.property(cborValue, (v) => {
        const bytes = encodeCbor(v);
        const copy = bytes.slice();
        const out = decodeCbor(bytes, 1 << 20);
        expect(bytes).toEqual(copy);
        bytes.fill(0xff);
        expect(encodeCbor(out)).toEqual(copy);
      }),
      { numRuns: 200 },
    );
  });
});

describe('structures', () => {
  const sample = () =>
    encodeStructure(StructType.PersonCert, [
      [2, new Uint8Array(16)],
      [3, 'name'],
    ]);

  it('checks version, type and unknown fields', () => {
    const r = decodeStructure(sample(), StructType.PersonCert, 1024, 'sample');
    expect(r.bytes(2, 'id', { len: 16 })).toHaveLength(16);
    expect(r.text(3, 'name')).toBe('name');
    r.done();
    expect(() => decodeStructure(sample(), StructType.DeviceCert, 1024, 'sample')).toThrow(/wrong structure type/);
    const v2 = encodeCbor(
      new Map<number, CborValue>([
        [0, 2],
        [1, StructType.PersonCert],
      ]),
    );
    expect(() => decodeStructure(v2, StructType.PersonCert, 1024, 'sample')).toThrow(/unsupported version 2/);
    const r2 = decodeStructure(sample(), StructType.PersonCert, 1024, 'sample');
    r2.bytes(2, 'id');
    expect(() => r2.done()).toThrow(/unknown field \(key 3\)/);
  });

  it('names the field and the expected length in errors', () => {
    const r = decodeStructure(sample(), StructType.PersonCert, 1024, 'sample');
    expect(() => r.bytes(2, 'id', { len: 32 })).toThrow('sample.id: expected 32 bytes, got 16');
    expect(() => r.uint(3, 'count')).toThrow('sample.count: expected an unsigned integer');
    expect(() => r.text(9, 'missing')).toThrow('sample: missing field missing (key 9)');
    expect(() => MapReader.from([], 'list')).toThrow('list: expected a map');
  });
});
