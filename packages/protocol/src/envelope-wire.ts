/**
 * Wire structures of a sealed envelope (spec/envelope.md): the public prelude with its
 * per-recipient entries, the sealed header, and the plaintext of one entry.
 *
 * The prelude is the only part of an envelope a relay can parse. It names no sender and no
 * recipient: entries carry an opaque hint, a KEM encapsulation and a ciphertext. A relay may
 * cut an envelope down to one recipient's entry ({@link sliceEnvelope}) without touching the
 * rest, because each entry is bound to the prelude core, not to the other entries.
 */
import { concat, readU32be, u32be } from './bytes.js';
import { type CborValue, cborMap, decodeStructure, encodeStructure, MapReader, StructType, WIRE_VERSION } from './cbor.js';
import { CborScanner, headLength } from './cbor-scan.js';
import { ArgumentError, DecodeError } from './errors.js';
import { CERT_MAX_SIZE } from './identity.js';
import { Label, labelled } from './labels.js';
import { getProvider } from './provider.js';

export const ENVELOPE_ID_LENGTH = 16;
export const HINT_LENGTH = 16;
export const MAX_RECIPIENTS = 4096;
/** Prelude size limit, enforced before decoding (4096 X-Wing entries with 1 KiB personal payloads fit). */
export const MAX_PRELUDE_SIZE = 16 << 20;
export const MAX_ENC_LENGTH = 2048;
/** Entry ciphertext limit: a padded entry plaintext with the largest personal payload, plus the tag. */
export const MAX_ENTRY_CIPHERTEXT = (1 << 20) + (1 << 18);

export interface EnvelopeEntry {
  hint: Uint8Array;
  enc: Uint8Array;
  ct: Uint8Array;
}

export interface EnvelopePrelude {
  envelopeId: Uint8Array;
  /** HPKE KEM id of every entry (0x647a X-Wing, 0x0020 DHKEM-X25519). */
  kem: number;
  /** Ephemeral X25519 public key from which each recipient derives its hint. */
  hintKey: Uint8Array;
  entries: EnvelopeEntry[];
}

const PRELUDE_FIELDS = { envelopeId: 2, kem: 3, hintKey: 4, entries: 5 } as const;

function preludeFields(p: EnvelopePrelude, entries: EnvelopeEntry[]): [number, CborValue][] {
  return [
    [PRELUDE_FIELDS.envelopeId, p.envelopeId],
    [PRELUDE_FIELDS.kem, p.kem],
    [PRELUDE_FIELDS.hintKey, p.hintKey],
    [
      PRELUDE_FIELDS.entries,
      entries.map((e) =>
        cborMap([
          [0, e.hint],
          [1, e.enc],
          [2, e.ct],
        ]),
      ),
    ],
  ];
}

export function encodePrelude(p: EnvelopePrelude): Uint8Array {
  return encodeStructure(StructType.EnvelopePrelude, preludeFields(p, p.entries));
}

/**
 * The digest every key wrap and the stream key are bound to: SHA-256 over the label and the
 * prelude encoded with an empty entry list. It commits to the envelope id, the KEM and the
 * hint key, but not to the entries, so that entries can be sliced out independently.
 */
export function preludeDigest(p: EnvelopePrelude): Uint8Array {
  const core = encodeStructure(StructType.EnvelopePrelude, preludeFields(p, []));
  return getProvider().sha256(labelled(Label.EnvelopePrelude, core));
}

export function decodePrelude(bytes: Uint8Array): EnvelopePrelude {
  const r = decodeStructure(bytes, StructType.EnvelopePrelude, MAX_PRELUDE_SIZE, 'envelope prelude');
  const envelopeId = r.bytes(PRELUDE_FIELDS.envelopeId, 'envelopeId', { len: ENVELOPE_ID_LENGTH });
  const kem = r.uint(PRELUDE_FIELDS.kem, 'kem', 0xffff);
  const hintKey = r.bytes(PRELUDE_FIELDS.hintKey, 'hintKey', { len: 32 });
  const list = r.array(PRELUDE_FIELDS.entries, 'entries', MAX_RECIPIENTS);
  if (list.length === 0) throw new DecodeError('envelope prelude: no entries');
  const entries = list.map((item, i) => {
    const e = MapReader.from(item, `envelope prelude.entries[${i}]`);
    const entry = {
      hint: e.bytes(0, 'hint', { len: HINT_LENGTH }),
      enc: e.bytes(1, 'enc', { min: 1, max: MAX_ENC_LENGTH }),
      ct: e.bytes(2, 'ct', { min: 17, max: MAX_ENTRY_CIPHERTEXT }),
    };
    e.done();
    return entry;
  });
  r.done();
  return { envelopeId, kem, hintKey, entries };
}

