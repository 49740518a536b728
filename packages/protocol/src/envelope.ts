/**
 * Sealed envelopes (spec/envelope.md): one item sealed for many recipient devices.
 *
 * - The body is encrypted once, in 64 KiB records of a STREAM construction (stream.ts), under a
 *   key derived from a fresh content key.
 * - Each recipient device gets an entry that wraps the content key with HPKE to its encryption
 *   key (X-Wing by default), found through a keyed hint rather than by trial decryption.
 * - Who sent it (the certificate chain) and the sender's signature are inside the encryption
 *   (sealed sender); the relay sees the prelude only.
 * - A recipient may also get a personal payload (a fingerprinted copy), carried in its entry and
 *   committed to by a salted digest in the signed header.
 * - The record stream is padded to a Padmé bucket.
 *
 * Sealing and opening are synchronous and streaming: {@link createSealer} and
 * {@link createOpener} hold at most one record in memory, so 100 MB bodies need no more memory
 * than 1 KB ones. {@link seal} and {@link open} are the one-shot forms.
 */
import { abytes, concat, equalBytes, readU32be } from './bytes.js';
import {
  type DistributionEntry,
  decodeEntryPlaintext,
  decodeHeader,
  decodePrelude,
  ENVELOPE_ID_LENGTH,
  type EnvelopeEntry,
  type EnvelopeHeader,
  type EnvelopePrelude,
  encodeEntryPlaintext,
  encodeHeader,
  encodePrelude,
  framePrelude,
  HINT_LENGTH,
  MAX_CLASSIFICATION_LENGTH,
  MAX_CONTENT_TYPE_LENGTH,
  MAX_PERSONAL_SIZE,
  MAX_PRELUDE_SIZE,
  MAX_RECIPIENTS,
  MAX_SUBJECT_LENGTH,
  padEntryPlaintext,
  preludeDigest,
} from './envelope-wire.js';
import { DecodeError, OpenError, SealError, ValiseError, VerifyError, VerifyReason } from './errors.js';
import { hkdfExpand, hkdfExtract } from './hkdf.js';
import { HpkeAeadId, type HpkeSuite, KdfId, KemId, openBase, sealBase } from './hpke.js';
import { type DeviceCert, type SenderChain, type TrustStore, type VerifiedDevice, verifyDeviceChain } from './identity.js';
import { Label, labelled } from './labels.js';
import { padme } from './padme.js';
import { getProvider } from './provider.js';
import { type RandomSource, randomFrom } from './random.js';
import { CHUNK_SIZE, MAX_HEADER_SIZE, RECORD_OVERHEAD, RecordReader, RecordType, RecordWriter } from './stream.js';
import { xwingX25519PublicKey, xwingX25519SecretKey } from './xwing.js';

export type { DistributionEntry } from './envelope-wire.js';

export interface SealInput {
  subject: string;
  /** Free text agreed by the organisation, e.g. "UNCLASSIFIED", "CONFIDENTIAL". */
  classification: string;
  contentType?: string;
  /** Whom the item is addressed to, as the sender wrote it (people, offices, devices). */
  distribution: DistributionEntry[];
  /** Seconds since the Unix epoch; defaults to now. */
  createdAt?: number;
  /**
   * A payload for one recipient only (for example its fingerprinted copy of a document), by
   * recipient index. Either every recipient gets one or none does.
   */
  personal?: (index: number, recipient: VerifiedDevice) => Uint8Array;
}

export interface SenderCredentials {
  /** The sender's encoded certificates: person, device, and optionally the office it writes for. */
  chain: SenderChain;
  /** The device's Ed25519 signing secret key (it must match the device certificate). */
  signingSecretKey: Uint8Array;
}

export interface RecipientCredentials {
  device: DeviceCert;
  /** The device's KEM secret key (X-Wing seed or X25519 secret key, per its certificate). */
  encryptionSecretKey: Uint8Array;
}

export interface SealOptions {
  randomForTesting?: RandomSource;
}

export interface OpenOptions {
  /** Seconds since the Unix epoch at which certificates must be valid; defaults to now. */
  now?: number;
}

export const DEFAULT_CONTENT_TYPE = 'text/plain; charset=utf-8';
const SIGNATURE_LENGTH = 64;

const nowSeconds = () => Math.floor(Date.now() / 1000);

function hpkeSuite(kem: number): HpkeSuite {
  if (kem !== KemId.XWing && kem !== KemId.DhkemX25519HkdfSha256) throw new OpenError(`unsupported KEM ${kem}`);
  return { kem, kdf: KdfId.HkdfSha256, aead: HpkeAeadId.ChaCha20Poly1305 } as HpkeSuite;
}

