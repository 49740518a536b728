/** Every envelope wire decoder: round trips, canonical bytes, and only DecodeError on bad bytes. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toHex } from '../src/bytes.js';
import {
  DistributionKind,
  decodeEntryPlaintext,
  decodeHeader,
  decodePrelude,
  type EnvelopeHeader,
  type EnvelopePrelude,
  encodeEntryPlaintext,
  encodeHeader,
  encodePrelude,
  padEntryPlaintext,
  readPreludeFrame,
} from '../src/envelope-wire.js';
import { DecodeError } from '../src/errors.js';

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });

const prelude: fc.Arbitrary<EnvelopePrelude> = fc.record({
  envelopeId: bytes(16),
  kem: fc.constantFrom(0x647a, 0x0020),
  hintKey: bytes(32),
  entries: fc.array(
    fc.record({
      hint: bytes(16),
      enc: fc.uint8Array({ minLength: 1, maxLength: 64 }),
      ct: fc.uint8Array({ minLength: 17, maxLength: 80 }),
    }),
    {
      minLength: 1,
      maxLength: 4,
    },
  ),
});

const text = (max: number) => fc.string({ maxLength: max, unit: 'grapheme' });
const header: fc.Arbitrary<EnvelopeHeader> = fc
  .record({
    envelopeId: bytes(16),
    createdAt: fc.nat(),
    subject: text(40),
    classification: text(20),
    contentType: text(30),
    distribution: fc.array(
      fc.record({
        kind: fc.constantFrom(DistributionKind.Person, DistributionKind.Office, DistributionKind.Device),
        id: bytes(16),
        name: text(20),
      }),
      {
        maxLength: 3,
      },
    ),
    sender: fc.record({ person: fc.uint8Array({ minLength: 1, maxLength: 40 }), device: fc.uint8Array({ minLength: 1, maxLength: 40 }) }),
    recipients: fc.array(bytes(16), { minLength: 1, maxLength: 3 }),
  })
  .chain((h) =>
    fc
      .option(fc.array(bytes(32), { minLength: h.recipients.length, maxLength: h.recipients.length }), { nil: undefined })
      .map((d) => (d ? { ...h, personalDigests: d } : h)),
  );

/** Every single-byte mutation of a valid encoding decodes to the same bytes or fails with DecodeError. */
function mutationsAreSafe(encoded: Uint8Array, decodeAndEncode: (b: Uint8Array) => Uint8Array) {
  for (let i = 0; i < encoded.length; i++) {
    for (const delta of [1, 0x80, 0xff]) {
      const t = encoded.slice();
      t[i] = ((t[i] as number) + delta) & 0xff;
      try {
        expect(toHex(decodeAndEncode(t))).toBe(toHex(t));
      } catch (err) {
        expect(err).toBeInstanceOf(DecodeError);
      }
    }
  }
}

describe('envelope wire structures', () => {
  it('prelude: round trip, canonical, mutations give DecodeError or a canonical re-encoding', () => {
    fc.assert(
      fc.property(prelude, (p) => {
        const b = encodePrelude(p);
        expect(decodePrelude(b)).toEqual(p);
        mutationsAreSafe(b, (t) => encodePrelude(decodePrelude(t)));
      }),
      { numRuns: 40 },
    );
  });

  it('header: round trip and mutations', () => {
    fc.assert(
      fc.property(header, (h) => {
        const b = encodeHeader(h);
        expect(decodeHeader(b, 1 << 20)).toEqual(h);
        mutationsAreSafe(b, (t) => encodeHeader(decodeHeader(t, 1 << 20)));
      }),
      { numRuns: 30 },
    );
  });

  it('entry plaintext: round trip through padding, non-zero padding rejected', () => {
    fc.assert(
      fc.property(
        bytes(32),
        bytes(32),
        fc.nat(4095),
        fc.option(fc.tuple(fc.uint8Array({ maxLength: 50 }), bytes(32)), { nil: undefined }),
        fc.nat(64),
        (contentKey, headerDigest, recipientIndex, pers, extra) => {
          const e = pers
            ? { contentKey, headerDigest, recipientIndex, personal: { payload: pers[0], salt: pers[1] } }
            : { contentKey, headerDigest, recipientIndex };
          const cbor = encodeEntryPlaintext(e);
          const padded = padEntryPlaintext(cbor, 4 + cbor.length + extra);
          expect(decodeEntryPlaintext(padded)).toEqual(e);
          if (extra > 0) {
            const t = padded.slice();
            t[t.length - 1] = 1;
            expect(() => decodeEntryPlaintext(t)).toThrow(/non-zero padding/);
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it('random bytes into every decoder give only DecodeError', () => {
    const decoders = [decodePrelude, (b: Uint8Array) => decodeHeader(b, 1 << 20), decodeEntryPlaintext, readPreludeFrame];
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        for (const d of decoders) {
          try {
            d(b);
          } catch (err) {
            expect(err).toBeInstanceOf(DecodeError);
          }
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('enforces the prelude size limit before decoding', () => {
    const huge = new Uint8Array(8);
    new DataView(huge.buffer).setUint32(0, 0xffffffff);
    expect(() => readPreludeFrame(huge)).toThrow(/exceeds the limit/);
  });
});