/** Splits `u32be(P) || prelude || records` into its prelude and the offset of the records. */
export function readPreludeFrame(envelope: Uint8Array): { prelude: EnvelopePrelude; preludeBytes: Uint8Array; recordsOffset: number } {
  if (envelope.length < 4) throw new DecodeError('envelope: shorter than its length prefix');
  const n = readU32be(envelope, 0);
  if (n > MAX_PRELUDE_SIZE) throw new DecodeError(`envelope: prelude of ${n} bytes exceeds the limit of ${MAX_PRELUDE_SIZE}`);
  if (envelope.length < 4 + n) throw new DecodeError('envelope: truncated prelude');
  const preludeBytes = envelope.subarray(4, 4 + n);
  return { prelude: decodePrelude(preludeBytes), preludeBytes, recordsOffset: 4 + n };
}

export function framePrelude(preludeBytes: Uint8Array): Uint8Array {
  return concat(u32be(preludeBytes.length), preludeBytes);
}

/**
 * Where the parts of an envelope's prelude lie in the envelope, as {@link scanPreludeFrame}
 * finds them. All offsets are into the envelope (which starts with the 4-byte length prefix).
 */
export interface PreludeFrameLayout {
  /** Offset of the records: 4 + the length of the prelude. */
  recordsOffset: number;
  /** Number of entries, 1 to {@link MAX_RECIPIENTS}. */
  entryCount: number;
  /**
   * End of the prelude's core: `envelope[4, coreEnd)` is the prelude's encoding up to and
   * including the key of the entries (its map head, version, type, envelope id, KEM and hint key),
   * and the head of the entries array starts at `coreEnd`.
   */
  coreEnd: number;
  /**
   * `entryCount + 1` offsets: entry `i` is encoded in `envelope[entryOffsets[i], entryOffsets[i + 1])`.
   * The last offset is `recordsOffset`.
   */
  entryOffsets: Uint32Array;
}

/**
 * Validates an envelope's prelude frame exactly as {@link readPreludeFrame} does (the same
 * envelopes accepted, the same {@link DecodeError} for the others) without building the prelude:
 * returns where its core and its entries lie, from which {@link framedEntryPrelude} splices each
 * recipient's one-entry prelude. This is what a relay needs per Send, at a fraction of the cost
 * of decoding and re-encoding.
 */
export function scanPreludeFrame(envelope: Uint8Array): PreludeFrameLayout {
  const layout = scanPreludeFrameFast(envelope);
  if (layout !== undefined) return layout;
  // Invalid (or in a form the scanner leaves to the decoder): readPreludeFrame throws the
  // error it always has. Should it accept, the layout follows from the decoded prelude.
  return layoutOfDecoded(readPreludeFrame(envelope));
}

/**
 * Recipient `index`'s framed one-entry prelude, `u32be(len) || prelude with only entry index`,
 * spliced from the envelope: byte for byte `framePrelude(encodePrelude({ ...prelude, entries:
 * [prelude.entries[index]] }))`, because a validated prelude is in the one deterministic encoding
 * of its value, so its core and its entries are the bytes that encoding writes for them. Always a
 * new array. `layout` must be `scanPreludeFrame(envelope)` of this very envelope.
 */
export function framedEntryPrelude(envelope: Uint8Array, layout: PreludeFrameLayout, index: number): Uint8Array {
  if (!Number.isInteger(index) || index < 0 || index >= layout.entryCount) {
    throw new ArgumentError(`entry index ${index}: the prelude has ${layout.entryCount} entries`);
  }
  const start = layout.entryOffsets[index] as number;
  const end = layout.entryOffsets[index + 1] as number;
  const coreLength = layout.coreEnd - 4;
  const length = coreLength + 1 + (end - start);
  const out = new Uint8Array(4 + length);
  out[0] = length >>> 24;
  out[1] = (length >>> 16) & 0xff;
  out[2] = (length >>> 8) & 0xff;
  out[3] = length & 0xff;
  out.set(envelope.subarray(4, layout.coreEnd), 4);
  out[4 + coreLength] = 0x81; // an array of one entry
  out.set(envelope.subarray(start, end), 5 + coreLength);
  return out;
}