/** The X25519 half of a recipient key, used only for the hint. */
function hintPublicKey(kem: number, publicKey: Uint8Array): Uint8Array {
  return kem === KemId.XWing ? xwingX25519PublicKey(publicKey) : publicKey;
}
function hintSecretKey(kem: number, secretKey: Uint8Array): Uint8Array {
  return kem === KemId.XWing ? xwingX25519SecretKey(secretKey) : secretKey;
}

function deriveHint(dh: Uint8Array, digest: Uint8Array, recipientHintKey: Uint8Array): Uint8Array {
  return hkdfExpand(hkdfExtract(digest, dh), labelled(Label.EnvelopeHint, recipientHintKey), HINT_LENGTH);
}

function deriveStreamKey(contentKey: Uint8Array, digest: Uint8Array): Uint8Array {
  return hkdfExpand(hkdfExtract(digest, contentKey), labelled(Label.EnvelopeStreamKey), 32);
}

function personalDigest(salt: Uint8Array, payload: Uint8Array): Uint8Array {
  return getProvider().sha256(labelled(Label.EnvelopePersonalDigest, salt, payload));
}

function signedMessage(digest: Uint8Array, headerBytes: Uint8Array, bodyDigest: Uint8Array): Uint8Array {
  return labelled(Label.EnvelopeSignature, digest, getProvider().sha256(headerBytes), bodyDigest);
}

function checkText(value: unknown, field: string, max: number): string {
  if (typeof value !== 'string' || value.length > max) throw new SealError(`${field}: expected text of at most ${max} characters`);
  return value;
}

/** Streams an envelope out: {@link head} first, then whatever {@link update} and {@link final} return. */
export interface EnvelopeSealer {
  readonly envelopeId: Uint8Array;
  /** The framed prelude and the sealed header record. */
  readonly head: Uint8Array;
  /** Encrypts more body bytes; returns the records completed so far (often empty). */
  update(body: Uint8Array): Uint8Array;
  /** Ends the body: last body record, padding, and the signed trailer. */
  final(): Uint8Array;
}

