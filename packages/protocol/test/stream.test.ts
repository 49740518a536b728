import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concat } from '../src/bytes.js';
import { OpenError } from '../src/errors.js';
import { CHUNK_CIPHERTEXT_SIZE, CHUNK_SIZE, ChunkReader, ChunkWriter, chunkNonce, streamLength } from '../src/stream.js';

const key = new Uint8Array(32).fill(7);

function sealStream(k: Uint8Array, pieces: Uint8Array[]): Uint8Array {
  const w = new ChunkWriter(k);
  const out = pieces.flatMap((p) => w.write(p));
  out.push(w.finish());
  return concat(...out);
}

function openStream(k: Uint8Array, bytes: Uint8Array, pieces = 1): Uint8Array {
  const r = new ChunkReader(k);
  const out: Uint8Array[] = [];
  const step = Math.max(1, Math.ceil(bytes.length / pieces));
  for (let o = 0; o < bytes.length; o += step) out.push(...r.push(bytes.subarray(o, o + step)));
  out.push(r.end());
  return concat(...out);
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

describe('chunked stream (STREAM construction)', () => {
  it('uses an 11-byte big-endian counter and a last flag as nonce', () => {
    expect(Array.from(chunkNonce(0, false))).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(chunkNonce(258, true))).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 1]);
  });

  it('round-trips any plaintext written and read in any pieces', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 40_000 }), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 30 }),
        (pieces, readPieces) => {
          const pt = concat(...pieces);
          fc.pre(pt.length > 0);
          const ct = sealStream(key, pieces);
          expect(ct.length).toBe(streamLength(pt.length));
          expect(openStream(key, ct, readPieces)).toEqual(pt);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('handles plaintexts of exactly one and two chunks (the final chunk is full)', () => {
    for (const n of [CHUNK_SIZE, 2 * CHUNK_SIZE, 1, CHUNK_SIZE + 1]) {
      const pt = new Uint8Array(n).fill(3);
      const ct = sealStream(key, [pt]);
      expect(ct.length).toBe(streamLength(n));
      expect(openStream(key, ct, 7)).toEqual(pt);
    }
  });

  it('detects reordering, duplication, dropping, truncation, extension and swapping between streams', () => {
    const pt = new Uint8Array(3 * CHUNK_SIZE - 10).fill(9);
    const ct = sealStream(key, [pt]);
    const chunk = (i: number) => ct.subarray(i * CHUNK_CIPHERTEXT_SIZE, (i + 1) * CHUNK_CIPHERTEXT_SIZE);
    const other = sealStream(new Uint8Array(32).fill(8), [pt]);
    expect(() => openStream(key, concat(chunk(1), chunk(0), chunk(2)))).toThrow(OpenError);
    expect(() => openStream(key, concat(chunk(0), chunk(0), chunk(1), chunk(2)))).toThrow(OpenError);
    expect(() => openStream(key, concat(chunk(0), chunk(2)))).toThrow(OpenError);
    // Dropping the final chunk: the last full chunk was sealed as non-final.
    expect(detailOf(() => openStream(key, concat(chunk(0), chunk(1))))).toMatch(/final/);
    expect(() => openStream(key, ct.subarray(0, -1))).toThrow(OpenError);
    expect(() => openStream(key, concat(ct, new Uint8Array(1)))).toThrow(OpenError);
    expect(() => openStream(key, concat(chunk(0), other.subarray(CHUNK_CIPHERTEXT_SIZE, 2 * CHUNK_CIPHERTEXT_SIZE), chunk(2)))).toThrow(
      OpenError,
    );
    expect(detailOf(() => openStream(key, new Uint8Array(10)))).toMatch(/truncated/);
  });

  it('any flipped bit gives an OpenError', () => {
    const ct = sealStream(key, [new Uint8Array(50)]);
    for (let bit = 0; bit < ct.length * 8; bit++) {
      const t = ct.slice();
      t[bit >> 3]! ^= 1 << (bit & 7);
      expect(() => openStream(key, t)).toThrow(OpenError);
    }
  });
});