/** The layout of a prelude that {@link readPreludeFrame} accepted, from the lengths of its canonical encoding. */
function layoutOfDecoded({ prelude, recordsOffset }: ReturnType<typeof readPreludeFrame>): PreludeFrameLayout {
  const n = prelude.entries.length;
  const entryOffsets = new Uint32Array(n + 1);
  let o = recordsOffset;
  entryOffsets[n] = o;
  for (let i = n - 1; i >= 0; i--) {
    const { enc, ct } = prelude.entries[i] as EnvelopeEntry;
    // {0: hint, 1: enc, 2: ct}: the map head, key 0 and the hint's head are one byte each.
    o -= 3 + HINT_LENGTH + 1 + headLength(enc.length) + enc.length + 1 + headLength(ct.length) + ct.length;
    entryOffsets[i] = o;
  }
  return { recordsOffset, entryCount: n, coreEnd: o - headLength(n), entryOffsets };
}

/** {@link layoutOfDecoded}, for the test that holds it to the scanner. */
export function preludeLayoutOfDecodedForTesting(envelope: Uint8Array): PreludeFrameLayout {
  return layoutOfDecoded(readPreludeFrame(envelope));
}

/** The scanner of {@link scanPreludeFrame} alone: the layout, or undefined where readPreludeFrame decides; for tests. */
export function scanPreludeFrameFastForTesting(envelope: Uint8Array): PreludeFrameLayout | undefined {
  return scanPreludeFrameFast(envelope);
}

// The fast scan reads the one deterministic encoding a valid prelude can have (all fields are
// required and no others allowed, so the map sizes and keys are fixed; the heads are shortest
// form) and returns undefined for anything else, leaving the verdict and its message to the
// generic decoder. A differential test (envelope-wire-fast.test.ts) holds it to readPreludeFrame.

/** `{0: 1, 1: 10, 2: <16 bytes>`: a map of six fields, version 1, type EnvelopePrelude, the head of the envelope id. */
const PRELUDE_PREFIX = [0xa6, 0x00, WIRE_VERSION, 0x01, StructType.EnvelopePrelude, 0x02, 0x40 | ENVELOPE_ID_LENGTH];
/** `4: <32 bytes>`: the key of the hint key and its head. */
const HINT_KEY_HEAD = [0x04, 0x58, 32];
/** `{0: <16 bytes>`: an entry of three fields, and the key and head of its hint. */
const ENTRY_PREFIX = [0xa3, 0x00, 0x40 | HINT_LENGTH];

function scanPreludeFrameFast(envelope: Uint8Array): PreludeFrameLayout | undefined {
  if (!(envelope instanceof Uint8Array) || envelope.length < 4) return undefined;
  const n = readU32be(envelope, 0);
  // The limits of readPreludeFrame and decodeCbor (an empty prelude is an error there too).
  if (n === 0 || n > MAX_PRELUDE_SIZE || envelope.length < 4 + n) return undefined;
  const recordsOffset = 4 + n;
  const s = new CborScanner(envelope, 4, recordsOffset);
  if (!s.literal(PRELUDE_PREFIX)) return undefined;
  s.pos += ENVELOPE_ID_LENGTH;
  if (!s.byte(0x03) || s.uint(0xffff) < 0 || !s.literal(HINT_KEY_HEAD)) return undefined;
  s.pos += 32;
  if (!s.byte(0x05)) return undefined; // also catches an envelope id or hint key cut short
  const coreEnd = s.pos;
  const count = s.head(4);
  if (count < 1 || count > MAX_RECIPIENTS) return undefined;
  const entryOffsets = new Uint32Array(count + 1);
  for (let i = 0; i < count; i++) {
    entryOffsets[i] = s.pos;
    if (!s.literal(ENTRY_PREFIX)) return undefined;
    s.pos += HINT_LENGTH;
    if (!s.byte(0x01) || s.bytes(1, MAX_ENC_LENGTH) < 0) return undefined;
    if (!s.byte(0x02) || s.bytes(17, MAX_ENTRY_CIPHERTEXT) < 0) return undefined;
  }
  if (s.pos !== recordsOffset) return undefined;
  entryOffsets[count] = recordsOffset;
  return { recordsOffset, entryCount: count, coreEnd, entryOffsets };
}

/**
 * The envelope as delivered to each recipient, in entry order: the same records behind a
 * prelude that holds only that recipient's entry. This is what a relay stores per mailbox;
 * it needs no key. The records are shared (subarrays of the input), not copied.
 */