export function createSealer(
  input: SealInput,
  sender: SenderCredentials,
  recipients: readonly VerifiedDevice[],
  options?: SealOptions,
): EnvelopeSealer {
  const random = randomFrom(options);
  const p = getProvider();
  if (recipients.length === 0 || recipients.length > MAX_RECIPIENTS) {
    throw new SealError(`recipients: expected 1..${MAX_RECIPIENTS} devices, got ${recipients.length}`);
  }
  for (const r of recipients) {
    if (r?.verified !== true) throw new SealError('recipients: each must be a VerifiedDevice from verifyDeviceChain');
  }
  const kem = (recipients[0] as VerifiedDevice).device.encryption.kem;
  if (!recipients.every((r) => r.device.encryption.kem === kem)) {
    throw new SealError('recipients: all devices of one envelope must use the same KEM');
  }
  const suite = hpkeSuite(kem);
  abytes(sender.signingSecretKey, 'signingSecretKey', 32);
  const subject = checkText(input.subject, 'subject', MAX_SUBJECT_LENGTH);
  const classification = checkText(input.classification, 'classification', MAX_CLASSIFICATION_LENGTH);
  const contentType = checkText(input.contentType ?? DEFAULT_CONTENT_TYPE, 'contentType', MAX_CONTENT_TYPE_LENGTH);

  const envelopeId = random(ENVELOPE_ID_LENGTH);
  const contentKey = random(32);
  const hintSecret = random(32);
  const hintKey = p.x25519PublicKey(hintSecret);
  const core: EnvelopePrelude = { envelopeId, kem, hintKey, entries: [] };
  const digest = preludeDigest(core);

  // Personal payloads: salted digests go into the signed header, payloads into the entries.
  let personal: { payload: Uint8Array; salt: Uint8Array }[] | undefined;
  if (input.personal) {
    const make = input.personal;
    personal = recipients.map((r, i) => {
      const payload = make(i, r);
      abytes(payload, `personal payload ${i}`);
      if (payload.length > MAX_PERSONAL_SIZE) throw new SealError(`personal payload ${i}: larger than ${MAX_PERSONAL_SIZE} bytes`);
      return { payload, salt: random(32) };
    });
  }

  // Every entry plaintext is padded to one size, so entries do not tell recipients apart.
  const plaintexts = recipients.map((_, i) => {
    const pers = personal?.[i];
    return encodeEntryPlaintext(pers ? { contentKey, recipientIndex: i, personal: pers } : { contentKey, recipientIndex: i });
  });
  const entryLength = padme(4 + Math.max(...plaintexts.map((x) => x.length)));
  const info = labelled(Label.EnvelopeEntry, digest);
  const entries: EnvelopeEntry[] = recipients.map((r, i) => {
    const pk = r.device.encryption.publicKey;
    const hint = deriveHint(p.x25519(hintSecret, hintPublicKey(kem, pk)), digest, hintPublicKey(kem, pk));
    const { enc, ct } = sealBase(suite, pk, info, hint, padEntryPlaintext(plaintexts[i] as Uint8Array, entryLength), options);
    return { hint, enc, ct };
  });
  const preludeBytes = encodePrelude({ ...core, entries });
  if (preludeBytes.length > MAX_PRELUDE_SIZE)
    throw new SealError('envelope prelude too large: fewer recipients or smaller personal payloads');

  const header: EnvelopeHeader = {
    envelopeId,
    createdAt: input.createdAt ?? nowSeconds(),
    subject,
    classification,
    contentType,
    distribution: input.distribution,
    sender: sender.chain,
    recipients: recipients.map((r) => r.device.certId),
  };
  if (personal) header.personalDigests = personal.map((x) => personalDigest(x.salt, x.payload));
  const headerBytes = encodeHeader(header);
  if (headerBytes.length > MAX_HEADER_SIZE) throw new SealError('envelope header too large: shorten the distribution list');

  const writer = new RecordWriter(deriveStreamKey(contentKey, digest));
  const bodyHash = p.createSha256().update(labelled(Label.EnvelopeBodyDigest));
  const headerRecord = writer.write(RecordType.Header, headerBytes);
  let recordBytes = headerRecord.length;
  let pending = new Uint8Array(CHUNK_SIZE);
  let pendingLength = 0;
  let finished = false;

  const emitChunk = (chunk: Uint8Array): Uint8Array => {
    const rec = writer.write(RecordType.Body, chunk);
    recordBytes += rec.length;
    return rec;
  };

  return {
    envelopeId,
    head: concat(framePrelude(preludeBytes), headerRecord),
    update(body) {
      if (finished) throw new SealError('update after final');
      abytes(body, 'body');
      bodyHash.update(body);
      const out: Uint8Array[] = [];
      let o = 0;
      // A record is written only once more bytes arrive after it, so the last body record is
      // always the one final() writes and every earlier one is exactly CHUNK_SIZE.
      while (o < body.length) {
        if (pendingLength === CHUNK_SIZE) {
          out.push(emitChunk(pending));
          pending = new Uint8Array(CHUNK_SIZE);
          pendingLength = 0;
        }
        const n = Math.min(CHUNK_SIZE - pendingLength, body.length - o);
        pending.set(body.subarray(o, o + n), pendingLength);
        pendingLength += n;
        o += n;
      }
      return concat(...out);
    },
    final() {
      if (finished) throw new SealError('final called twice');
      finished = true;
      const out: Uint8Array[] = [];
      if (pendingLength > 0) out.push(emitChunk(pending.subarray(0, pendingLength)));
      const trailerLength = RECORD_OVERHEAD + SIGNATURE_LENGTH;
      const unpadded = recordBytes + trailerLength;
      let target = padme(unpadded);
      if (target !== unpadded && target - unpadded < RECORD_OVERHEAD) target = padme(unpadded + RECORD_OVERHEAD);
      let gap = target - unpadded;
      while (gap > 0) {
        const data = Math.min(CHUNK_SIZE, gap - RECORD_OVERHEAD);
        // Leave at least one record's overhead for what remains, or take it all now.
        const rest = gap - RECORD_OVERHEAD - data;
        const take = rest > 0 && rest < RECORD_OVERHEAD ? data - (RECORD_OVERHEAD - rest) : data;
        out.push(writer.write(RecordType.Padding, new Uint8Array(take)));
        gap -= RECORD_OVERHEAD + take;
      }
      const signature = p.ed25519Sign(signedMessage(digest, headerBytes, bodyHash.digest()), sender.signingSecretKey);
      out.push(writer.write(RecordType.Trailer, signature, true));
      return concat(...out);
    },
  };
}

/** Seals `body` for every recipient device in one envelope. */
export function seal(
  input: SealInput,
  body: Uint8Array,
  sender: SenderCredentials,
  recipients: readonly VerifiedDevice[],
  options?: SealOptions,
): Uint8Array {
  const s = createSealer(input, sender, recipients, options);
  return concat(s.head, s.update(body), s.final());
}

