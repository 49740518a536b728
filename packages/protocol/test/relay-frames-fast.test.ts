/**
 * Differential test of the fast path of decodeClientFrame (Send and Ack read straight from their
 * bytes) against the generic path (strict CBOR decoder, then MapReader). On valid frames,
 * mutations of them and random bytes, decodeClientFrame must give exactly what the generic path
 * gives (the same frame, or a DecodeError with the same message), the fast path alone must never
 * accept what the generic path rejects, and it must be the one that decodes valid Sends and Acks.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toHex } from '../src/bytes.js';
import { encodeCbor } from '../src/cbor.js';
import { DecodeError } from '../src/errors.js';
import {
  type AckFrame,
  type ClientFrame,
  DEFAULT_MAX_FRAME_SIZE,
  decodeClientFrame,
  decodeClientFrameFastForTesting,
  decodeClientFrameGenericForTesting,
  encodeRelayFrame,
  RelayFrameType,
  type SendFrame,
} from '../src/relay-frames.js';
import { mutated } from './helpers/mutate.js';

type Outcome = { ok: true; value: ClientFrame } | { ok: false; message: string };

function outcome(decode: () => ClientFrame): Outcome {
  try {
    return { ok: true, value: decode() };
  } catch (err) {
    expect(err).toBeInstanceOf(DecodeError);
    return { ok: false, message: (err as Error).message };
  }
}

/**
 * A frame as plain data for comparison: byte strings as their class and hex (so that a Buffer or
 * a view differs from a plain array of the same bytes), objects with their keys in order.
 * Cheaper than toStrictEqual on large byte strings, and it sees the same differences.
 */
function normal(v: unknown): unknown {
  if (v instanceof Uint8Array) {
    const own = v.byteOffset === 0 && v.byteLength === v.buffer.byteLength;
    return `${Object.getPrototypeOf(v).constructor.name}${own ? '' : ' (view)'}:${toHex(v)}`;
  }
  if (Array.isArray(v)) return v.map(normal);
  if (typeof v === 'object' && v !== null) return Object.entries(v).map(([k, x]) => [k, normal(x)]);
  return v;
}

function normalOutcome(o: Outcome): unknown {
  return o.ok ? { ok: true, value: normal(o.value) } : o;
}

/** Every byte string in a decoded frame is a plain Uint8Array of its own, not a view of the input. */
function expectOwnPlainBytes(frame: ClientFrame, input: Uint8Array): void {
  const all: Uint8Array[] = [];
  if (frame.type === RelayFrameType.Send) all.push(frame.clientMessageId, frame.envelope, ...frame.routes.map((r) => r.mailbox));
  if (frame.type === RelayFrameType.Ack) all.push(...frame.messageIds);
  for (const b of all) {
    if (Object.getPrototypeOf(b) !== Uint8Array.prototype || b.buffer === input.buffer || b.byteLength !== b.buffer.byteLength) {
      expect.fail('a decoded byte string is not a plain array of its own');
    }
  }
}

/** The whole decoder and the generic path agree; the fast path alone accepts only what both accept. */
function agree(bytes: Uint8Array, maxSize = DEFAULT_MAX_FRAME_SIZE): Outcome {
  const want = outcome(() => decodeClientFrameGenericForTesting(bytes, maxSize));
  const got = outcome(() => decodeClientFrame(bytes, maxSize));
  const input = () => `input ${toHex(bytes.subarray(0, 64))}`;
  if (got.ok !== want.ok) expect.fail(`${input()}: decodeClientFrame ${got.ok ? 'accepts' : 'rejects'}, generic does not`);
  expect(normalOutcome(got)).toEqual(normalOutcome(want));
  const fast = decodeClientFrameFastForTesting(bytes, maxSize);
  if (fast !== undefined) {
    if (!want.ok) expect.fail(`${input()}: the fast path accepts what the generic path rejects`);
    expect(normal(fast)).toEqual(normal(want.value));
    expectOwnPlainBytes(fast, bytes);
  }
  return want;
}

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
/** Integers around every head-length boundary, up to the u32 limit of request ids. */
const u32 = fc.oneof(
  fc.nat({ max: 30 }),
  fc.constantFrom(23, 24, 255, 256, 65535, 65536, 0xffffffff),
  fc.nat({ max: 70_000 }),
  fc.nat({ max: 0xffffffff }),
);
const entryIndex = fc.oneof(fc.nat({ max: 30 }), fc.constantFrom(23, 24, 255, 256, 4095), fc.nat({ max: 4095 }));

/** Sends with small envelopes, so that mutations mostly land on the structure. */
const send: fc.Arbitrary<SendFrame> = fc.record({
  type: fc.constant(RelayFrameType.Send),
  requestId: u32,
  clientMessageId: bytes(16),
  envelope: fc.uint8Array({ minLength: 5, maxLength: 40 }),
  routes: fc.array(fc.record({ entryIndex, mailbox: bytes(16) }), { minLength: 1, maxLength: 4 }),
});
const ack: fc.Arbitrary<AckFrame> = fc.record({
  type: fc.constant(RelayFrameType.Ack),
  requestId: u32,
  messageIds: fc.array(bytes(16), { minLength: 1, maxLength: 5 }),
});
const frame = fc.oneof(send, ack).map((f) => encodeRelayFrame(f));