export function splitEnvelope(envelope: Uint8Array): { deliveries: Uint8Array[]; records: Uint8Array } {
  const layout = scanPreludeFrame(envelope);
  const records = envelope.subarray(layout.recordsOffset);
  const deliveries: Uint8Array[] = [];
  for (let i = 0; i < layout.entryCount; i++) deliveries.push(framedEntryPrelude(envelope, layout, i));
  return { deliveries, records };
}

/** One recipient's whole envelope: its single-entry prelude followed by the shared records. */
export function sliceEnvelope(envelope: Uint8Array, index: number): Uint8Array {
  const layout = scanPreludeFrame(envelope);
  if (!Number.isInteger(index) || index < 0 || index >= layout.entryCount) throw new DecodeError(`envelope: no entry ${index}`);
  return concat(framedEntryPrelude(envelope, layout, index), envelope.subarray(layout.recordsOffset));
}

// ---------------------------------------------------------------------------------------------
// Sealed header (record 0 of the stream)

export const DistributionKind = { Person: 1, Office: 2, Device: 3 } as const;
export type DistributionKind = (typeof DistributionKind)[keyof typeof DistributionKind];

export interface DistributionEntry {
  kind: DistributionKind;
  /** personId, officeId or deviceId (16 bytes). */
  id: Uint8Array;
  /** Display name as the sender addressed it ("Embassy in Paris"). */
  name: string;
}

export interface SenderChainBytes {
  person: Uint8Array;
  device: Uint8Array;
  office?: Uint8Array;
  officeHolder?: Uint8Array;
}

export interface EnvelopeHeader {
  envelopeId: Uint8Array;
  createdAt: number;
  subject: string;
  classification: string;
  contentType: string;
  distribution: DistributionEntry[];
  sender: SenderChainBytes;
  /** Certificate ids of the recipient devices, in entry order. */
  recipients: Uint8Array[];
  /** Salted digests of the recipients' personal payloads, aligned with `recipients`. */
  personalDigests?: Uint8Array[];
}

/** The largest sealed header (sender chain, metadata, distribution list). */
export const MAX_HEADER_SIZE = 1 << 20;
export const MAX_SUBJECT_LENGTH = 1024;
export const MAX_CLASSIFICATION_LENGTH = 64;
export const MAX_CONTENT_TYPE_LENGTH = 128;
export const MAX_NAME_LENGTH = 256;
export const MAX_DISTRIBUTION = 4096;

export function encodeHeader(h: EnvelopeHeader): Uint8Array {
  return encodeStructure(StructType.EnvelopeHeader, [
    [2, h.envelopeId],
    [3, h.createdAt],
    [4, h.subject],
    [5, h.classification],
    [6, h.contentType],
    [
      7,
      h.distribution.map((d) =>
        cborMap([
          [0, d.kind],
          [1, d.id],
          [2, d.name],
        ]),
      ),
    ],
    [
      8,
      cborMap([
        [0, h.sender.person],
        [1, h.sender.device],
        [2, h.sender.office],
        [3, h.sender.officeHolder],
      ]),
    ],
    [9, h.recipients],
    [10, h.personalDigests],
  ]);
}

