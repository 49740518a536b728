/** Byte-level mutations of valid encodings, for decoders' differential and tamper tests. */
import fc from 'fast-check';

const OPS = ['set', 'insert', 'delete', 'truncate', 'append', 'bits'] as const;
type Op = (typeof OPS)[number] | 'length';

/**
 * `valid` with one to three bytes overwritten, flipped, inserted or deleted, or cut or extended;
 * with `moveLength`, also the low byte of a leading u32be length nudged by up to ±3.
 */
export function mutated(valid: fc.Arbitrary<Uint8Array>, options: { moveLength?: boolean } = {}): fc.Arbitrary<Uint8Array> {
  const ops: readonly Op[] = options.moveLength ? [...OPS, 'length'] : OPS;
  return fc
    .tuple(valid, fc.array(fc.tuple(fc.constantFrom(...ops), fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }))
    .map(([good, edits]) => {
      let b = Array.from(good);
      for (const [op, at, byte] of edits) {
        const i = b.length === 0 ? 0 : at % b.length;
        if (op === 'set' && b.length > 0) b[i] = byte;
        else if (op === 'bits' && b.length > 0) b[i] = (b[i] as number) ^ (1 << (byte % 8));
        else if (op === 'insert') b.splice(i, 0, byte);
        else if (op === 'delete') b.splice(i, 1);
        else if (op === 'truncate') b = b.slice(0, i);
        else if (op === 'append') b.push(byte);
        else if (op === 'length' && b.length >= 4) b[3] = ((b[3] as number) + (byte % 7) - 3) & 0xff;
      }
      return new Uint8Array(b);
    });
}