/** A valid frame with a few bytes overwritten, flipped, inserted or deleted, or cut or extended. */
const mutatedFrame = mutated(frame);

const raw = (entries: [number, unknown][]) => encodeCbor(new Map(entries as [number, never][]));
const id = (fill: number) => new Uint8Array(16).fill(fill);
const route = (i: unknown, mailbox: unknown = id(9)) =>
  new Map<number, unknown>([
    [0, i],
    [1, mailbox],
  ]);
const sendFields = (over: Record<number, unknown> = {}): [number, unknown][] =>
  Object.entries({ 0: 1, 1: RelayFrameType.Send, 2: 7, 3: id(1), 4: new Uint8Array(9), 5: [route(0)], ...over })
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => [Number(k), v]);

describe('decodeClientFrame fast path against the generic path', () => {
  it('decodes valid Sends and Acks on the fast path, to the generic result', () => {
    fc.assert(
      fc.property(fc.oneof(send, ack), (f) => {
        const b = encodeRelayFrame(f);
        expect(normalOutcome(agree(b))).toEqual({ ok: true, value: normal(f) });
        expect(decodeClientFrameFastForTesting(b, DEFAULT_MAX_FRAME_SIZE)).toBeDefined();
        // A Buffer, as the relay's WebSocket hands it over: same frame, plain copies.
        const buffer = Buffer.from(b);
        expect(normalOutcome(agree(buffer))).toEqual({ ok: true, value: normal(f) });
        expect(decodeClientFrameFastForTesting(buffer, DEFAULT_MAX_FRAME_SIZE)).toBeDefined();
      }),
      { numRuns: 1000 },
    );
  }, 60_000);

  it('with shareEnvelope, gives the same Send with its envelope a view into the input', () => {
    fc.assert(
      fc.property(send, (f) => {
        const b = Buffer.from(encodeRelayFrame(f));
        const shared = decodeClientFrame(b, DEFAULT_MAX_FRAME_SIZE, { shareEnvelope: true }) as SendFrame;
        expect(normal({ ...shared, envelope: null })).toEqual(normal({ ...f, envelope: null }));
        expect(toHex(shared.envelope)).toBe(toHex(f.envelope));
        expect(shared.envelope.buffer).toBe(b.buffer);
        // Without the option the envelope is a copy.
        expect((decodeClientFrame(b) as SendFrame).envelope.buffer).not.toBe(b.buffer);
      }),
      { numRuns: 200 },
    );
  });

  it('takes the fast path at every head length (1, 2, 3 and 5 bytes) of every field', () => {
    const sizes = [5, 23, 24, 255, 256, 65535, 65536, 70_000];
    for (const n of sizes) {
      const f: SendFrame = {
        type: RelayFrameType.Send,
        requestId: 0xffffffff,
        clientMessageId: id(2),
        envelope: new Uint8Array(n).fill(n & 0xff),
        routes: [{ entryIndex: 4095, mailbox: id(3) }],
      };
      const b = encodeRelayFrame(f);
      expect(decodeClientFrameFastForTesting(b, b.length)).toBeDefined();
      expect(normalOutcome(agree(b, b.length))).toEqual({ ok: true, value: normal(f) });
      // The envelope limit is the frame limit: one byte less and both paths refuse the frame.
      expect(agree(b, b.length - 1).ok).toBe(false);
    }
    for (const n of [1, 23, 24, 255, 256, 4096]) {
      const routes = Array.from({ length: n }, (_, i) => ({ entryIndex: i, mailbox: id(i & 0xff) }));
      const s: SendFrame = { type: RelayFrameType.Send, requestId: n, clientMessageId: id(1), envelope: new Uint8Array(5), routes };
      const a: AckFrame = { type: RelayFrameType.Ack, requestId: n, messageIds: routes.map((r) => r.mailbox) };
      for (const f of [s, a]) {
        const b = encodeRelayFrame(f);
        expect(decodeClientFrameFastForTesting(b, DEFAULT_MAX_FRAME_SIZE)).toBeDefined();
        expect(normalOutcome(agree(b))).toEqual({ ok: true, value: normal(f) });
      }
    }
  });

  it('agrees on mutations of valid frames', () => {
    fc.assert(
      fc.property(mutatedFrame, (b) => void agree(b)),
      { numRuns: 20000 },
    );
  }, 60_000);

  it('agrees on random bytes, and on random bytes behind a Send or Ack header', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), (b) => void agree(b)),
      { numRuns: 5000 },
    );
    const header = fc.constantFrom([0xa6, 0x00, 0x01, 0x01, 0x18, 0x28, 0x02], [0xa4, 0x00, 0x01, 0x01, 0x18, 0x29, 0x02]);
    const biased = fc.array(fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0x03, 0x04, 0x05, 0x50, 0xa2, 0x81, 0x18)), {
      maxLength: 60,
    });
    fc.assert(
      fc.property(header, biased, (h, tail) => void agree(new Uint8Array([...h, ...tail]))),
      { numRuns: 5000 },
    );
  }, 60_000);

  it('agrees at the size limit', () => {
    fc.assert(
      fc.property(frame, fc.integer({ min: -3, max: 3 }), (b, d) => void agree(b, b.length + d)),
      { numRuns: 500 },
    );
    const b = encodeRelayFrame({ type: RelayFrameType.Ack, requestId: 1, messageIds: [id(1)] });
    for (const limit of [Number.NaN, 0, -1, Number.POSITIVE_INFINITY]) agree(b, limit);
  });

  it('leaves every near miss to the generic path, which rejects it with its own message', () => {
    const cases: [string, Uint8Array][] = [
      ['version 2', raw(sendFields({ 0: 2 }))],
      ['long-form requestId', Uint8Array.from([0xa3, 0x00, 0x01, 0x01, 0x18, 0x29, 0x02, 0x18, 0x05])],
      ['requestId 2^32', raw(sendFields({ 2: 2 ** 32 }))],
      ['negative requestId', raw(sendFields({ 2: -1 }))],
      ['text requestId', raw(sendFields({ 2: 'x' }))],
      ['clientMessageId of 15 bytes', raw(sendFields({ 3: new Uint8Array(15) }))],
      ['clientMessageId of 17 bytes', raw(sendFields({ 3: new Uint8Array(17) }))],
      ['envelope of 4 bytes', raw(sendFields({ 4: new Uint8Array(4) }))],
      ['envelope as text', raw(sendFields({ 4: 'hello' }))],
      ['no routes', raw(sendFields({ 5: [] }))],
      ['routes not an array', raw(sendFields({ 5: route(0) }))],
      ['4097 routes', raw(sendFields({ 5: Array.from({ length: 4097 }, (_, i) => route(i % 4096)) }))],
      ['entry index 4096', raw(sendFields({ 5: [route(4096)] }))],
      ['mailbox of 15 bytes', raw(sendFields({ 5: [route(0, new Uint8Array(15))] }))],
      ['route with a third key', raw(sendFields({ 5: [new Map<number, unknown>([...route(0), [2, 0]])] }))],
      ['route without its mailbox', raw(sendFields({ 5: [new Map([[0, 0]])] }))],
      ['route as an array', raw(sendFields({ 5: [[0, id(1)]] }))],
      ['unknown key 6', raw(sendFields({ 6: 0 }))],
      ['missing envelope', raw(sendFields({ 4: undefined }))],
      [
        'Ack without ids',
        raw([
          [0, 1],
          [1, RelayFrameType.Ack],
          [2, 1],
          [3, []],
        ] as [number, unknown][]),
      ],
      [
        'Ack with a 15-byte id',
        raw([
          [0, 1],
          [1, RelayFrameType.Ack],
          [2, 1],
          [3, [id(1), new Uint8Array(15)]],
        ] as [number, unknown][]),
      ],
      [
        'Ack with a text id',
        raw([
          [0, 1],
          [1, RelayFrameType.Ack],
          [2, 1],
          [3, ['x'.repeat(16)]],
        ] as [number, unknown][]),
      ],
      [
        'Ack with 4097 ids',
        raw([
          [0, 1],
          [1, RelayFrameType.Ack],
          [2, 1],
          [3, Array.from({ length: 4097 }, () => id(1))],
        ] as [number, unknown][]),
      ],
      [
        'Ack with a fifth field',
        raw([
          [0, 1],
          [1, RelayFrameType.Ack],
          [2, 1],
          [3, [id(1)]],
          [4, 0],
        ] as [number, unknown][]),
      ],
    ];
    const good = encodeRelayFrame({
      type: RelayFrameType.Send,
      requestId: 7,
      clientMessageId: id(1),
      envelope: new Uint8Array(9),
      routes: [{ entryIndex: 0, mailbox: id(9) }],
    });
    // The envelope's head (9 bytes) is at 27, the routes' array head at 38.
    expect([good[27], good[38]]).toEqual([0x49, 0x81]);
    cases.push(
      ['trailing byte', Uint8Array.from([...good, 0x00])],
      ['cut by one byte', good.subarray(0, good.length - 1)],
      ['routes in an indefinite array', Uint8Array.from([...good.subarray(0, 38), 0x9f, ...good.subarray(39), 0xff])],
      ['long-form envelope length', Uint8Array.from([...good.subarray(0, 27), 0x58, 9, ...good.subarray(28)])],
      ['8-byte envelope length', Uint8Array.from([...good.subarray(0, 27), 0x5b, 0, 0, 0, 0, 0, 0, 0, 9, ...good.subarray(28)])],
    );
    for (const [what, b] of cases) {
      expect(decodeClientFrameFastForTesting(b, DEFAULT_MAX_FRAME_SIZE), what).toBeUndefined();
      const want = agree(b);
      expect(want.ok, what).toBe(false);
    }
  });
});
