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
import { type CborValue, cborMap, decodeStructure, encodeStructure, MapReader, StructType } from './cbor.js';
import { DecodeError } from './errors.js';
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
 * The envelope as delivered to each recipient, in entry order: the same records behind a
 * prelude that holds only that recipient's entry. This is what a relay stores per mailbox;
 * it needs no key. The records are shared (subarrays of the input), not copied.
 */
export function splitEnvelope(envelope: Uint8Array): { deliveries: Uint8Array[]; records: Uint8Array } {
  const { prelude, recordsOffset } = readPreludeFrame(envelope);
  const records = envelope.subarray(recordsOffset);
  const deliveries = prelude.entries.map((entry) => framePrelude(encodePrelude({ ...prelude, entries: [entry] })));
  return { deliveries, records };
}

/** One recipient's whole envelope: its single-entry prelude followed by the shared records. */
export function sliceEnvelope(envelope: Uint8Array, index: number): Uint8Array {
  const { deliveries, records } = splitEnvelope(envelope);
  const head = deliveries[index];
  if (head === undefined) throw new DecodeError(`envelope: no entry ${index}`);
  return concat(head, records);
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