// ---------------------------------------------------------------------------------------------

export interface OpenedHeader {
  envelopeId: Uint8Array;
  createdAt: number;
  subject: string;
  classification: string;
  contentType: string;
  distribution: DistributionEntry[];
  /** The sender's verified chain: person, device and, if it wrote for one, office. */
  sender: VerifiedDevice;
  /** Certificate ids of every recipient device, and this device's place among them. */
  recipients: Uint8Array[];
  recipientIndex: number;
  /** This recipient's personal payload, if the sender gave one. */
  personal?: Uint8Array;
}

export interface OpenedEnvelope extends OpenedHeader {
  body: Uint8Array;
  /** The sender's signature, kept as evidence (non-repudiation). */
  signature: Uint8Array;
}

/**
 * Opens an envelope fed in pieces. Body chunks are returned as they authenticate under the
 * stream key, but the sender's signature over the whole body is only checked by
 * {@link EnvelopeOpener.final}: do not act on streamed content before it returns.
 */
export interface EnvelopeOpener {
  /** Available once the header record has been opened and the sender verified. */
  readonly header: OpenedHeader | undefined;
  push(bytes: Uint8Array): Uint8Array[];
  final(): { header: OpenedHeader; signature: Uint8Array; bodyLength: number };
}

export function createOpener(recipient: RecipientCredentials, trust: TrustStore, options?: OpenOptions): EnvelopeOpener {
  const p = getProvider();
  const now = options?.now ?? nowSeconds();
  const device = recipient.device;
  const kem = device.encryption.kem;
  const suite = hpkeSuite(kem);
  abytes(recipient.encryptionSecretKey, 'encryptionSecretKey');

  let prefix: Uint8Array[] = [];
  let prefixLength = 0;
  let reader: RecordReader | undefined;
  let digest: Uint8Array | undefined;
  let entry: ReturnType<typeof decodeEntryPlaintext> | undefined;
  let header: OpenedHeader | undefined;
  let headerBytes: Uint8Array | undefined;
  let state: 'header' | 'body' | 'body-ended' | 'padding' | 'done' = 'header';
  let signature: Uint8Array | undefined;
  let bodyLength = 0;
  let failed: unknown;
  const bodyHash = p.createSha256().update(labelled(Label.EnvelopeBodyDigest));

  const findEntry = (prelude: EnvelopePrelude) => {
    if (prelude.kem !== kem) throw new OpenError('envelope KEM does not match this device');
    digest = preludeDigest(prelude);
    const ownHintKey = hintPublicKey(kem, device.encryption.publicKey);
    let dh: Uint8Array;
    try {
      dh = p.x25519(hintSecretKey(kem, recipient.encryptionSecretKey), prelude.hintKey);
    } catch (cause) {
      throw new OpenError('bad hint key', { cause });
    }
    const hint = deriveHint(dh, digest, ownHintKey);
    const info = labelled(Label.EnvelopeEntry, digest);
    for (const e of prelude.entries) {
      if (!equalBytes(e.hint, hint)) continue;
      let pt: Uint8Array;
      try {
        pt = openBase(suite, e.enc, recipient.encryptionSecretKey, info, e.hint, e.ct);
      } catch {
        continue; // a hint collision (2^-128) or a damaged entry: try any other match
      }
      return decodeEntryPlaintext(pt);
    }
    throw new OpenError('no entry for this device');
  };

  const onRecord = (type: RecordType, data: Uint8Array, last: boolean): Uint8Array | undefined => {
    if (last !== (type === RecordType.Trailer)) throw new OpenError('final flag on the wrong record');
    switch (type) {
      case RecordType.Header: {
        if (state !== 'header') throw new OpenError('header record out of place');
        if (data.length > MAX_HEADER_SIZE) throw new OpenError('header record too large');
        const h = decodeHeader(data, MAX_HEADER_SIZE);
        const e = entry as NonNullable<typeof entry>;
        if (!equalBytes(h.envelopeId, prelude.envelopeId)) throw new OpenError('header names another envelope');
        const own = h.recipients[e.recipientIndex];
        if (own === undefined || !equalBytes(own, device.certId)) throw new OpenError('entry is not addressed to this device');
        const sd = h.personalDigests;
        if ((sd === undefined) !== (e.personal === undefined)) throw new OpenError('personal payload and header disagree');
        if (sd && e.personal && !equalBytes(sd[e.recipientIndex] as Uint8Array, personalDigest(e.personal.salt, e.personal.payload))) {
          throw new OpenError('personal payload does not match its digest');
        }
        // After this point the content is authentic to whoever holds the content key; the
        // sender is established by the chain here and the signature in the trailer.
        const sender = verifyDeviceChain(h.sender, trust, now);
        headerBytes = data.slice();
        header = {
          envelopeId: h.envelopeId,
          createdAt: h.createdAt,
          subject: h.subject,
          classification: h.classification,
          contentType: h.contentType,
          distribution: h.distribution,
          sender,
          recipients: h.recipients,
          recipientIndex: e.recipientIndex,
        };
        if (e.personal) header.personal = e.personal.payload;
        state = 'body';
        return undefined;
      }
      case RecordType.Body: {
        if (state !== 'body') throw new OpenError('body record out of place');
        if (data.length === 0 || data.length > CHUNK_SIZE) throw new OpenError('body record of a bad size');
        if (data.length < CHUNK_SIZE) state = 'body-ended';
        bodyHash.update(data);
        bodyLength += data.length;
        return data;
      }
      case RecordType.Padding: {
        if (state === 'header' || state === 'done') throw new OpenError('padding record out of place');
        if (data.length > CHUNK_SIZE) throw new OpenError('padding record too large');
        let acc = 0;
        for (const b of data) acc |= b;
        if (acc !== 0) throw new OpenError('padding is not zero');
        state = 'padding';
        return undefined;
      }
      case RecordType.Trailer: {
        if (state === 'header' || state === 'done') throw new OpenError('trailer record out of place');
        if (data.length !== SIGNATURE_LENGTH) throw new OpenError('trailer of a bad size');
        const h = header as OpenedHeader;
        const message = signedMessage(digest as Uint8Array, headerBytes as Uint8Array, bodyHash.digest());
        if (!p.ed25519Verify(data, message, h.sender.device.signingKey)) {
          throw new VerifyError(VerifyReason.BadSignature, 'the sender signature over the envelope does not verify');
        }
        signature = data.slice();
        state = 'done';
        return undefined;
      }
    }
  };

  let prelude!: EnvelopePrelude;

  const pushRecords = (bytes: Uint8Array): Uint8Array[] => {
    const out: Uint8Array[] = [];
    for (const rec of (reader as RecordReader).push(bytes)) {
      const chunk = onRecord(rec.type, rec.data, rec.last);
      if (chunk) out.push(chunk);
    }
    return out;
  };

  const guard = <T>(f: () => T): T => {
    if (failed !== undefined) throw failed;
    try {
      return f();
    } catch (err) {
      // Decode errors of the public prelude stay decode errors; everything past the key
      // unwrap that is not a sender verification failure is one uniform OpenError.
      failed = err instanceof DecodeError && reader === undefined ? err : err instanceof VerifyError ? err : toOpenError(err);
      throw failed;
    }
  };

  return {
    get header() {
      return header;
    },
    push(bytes) {
      return guard(() => {
        abytes(bytes, 'envelope bytes');
        if (reader) return pushRecords(bytes);
        prefix.push(bytes);
        prefixLength += bytes.length;
        if (prefixLength < 4) return [];
        const all = concat(...prefix);
        const n = readU32be(all, 0);
        if (n > MAX_PRELUDE_SIZE) throw new DecodeError(`envelope: prelude of ${n} bytes exceeds the limit of ${MAX_PRELUDE_SIZE}`);
        if (all.length < 4 + n) {
          prefix = [all];
          return [];
        }
        prelude = decodePrelude(all.subarray(4, 4 + n));
        entry = findEntry(prelude);
        reader = new RecordReader(deriveStreamKey(entry.contentKey, digest as Uint8Array));
        prefix = [];
        return pushRecords(all.subarray(4 + n));
      });
    },
    final() {
      return guard(() => {
        if (!reader) throw new DecodeError('envelope: truncated prelude');
        reader.end();
        if (state !== 'done' || !header || !signature) throw new OpenError('truncated envelope');
        return { header, signature, bodyLength };
      });
    },
  };
}

function toOpenError(err: unknown): OpenError {
  if (err instanceof OpenError) return err;
  const detail = ValiseError.is(err) ? `${err.code}: ${err.message}` : 'internal failure';
  return new OpenError(detail, { cause: err });
}

/** Opens a whole envelope; returns only after every check, including the sender's signature. */
export function open(envelope: Uint8Array, recipient: RecipientCredentials, trust: TrustStore, options?: OpenOptions): OpenedEnvelope {
  const o = createOpener(recipient, trust, options);
  const chunks = o.push(envelope);
  const { header, signature } = o.final();
  return { ...header, body: concat(...chunks), signature };
}
