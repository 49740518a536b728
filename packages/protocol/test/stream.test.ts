import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concat } from '../src/bytes.js';
import { DecodeError, OpenError } from '../src/errors.js';
import { RecordReader, RecordType, RecordWriter, recordNonce } from '../src/stream.js';

const key = new Uint8Array(32).fill(7);

function writeStream(k: Uint8Array, parts: Uint8Array[]): Uint8Array[] {
  const w = new RecordWriter(k);
  return parts.map((p, i) => w.write(i === parts.length - 1 ? RecordType.Trailer : RecordType.Body, p, i === parts.length - 1));
}

function readAll(k: Uint8Array, bytes: Uint8Array, pieces = 1): { type: number; data: Uint8Array }[] {
  const r = new RecordReader(k);
  const out: { type: number; data: Uint8Array }[] = [];
  const step = Math.max(1, Math.ceil(bytes.length / pieces));
  for (let o = 0; o < bytes.length; o += step) out.push(...r.push(bytes.subarray(o, o + step)));
  r.end();
  return out;
}

/** The uniform OpenError keeps its reason off the message; tests read it from `detail`. */
function detailOf(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(OpenError);
    return (err as OpenError).detail;
  }
  throw new Error('expected an OpenError');
}

describe('record stream (STREAM construction)', () => {
  it('uses an 11-byte big-endian counter and a last flag as nonce', () => {
    expect(Array.from(recordNonce(0, false))).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(recordNonce(258, true))).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 1]);
  });

  it('round-trips records fed in any split', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 50 }),
        (parts, pieces) => {
          const bytes = concat(...writeStream(key, parts));
          const got = readAll(key, bytes, pieces);
          expect(got.map((r) => r.data)).toEqual(parts);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('detects reordering, duplication, dropping, truncation, trailing bytes and swapping between streams', () => {
    const parts = [new Uint8Array([1]), new Uint8Array([2]), new Uint8Array([3])];
    const [a, b, c] = writeStream(key, parts) as [Uint8Array, Uint8Array, Uint8Array];
    const other = writeStream(new Uint8Array(32).fill(8), parts);
    expect(() => readAll(key, concat(b, a, c))).toThrow(OpenError);
    expect(() => readAll(key, concat(a, a, b, c))).toThrow(OpenError);
    expect(() => readAll(key, concat(a, c))).toThrow(OpenError);
    expect(detailOf(() => readAll(key, concat(a, b)))).toMatch(/no final record/);
    expect(detailOf(() => readAll(key, concat(a, b, c).subarray(0, -1)))).toMatch(/truncated record/);
    expect(detailOf(() => readAll(key, concat(a, b, c, new Uint8Array(4))))).toMatch(/after the final record/);
    expect(() => readAll(key, concat(a, other[1] as Uint8Array, c))).toThrow(OpenError);
  });

  it('rejects absurd record lengths before buffering them', () => {
    const r = new RecordReader(key);
    expect(() => r.push(new Uint8Array([0xff, 0xff, 0xff, 0xff]))).toThrow(DecodeError);
  });

  it('any flipped bit gives a typed error', () => {
    const bytes = concat(...writeStream(key, [new Uint8Array(40), new Uint8Array(10)]));
    for (let bit = 0; bit < bytes.length * 8; bit++) {
      const t = bytes.slice();
      t[bit >> 3]! ^= 1 << (bit & 7);
      expect(() => readAll(key, t)).toThrow(/./);
      try {
        readAll(key, t);
      } catch (err) {
        expect(err instanceof OpenError || err instanceof DecodeError).toBe(true);
      }
    }
  });
});