export function decodeHeader(bytes: Uint8Array, maxSize: number): EnvelopeHeader {
  const what = 'envelope header';
  const r = decodeStructure(bytes, StructType.EnvelopeHeader, maxSize, what);
  const envelopeId = r.bytes(2, 'envelopeId', { len: ENVELOPE_ID_LENGTH });
  const createdAt = r.uint(3, 'createdAt');
  const subject = r.text(4, 'subject', MAX_SUBJECT_LENGTH);
  const classification = r.text(5, 'classification', MAX_CLASSIFICATION_LENGTH);
  const contentType = r.text(6, 'contentType', MAX_CONTENT_TYPE_LENGTH);
  const distribution = r.array(7, 'distribution', MAX_DISTRIBUTION).map((item, i) => {
    const d = MapReader.from(item, `${what}.distribution[${i}]`);
    const kind = d.uint(0, 'kind');
    if (kind !== DistributionKind.Person && kind !== DistributionKind.Office && kind !== DistributionKind.Device) {
      throw new DecodeError(`${what}.distribution[${i}]: unknown kind ${kind}`);
    }
    const entry = { kind: kind as DistributionKind, id: d.bytes(1, 'id', { len: 16 }), name: d.text(2, 'name', MAX_NAME_LENGTH) };
    d.done();
    return entry;
  });
  const s = r.mapAt(8, 'sender');
  const cert = (k: number, field: string) => s.bytes(k, field, { min: 1, max: CERT_MAX_SIZE });
  const sender: SenderChainBytes = { person: cert(0, 'person'), device: cert(1, 'device') };
  const office = s.optional(2, (k) => cert(k, 'office'));
  const officeHolder = s.optional(3, (k) => cert(k, 'officeHolder'));
  if ((office === undefined) !== (officeHolder === undefined))
    throw new DecodeError(`${what}.sender: office without its holder certificate`);
  if (office !== undefined && officeHolder !== undefined) {
    sender.office = office;
    sender.officeHolder = officeHolder;
  }
  s.done();
  const recipients = readIdList(r.array(9, 'recipients', MAX_RECIPIENTS), 16, `${what}.recipients`);
  if (recipients.length === 0) throw new DecodeError(`${what}: no recipients`);
  const personalDigests = r.optional(10, (k) => readIdList(r.array(k, 'personalDigests', MAX_RECIPIENTS), 32, `${what}.personalDigests`));
  if (personalDigests !== undefined && personalDigests.length !== recipients.length) {
    throw new DecodeError(`${what}: ${personalDigests.length} personal digests for ${recipients.length} recipients`);
  }
  r.done();
  const header: EnvelopeHeader = { envelopeId, createdAt, subject, classification, contentType, distribution, sender, recipients };
  if (personalDigests !== undefined) header.personalDigests = personalDigests;
  return header;
}

function readIdList(items: CborValue[], len: number, what: string): Uint8Array[] {
  return items.map((x, i) => {
    if (!(x instanceof Uint8Array) || x.length !== len) throw new DecodeError(`${what}[${i}]: expected ${len} bytes`);
    return x;
  });
}

// ---------------------------------------------------------------------------------------------
// Entry plaintext: what HPKE wraps for one recipient

export interface EntryPlaintext {
  contentKey: Uint8Array;
  /** SHA-256 of the sealed header: binds this key wrap to the sender's header (and so to the sender). */
  headerDigest: Uint8Array;
  recipientIndex: number;
  personal?: { payload: Uint8Array; salt: Uint8Array };
}

export const MAX_PERSONAL_SIZE = 1 << 20;

export function encodeEntryPlaintext(e: EntryPlaintext): Uint8Array {
  return encodeStructure(StructType.EntryPlaintext, [
    [2, e.contentKey],
    [3, e.recipientIndex],
    [4, e.personal?.payload],
    [5, e.personal?.salt],
    [6, e.headerDigest],
  ]);
}

/**
 * Entry plaintexts are padded so that every entry of an envelope has the same size:
 * `u32be(n) || CBOR (n bytes) || zero bytes`.
 */
export function padEntryPlaintext(cbor: Uint8Array, targetLength: number): Uint8Array {
  const out = new Uint8Array(Math.max(targetLength, 4 + cbor.length));
  out.set(u32be(cbor.length), 0);
  out.set(cbor, 4);
  return out;
}

export function decodeEntryPlaintext(padded: Uint8Array): EntryPlaintext {
  const what = 'entry plaintext';
  if (padded.length < 4) throw new DecodeError(`${what}: too short`);
  const n = readU32be(padded, 0);
  if (n > padded.length - 4) throw new DecodeError(`${what}: length prefix past the end`);
  for (let i = 4 + n; i < padded.length; i++) if (padded[i] !== 0) throw new DecodeError(`${what}: non-zero padding`);
  const r = decodeStructure(padded.subarray(4, 4 + n), StructType.EntryPlaintext, MAX_PERSONAL_SIZE + 1024, what);
  const contentKey = r.bytes(2, 'contentKey', { len: 32 });
  const recipientIndex = r.uint(3, 'recipientIndex', MAX_RECIPIENTS - 1);
  const payload = r.optional(4, (k) => r.bytes(k, 'personal', { max: MAX_PERSONAL_SIZE }));
  const salt = r.optional(5, (k) => r.bytes(k, 'personalSalt', { len: 32 }));
  const headerDigest = r.bytes(6, 'headerDigest', { len: 32 });
  r.done();
  if ((payload === undefined) !== (salt === undefined)) throw new DecodeError(`${what}: personal payload without its salt`);
  const e: EntryPlaintext = { contentKey, headerDigest, recipientIndex };
  if (payload !== undefined && salt !== undefined) e.personal = { payload, salt };
  return e;
}
