/** Relay frames (spec/relay.md): round trips, canonical bytes, strict decoding, base64url, the auth message. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concat, toHex, u16be, utf8 } from '../src/bytes.js';
import { encodeCbor } from '../src/cbor.js';
import { DecodeError } from '../src/errors.js';
import { getProvider } from '../src/provider.js';
import {
  type AnyRelayFrame,
  type ClientFrame,
  decodeClientFrame,
  decodeRelayFrame,
  encodeDeliverFrame,
  encodeRelayFrame,
  encodeRelayFrameGenericForTesting,
  fromBase64Url,
  MAX_ERROR_MESSAGE_LENGTH,
  peekRequestId,
  RELAY_FRAME_NAMES,
  type RelayFrame,
  RelayFrameType,
  relayAuthMessage,
  relayMessageId,
  toBase64Url,
} from '../src/relay-frames.js';

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
const some = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });
const requestId = fc.nat({ max: 0xffffffff });
const prekey = fc.record({ id: fc.nat({ max: 0xffffffff }), bytes: some(1, 64) });
const opt = <T>(key: string, arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined }).map((v) => (v === undefined ? {} : { [key]: v }));

const clientFrame: fc.Arbitrary<ClientFrame> = fc.oneof(
  fc.record({
    type: fc.constant(RelayFrameType.Send),
    requestId,
    clientMessageId: bytes(16),
    envelope: some(5, 200),
    routes: fc.array(fc.record({ entryIndex: fc.nat({ max: 4095 }), mailbox: bytes(16) }), { minLength: 1, maxLength: 5 }),
  }),
  fc.record({ type: fc.constant(RelayFrameType.Ack), requestId, messageIds: fc.array(bytes(16), { minLength: 1, maxLength: 5 }) }),
  fc
    .tuple(requestId, fc.array(prekey, { minLength: 1, maxLength: 4 }), opt('signedPrekey', prekey))
    .map(([id, prekeys, signed]) => ({ type: RelayFrameType.PrekeyUpload, requestId: id, prekeys, ...signed })),
  fc.record({ type: fc.constant(RelayFrameType.PrekeyFetch), requestId, mailbox: bytes(16) }),
  fc.record({ type: fc.constant(RelayFrameType.PrekeyCount), requestId }),
  fc.record({ type: fc.constant(RelayFrameType.DirectoryPublish), requestId, personCert: some(1, 100), deviceCert: some(1, 100) }),
  fc.record({
    type: fc.constant(RelayFrameType.DirectoryLookup),
    requestId,
    query: fc.oneof(
      fc.record({ personId: bytes(16) }),
      fc.record({ deviceCertId: bytes(16) }),
      fc.record({ text: fc.string({ minLength: 1, maxLength: 40, unit: 'grapheme' }) }),
    ),
  }),
  fc.record({ type: fc.constant(RelayFrameType.RevocationPublish), requestId, list: some(1, 100) }),
  fc.record({ type: fc.constant(RelayFrameType.RevocationGet), requestId }),
) as fc.Arbitrary<ClientFrame>;

const relayFrame: fc.Arbitrary<RelayFrame> = fc.oneof(
  fc.record({ type: fc.constant(RelayFrameType.Stored), requestId, clientMessageId: bytes(16), messageId: bytes(16) }),
  fc.record({ type: fc.constant(RelayFrameType.Deliver), messageId: bytes(16), envelope: some(5, 200), storedAt: fc.nat() }),
  fc.record({ type: fc.constant(RelayFrameType.Ok), requestId }),
  fc.constant({ type: RelayFrameType.BacklogEnd }),
  fc
    .tuple(requestId, bytes(16), opt('oneTime', prekey), opt('signed', prekey))
    .map(([id, mailbox, a, b]) => ({ type: RelayFrameType.Prekeys, requestId: id, mailbox, ...a, ...b })),
  fc.record({
    type: fc.constant(RelayFrameType.PrekeyCountResult),
    requestId,
    count: fc.nat({ max: 0xffffffff }),
    hasSigned: fc.boolean(),
  }),
  fc.record({ type: fc.constant(RelayFrameType.PrekeysLow), remaining: fc.nat({ max: 0xffffffff }) }),
  fc.record({
    type: fc.constant(RelayFrameType.DirectoryResult),
    requestId,
    entries: fc.array(fc.record({ personCert: some(1, 50), deviceCert: some(1, 50) }), { maxLength: 3 }),
  }),
  fc.tuple(requestId, opt('list', some(1, 50))).map(([id, l]) => ({ type: RelayFrameType.RevocationList, requestId: id, ...l })),
  fc
    .tuple(fc.string({ minLength: 1, maxLength: 20 }), fc.string({ maxLength: 60, unit: 'grapheme' }), opt('requestId', requestId))
    .map(([code, message, id]) => ({ type: RelayFrameType.Error, code, message, ...id })),
) as fc.Arbitrary<RelayFrame>;

const hexOf = (f: AnyRelayFrame) => toHex(encodeRelayFrame(f));

function expectDecodeErrorOnly(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DecodeError);
  }
}

describe('relay frames', () => {
  it('round trips every client frame, and re-encodes to the same bytes', () => {
    fc.assert(
      fc.property(clientFrame, (f) => {
        const bytes = encodeRelayFrame(f);
        const back = decodeClientFrame(bytes);
        expect(back).toEqual(f);
        expect(toHex(encodeRelayFrame(back))).toBe(toHex(bytes));
      }),
      { numRuns: 300 },
    );
  });

  it('round trips every relay frame, and re-encodes to the same bytes', () => {
    fc.assert(
      fc.property(relayFrame, (f) => {
        const bytes = encodeRelayFrame(f);
        const back = decodeRelayFrame(bytes);
        expect(back).toEqual(f);
        expect(hexOf(back)).toBe(toHex(bytes));
      }),
      { numRuns: 300 },
    );
  });

  it('writes Deliver, Stored and Ok directly exactly as the generic encoder does', () => {
    const big = fc.oneof(fc.nat({ max: 30 }), fc.nat({ max: 70_000 }), fc.nat({ max: 0xffffffff }), fc.maxSafeNat());
    const fast = fc.oneof(
      fc.record({ type: fc.constant(RelayFrameType.Deliver), messageId: bytes(16), envelope: some(5, 70_000), storedAt: big }),
      fc.record({ type: fc.constant(RelayFrameType.Stored), requestId, clientMessageId: bytes(16), messageId: bytes(16) }),
      fc.record({ type: fc.constant(RelayFrameType.Ok), requestId }),
    ) as fc.Arbitrary<RelayFrame>;
    fc.assert(
      fc.property(fc.oneof(fast, relayFrame), (f) => {
        expect(toHex(encodeRelayFrame(f))).toBe(toHex(encodeRelayFrameGenericForTesting(f)));
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(bytes(16), some(0, 300), some(0, 300), big, (id, a, b, t) => {
        const joined = concat(a, b);
        if (joined.length < 5) return;
        expect(toHex(encodeDeliverFrame(id, [a, b], t))).toBe(
          toHex(encodeRelayFrameGenericForTesting({ type: RelayFrameType.Deliver, messageId: id, envelope: joined, storedAt: t })),
        );
      }),
      { numRuns: 200 },
    );
  });

  it('names every frame type', () => {
    for (const t of Object.values(RelayFrameType)) expect(RELAY_FRAME_NAMES[t]).toMatch(/^[a-z-]+$/);
  });

  it('keeps the two directions apart', () => {
    const send = encodeRelayFrame({ type: RelayFrameType.PrekeyCount, requestId: 1 });
    const ok = encodeRelayFrame({ type: RelayFrameType.Ok, requestId: 1 });
    expect(() => decodeRelayFrame(send)).toThrow(DecodeError);
    expect(() => decodeClientFrame(ok)).toThrow(DecodeError);
  });

  it('gives only DecodeError for random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        expectDecodeErrorOnly(() => decodeClientFrame(b));
        expectDecodeErrorOnly(() => decodeRelayFrame(b));
        peekRequestId(b);
      }),
      { numRuns: 2000 },
    );
  });

  it('gives only DecodeError, or the same canonical frame, for mutated frames', () => {
    fc.assert(
      fc.property(clientFrame, fc.nat(), fc.integer({ min: 1, max: 255 }), fc.nat({ max: 3 }), (f, pos, xor, cut) => {
        const good = encodeRelayFrame(f);
        const bad = good.slice(0, good.length - cut);
        const i = pos % bad.length;
        bad[i] = (bad[i] as number) ^ xor;
        try {
          const back = decodeClientFrame(bad);
          expect(toHex(encodeRelayFrame(back))).toBe(toHex(bad));
        } catch (err) {
          expect(err).toBeInstanceOf(DecodeError);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('checks the size limit before parsing', () => {
    const f = encodeRelayFrame({ type: RelayFrameType.PrekeyCount, requestId: 7 });
    expect(() => decodeClientFrame(f, f.length - 1)).toThrow(/exceeds the limit/);
    // Garbage above the limit fails on size, not on its (broken) content.
    expect(() => decodeClientFrame(new Uint8Array(100).fill(0xff), 99)).toThrow(/exceeds the limit/);
    const send = encodeRelayFrame({
      type: RelayFrameType.Send,
      requestId: 1,
      clientMessageId: new Uint8Array(16),
      envelope: new Uint8Array(100),
      routes: [{ entryIndex: 0, mailbox: new Uint8Array(16) }],
    });
    expect(decodeClientFrame(send, send.length).type).toBe(RelayFrameType.Send);
  });

  const raw = (entries: [number, unknown][]) => encodeCbor(new Map(entries as [number, never][]));

  it('rejects unknown keys, missing fields, wrong versions and types, and bad lengths', () => {
    const cases: [string, Uint8Array][] = [
      [
        'unknown key',
        raw([
          [0, 1],
          [1, RelayFrameType.PrekeyCount],
          [2, 5],
          [9, 1],
        ]),
      ],
      [
        'missing requestId',
        raw([
          [0, 1],
          [1, RelayFrameType.PrekeyCount],
        ]),
      ],
      [
        'version 2',
        raw([
          [0, 2],
          [1, RelayFrameType.PrekeyCount],
          [2, 5],
        ]),
      ],
      [
        'unknown type',
        raw([
          [0, 1],
          [1, 39],
          [2, 5],
        ]),
      ],
      [
        'requestId above u32',
        raw([
          [0, 1],
          [1, RelayFrameType.PrekeyCount],
          [2, 2 ** 32],
        ]),
      ],
      [
        'negative requestId',
        raw([
          [0, 1],
          [1, RelayFrameType.PrekeyCount],
          [2, -1],
        ]),
      ],
      [
        'mailbox of 15 bytes',
        raw([
          [0, 1],
          [1, RelayFrameType.PrekeyFetch],
          [2, 1],
          [3, new Uint8Array(15)],
        ]),
      ],
      [
        'empty ack',
        raw([
          [0, 1],
          [1, RelayFrameType.Ack],
          [2, 1],
          [3, []],
        ]),
      ],
      [
        'send without routes',
        raw([
          [0, 1],
          [1, RelayFrameType.Send],
          [2, 1],
          [3, new Uint8Array(16)],
          [4, new Uint8Array(9)],
          [5, []],
        ]),
      ],
      [
        'empty upload',
        raw([
          [0, 1],
          [1, RelayFrameType.PrekeyUpload],
          [2, 1],
          [3, []],
        ]),
      ],
      [
        'prekey over 4 KiB',
        raw([
          [0, 1],
          [1, RelayFrameType.PrekeyUpload],
          [2, 1],
          [
            3,
            [
              new Map<number, unknown>([
                [0, 1],
                [1, new Uint8Array(4097)],
              ]),
            ],
          ],
        ]),
      ],
      [
        'query with two fields',
        raw([
          [0, 1],
          [1, RelayFrameType.DirectoryLookup],
          [2, 1],
          [
            3,
            new Map<number, unknown>([
              [0, new Uint8Array(16)],
              [2, 'x'],
            ]),
          ],
        ]),
      ],
      [
        'empty text query',
        raw([
          [0, 1],
          [1, RelayFrameType.DirectoryLookup],
          [2, 1],
          [3, new Map([[2, '']])],
        ]),
      ],
      [
        'route with an unknown key',
        raw([
          [0, 1],
          [1, RelayFrameType.Send],
          [2, 1],
          [3, new Uint8Array(16)],
          [4, new Uint8Array(9)],
          [
            5,
            [
              new Map<number, unknown>([
                [0, 0],
                [1, new Uint8Array(16)],
                [2, 0],
              ]),
            ],
          ],
        ]),
      ],
      [
        'entry index 4096',
        raw([
          [0, 1],
          [1, RelayFrameType.Send],
          [2, 1],
          [3, new Uint8Array(16)],
          [4, new Uint8Array(9)],
          [
            5,
            [
              new Map<number, unknown>([
                [0, 4096],
                [1, new Uint8Array(16)],
              ]),
            ],
          ],
        ]),
      ],
    ];
    for (const [what, b] of cases) expect(() => decodeClientFrame(b), what).toThrow(DecodeError);
    const errorFrame = raw([
      [0, 1],
      [1, RelayFrameType.Error],
      [2, 'x'],
      [3, 'y'.repeat(MAX_ERROR_MESSAGE_LENGTH + 1)],
    ]);
    expect(() => decodeRelayFrame(errorFrame)).toThrow(DecodeError);
  });

  it('cuts an over-long error message when encoding, so that it always decodes', () => {
    const f = decodeRelayFrame(encodeRelayFrame({ type: RelayFrameType.Error, code: 'internal', message: 'z'.repeat(5000) }));
    expect(f.type === RelayFrameType.Error && f.message.length).toBe(MAX_ERROR_MESSAGE_LENGTH);
  });

  it('reads the request id of a frame that does not decode, when it can', () => {
    const b = raw([
      [0, 1],
      [1, RelayFrameType.PrekeyFetch],
      [2, 42],
      [3, new Uint8Array(3)],
    ]);
    expect(() => decodeClientFrame(b)).toThrow(DecodeError);
    expect(peekRequestId(b)).toBe(42);
    expect(peekRequestId(new Uint8Array([0xff]))).toBeUndefined();
  });
});

describe('relay authentication message and base64url', () => {
  it('is labelled("valise/v1/relay/auth", challenge, utf8(host))', () => {
    const challenge = new Uint8Array(32).map((_, i) => i);
    const m = relayAuthMessage(challenge, 'relay.example:8443');
    const label = utf8('valise/v1/relay/auth');
    expect(label.length).toBe(20);
    expect(toHex(m)).toBe(toHex(concat(u16be(20), label, challenge, utf8('relay.example:8443'))));
    expect(() => relayAuthMessage(new Uint8Array(31), 'x')).toThrow();
    expect(() => relayAuthMessage(challenge, '')).toThrow();
  });

  it('derives message ids from the sender and the client message id', () => {
    const sender = new Uint8Array(16).fill(1);
    const client = new Uint8Array(16).fill(2);
    const expected = getProvider()
      .sha256(concat(u16be(26), utf8('valise/v1/relay/message-id'), sender, client))
      .slice(0, 16);
    expect(toHex(relayMessageId(sender, client))).toBe(toHex(expected));
    expect(toHex(relayMessageId(client, sender))).not.toBe(toHex(expected));
    expect(() => relayMessageId(new Uint8Array(15), client)).toThrow();
  });

  it('encodes base64url like Node and decodes strictly', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (b) => {
        const t = toBase64Url(b);
        expect(t).toBe(Buffer.from(b).toString('base64url'));
        expect(toHex(fromBase64Url(t))).toBe(toHex(b));
      }),
      { numRuns: 500 },
    );
    for (const bad of ['A', 'AB=', 'AB==', 'A+B/', 'AB C', 'AF', 'AAB', 'é']) expect(() => fromBase64Url(bad), bad).toThrow(DecodeError);
    expect(() => fromBase64Url('AAAA', 2)).toThrow(DecodeError);
  });
});
