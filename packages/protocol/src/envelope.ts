/**
 * Sealed envelopes (spec/envelope.md): one item sealed for many recipient devices.
 *
 * - The body is encrypted once, in the chunked stream of stream.ts, under a key derived from a
 *   fresh content key; the whole stream is padded to a Padmé bucket.
 * - Each recipient device gets an entry that wraps the content key with HPKE to its encryption
 *   key (X-Wing by default), found through a keyed hint rather than by trial decryption. The
 *   entry also carries the digest of the sealed header, so it cannot be re-used under another
 *   sender's header.
 * - Who sent it (the certificate chain) and the sender's signature are inside the encryption
 *   (sealed sender); the relay sees the prelude only.
 * - A recipient may also get a personal payload (a fingerprinted copy), carried in its entry and
 *   committed to by a salted digest in the signed header.
 *
 * Sealing and opening are synchronous and streaming: {@link createSealer} and
 * {@link createOpener} hold at most one 64 KiB chunk (plus the header) in memory, so 100 MB
 * bodies need no more memory than 1 KB ones. {@link seal} and {@link open} are the one-shot forms.
 */
import { abytes, concat, equalBytes, isBytes, readU32be } from './bytes.js';
import { isWellFormedText } from './cbor.js';
import {
  type DistributionEntry,
  DistributionKind,
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
  MAX_DISTRIBUTION,
  MAX_HEADER_SIZE,
  MAX_NAME_LENGTH,
  MAX_PERSONAL_SIZE,
  MAX_PRELUDE_SIZE,
  MAX_RECIPIENTS,
  MAX_SUBJECT_LENGTH,
  padEntryPlaintext,
  preludeDigest,
} from './envelope-wire.js';
import { ArgumentError, DecodeError, OpenError, SealError, ValiseError, VerifyError, VerifyReason } from './errors.js';
import { hkdfExpand, hkdfExtract } from './hkdf.js';
import { HpkeAeadId, type HpkeSuite, KdfId, KemId, openBase, sealBase } from './hpke.js';
import {
  CERT_MAX_SIZE,
  type DeviceCert,
  decodeDeviceCert,
  type SenderChain,
  type TrustStore,
  type VerifiedDevice,
  verifyDeviceChain,
} from './identity.js';
import { Label, labelled } from './labels.js';
import { padme } from './padme.js';
import { getProvider, type IncrementalHash } from './provider.js';
import { type RandomSource, randomFrom } from './random.js';
import { CHUNK_SIZE, ChunkReader, ChunkWriter, FRAME_HEADER_LENGTH, FrameType, frameHeader } from './stream.js';
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
  /** The device's KEM secret key (X-Wing seed or X25519 secret key, 32 bytes, per its certificate). */
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
export const SIGNATURE_LENGTH = 64;
const TRAILER_FRAME_LENGTH = FRAME_HEADER_LENGTH + SIGNATURE_LENGTH;

const nowSeconds = () => Math.floor(Date.now() / 1000);

function hpkeSuite(kem: number): HpkeSuite {
  if (kem !== KemId.XWing && kem !== KemId.DhkemX25519HkdfSha256) throw new ArgumentError(`unsupported KEM ${kem}`);
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

function signedMessage(digest: Uint8Array, headerDigest: Uint8Array, bodyDigest: Uint8Array): Uint8Array {
  return labelled(Label.EnvelopeSignature, digest, headerDigest, bodyDigest);
}

function bodyHasher(): IncrementalHash {
  return getProvider().createSha256().update(labelled(Label.EnvelopeBodyDigest));
}

/**
 * The padding rule (spec/envelope.md, "Padding"): the plaintext stream of `unpadded` bytes
 * (all frames but padding) grows to a Padmé length; returns the padding frame's data length,
 * or -1 for no padding frame.
 */
export function paddingLength(unpadded: number): number {
  const target = padme(unpadded);
  if (target === unpadded) return -1;
  const withFrame = target - unpadded >= FRAME_HEADER_LENGTH ? target : padme(unpadded + FRAME_HEADER_LENGTH);
  return withFrame - unpadded - FRAME_HEADER_LENGTH;
}

function checkText(value: unknown, field: string, max: number): string {
  if (typeof value !== 'string' || value.length > max || !isWellFormedText(value)) {
    throw new SealError(`${field}: expected well-formed text of at most ${max} UTF-16 code units`);
  }
  return value;
}

function checkDistribution(list: unknown): DistributionEntry[] {
  if (!Array.isArray(list) || list.length > MAX_DISTRIBUTION)
    throw new SealError(`distribution: expected an array of at most ${MAX_DISTRIBUTION} entries`);
  const kinds: number[] = Object.values(DistributionKind);
  return list.map((d: DistributionEntry, i) => {
    if (!kinds.includes(d?.kind)) throw new SealError(`distribution[${i}].kind: expected one of ${kinds.join(', ')}`);
    if (!isBytes(d.id) || d.id.length !== 16) throw new SealError(`distribution[${i}].id: expected 16 bytes`);
    checkText(d.name, `distribution[${i}].name`, MAX_NAME_LENGTH);
    return d;
  });
}

function checkChain(chain: SenderChain): SenderChain {
  const cert = (b: unknown, field: string) => {
    if (!isBytes(b) || b.length === 0 || b.length > CERT_MAX_SIZE)
      throw new SealError(`sender.chain.${field}: expected an encoded certificate`);
    return b;
  };
  const out: SenderChain = { person: cert(chain?.person, 'person'), device: cert(chain?.device, 'device') };
  if ((chain.office === undefined) !== (chain.officeHolder === undefined))
    throw new SealError('sender.chain: office and officeHolder go together');
  if (chain.office !== undefined && chain.officeHolder !== undefined) {
    out.office = cert(chain.office, 'office');
    out.officeHolder = cert(chain.officeHolder, 'officeHolder');
  }
  return out;
}

/**
 * Matches of a signing key to its device certificate, remembered per key array (a sender seals
 * many items with the same credentials; deriving the public key and decoding the certificate
 * each time would be a good part of a small envelope's cost). Copies guard against reuse.
 */
const matchedSigningKeys = new WeakMap<Uint8Array, { secret: Uint8Array; device: Uint8Array }>();

function checkSigningKey(signingSecretKey: Uint8Array, deviceCert: Uint8Array): void {
  abytes(signingSecretKey, 'signingSecretKey', 32);
  const hit = matchedSigningKeys.get(signingSecretKey);
  if (hit && equalBytes(hit.secret, signingSecretKey) && equalBytes(hit.device, deviceCert)) return;
  let device: DeviceCert;
  try {
    device = decodeDeviceCert(deviceCert);
  } catch (cause) {
    throw new SealError(`sender.chain.device: ${(cause as Error).message}`);
  }
  if (!equalBytes(getProvider().ed25519PublicKey(signingSecretKey), device.signingKey)) {
    throw new SealError('signingSecretKey does not match the signing key of the sender device certificate');
  }
  matchedSigningKeys.set(signingSecretKey, { secret: signingSecretKey.slice(), device: deviceCert.slice() });
}

/** Streams an envelope out: {@link head} first, then whatever {@link update} and {@link final} return. */
export interface EnvelopeSealer {
  readonly envelopeId: Uint8Array;
  /** The framed prelude and the stream's first chunks (if the header fills any). */
  readonly head: Uint8Array;
  /** Encrypts more body bytes; returns the chunks completed so far (often empty). */
  update(body: Uint8Array): Uint8Array;
  /** Ends the body: last body frame, padding, the signed trailer, and the final chunk. */
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

  // 1. Check everything the caller gave, so that no envelope is sealed that cannot be opened.
  if (!Array.isArray(recipients) || recipients.length === 0 || recipients.length > MAX_RECIPIENTS) {
    throw new SealError(`recipients: expected 1..${MAX_RECIPIENTS} devices`);
  }
  for (const r of recipients) {
    if (r?.verified !== true) throw new SealError('recipients: each must be a VerifiedDevice from verifyDeviceChain');
  }
  const kem = (recipients[0] as VerifiedDevice).device.encryption.kem;
  if (!recipients.every((r) => r.device.encryption.kem === kem))
    throw new SealError('recipients: all devices of one envelope must use the same KEM');
  const suite = hpkeSuite(kem);
  const chain = checkChain(sender?.chain);
  checkSigningKey(sender.signingSecretKey, chain.device);
  const createdAt = input.createdAt ?? nowSeconds();
  if (!Number.isSafeInteger(createdAt) || createdAt < 0) throw new SealError('createdAt: expected whole seconds since the epoch');

  // 2. Draw the envelope's randomness, in the order spec/envelope.md lists.
  const envelopeId = random(ENVELOPE_ID_LENGTH);
  const contentKey = random(32);
  const hintSecret = random(32);
  const hintKey = p.x25519PublicKey(hintSecret);
  const digest = preludeDigest({ envelopeId, kem, hintKey, entries: [] });

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

  // 3. The sealed header, then the entries that bind to it.
  const header: EnvelopeHeader = {
    envelopeId,
    createdAt,
    subject: checkText(input.subject, 'subject', MAX_SUBJECT_LENGTH),
    classification: checkText(input.classification, 'classification', MAX_CLASSIFICATION_LENGTH),
    contentType: checkText(input.contentType ?? DEFAULT_CONTENT_TYPE, 'contentType', MAX_CONTENT_TYPE_LENGTH),
    distribution: checkDistribution(input.distribution),
    sender: chain,
    recipients: recipients.map((r) => r.device.certId),
  };
  if (personal) header.personalDigests = personal.map((x) => personalDigest(x.salt, x.payload));
  const headerBytes = encodeHeader(header);
  if (headerBytes.length > MAX_HEADER_SIZE) throw new SealError('envelope header too large: shorten the distribution list');
  const headerDigest = p.sha256(headerBytes);

  // Every entry plaintext is padded to one size, so entries do not tell recipients apart.
  const plaintexts = recipients.map((_, i) => {
    const pers = personal?.[i];
    return encodeEntryPlaintext({ contentKey, headerDigest, recipientIndex: i, ...(pers ? { personal: pers } : {}) });
  });
  const entryLength = padme(4 + Math.max(...plaintexts.map((x) => x.length)));
  const info = labelled(Label.EnvelopeEntry, digest);
  const entries: EnvelopeEntry[] = recipients.map((r, i) => {
    const pk = r.device.encryption.publicKey;
    const recipientHintKey = hintPublicKey(kem, pk);
    const hint = deriveHint(p.x25519(hintSecret, recipientHintKey), digest, recipientHintKey);
    const { enc, ct } = sealBase(suite, pk, info, hint, padEntryPlaintext(plaintexts[i] as Uint8Array, entryLength), options);
    return { hint, enc, ct };
  });
  const preludeBytes = encodePrelude({ envelopeId, kem, hintKey, entries });
  if (preludeBytes.length > MAX_PRELUDE_SIZE)
    throw new SealError('envelope prelude too large: fewer recipients or smaller personal payloads');

  // 4. The stream: header frame now, body frames as the body arrives, the rest in final().
  const writer = new ChunkWriter(deriveStreamKey(contentKey, digest));
  const bodyHash = bodyHasher();
  const head = concat(
    framePrelude(preludeBytes),
    ...writer.write(frameHeader(FrameType.Header, headerBytes.length)),
    ...writer.write(headerBytes),
  );
  // The body frame being filled; grown on demand, like the chunk buffer.
  let pending = new Uint8Array(0);
  let pendingLength = 0;
  let finished = false;
  const bodyFrame = (data: Uint8Array) => [...writer.write(frameHeader(FrameType.Body, data.length)), ...writer.write(data)];

  return {
    envelopeId,
    head,
    update(body) {
      if (finished) throw new SealError('update after final');
      abytes(body, 'body');
      bodyHash.update(body);
      const out: Uint8Array[] = [];
      let o = 0;
      // A full body frame is written only once more bytes arrive, so every body frame but the
      // last holds exactly CHUNK_SIZE bytes and the last one is never empty.
      while (o < body.length) {
        if (pendingLength === CHUNK_SIZE) {
          out.push(...bodyFrame(pending));
          pendingLength = 0;
        }
        const n = Math.min(CHUNK_SIZE - pendingLength, body.length - o);
        if (pendingLength + n > pending.length) {
          const grown = new Uint8Array(Math.min(CHUNK_SIZE, Math.max(2 * pending.length, pendingLength + n)));
          grown.set(pending.subarray(0, pendingLength));
          pending = grown;
        }
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
      if (pendingLength > 0) out.push(...bodyFrame(pending.subarray(0, pendingLength)));
      const pad = paddingLength(writer.written + TRAILER_FRAME_LENGTH);
      if (pad >= 0) {
        out.push(...writer.write(frameHeader(FrameType.Padding, pad)));
        const zeros = new Uint8Array(Math.min(pad, CHUNK_SIZE));
        for (let left = pad; left > 0; left -= zeros.length) out.push(...writer.write(zeros.subarray(0, Math.min(left, zeros.length))));
      }
      const signature = p.ed25519Sign(signedMessage(digest, headerDigest, bodyHash.digest()), sender.signingSecretKey);
      out.push(...writer.write(frameHeader(FrameType.Trailer, SIGNATURE_LENGTH)), ...writer.write(signature), writer.finish());
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

/**
 * What a recipient keeps to show a third party what the sender sent it: with the sender's
 * certificates (in `header`), anyone can recompute the signed message and check the signature.
 */
export interface EnvelopeEvidence {
  preludeDigest: Uint8Array;
  /** The sealed header exactly as signed. */
  header: Uint8Array;
  bodyDigest: Uint8Array;
  signature: Uint8Array;
  /** With a personal payload: its salt and this recipient's index, to show which copy was received. */
  personal?: { recipientIndex: number; salt: Uint8Array };
}

export interface OpenedEnvelope extends OpenedHeader {
  body: Uint8Array;
  evidence: EnvelopeEvidence;
}

/**
 * Opens an envelope fed in pieces. Body pieces are returned as they authenticate under the
 * stream key, but the sender's signature over header and body is only checked by
 * {@link EnvelopeOpener.final}: until it returns, neither {@link unverifiedHeader} nor the
 * streamed body may be acted upon.
 */
export interface EnvelopeOpener {
  /** The header once opened and its sender chain verified; its signature is checked by final(). */
  readonly unverifiedHeader: OpenedHeader | undefined;
  push(bytes: Uint8Array): Uint8Array[];
  /**
   * Ends the input. The last body pieces come out here (the final chunk cannot be told from
   * others before the input ends); then the signature is checked.
   */
  final(): { rest: Uint8Array[]; header: OpenedHeader; evidence: EnvelopeEvidence; bodyLength: number };
}

type FrameState = 'start' | 'body' | 'body-ended' | 'padding' | 'done';

export function createOpener(recipient: RecipientCredentials, trust: TrustStore, options?: OpenOptions): EnvelopeOpener {
  const p = getProvider();
  const now = options?.now ?? nowSeconds();
  const device = recipient?.device;
  if (!device?.encryption) throw new ArgumentError('recipient.device: expected a decoded device certificate');
  const kem = device.encryption.kem;
  const suite = hpkeSuite(kem);
  abytes(recipient.encryptionSecretKey, 'encryptionSecretKey', 32);

  // The prelude, collected until complete.
  let preludeBuf: Uint8Array | undefined;
  let preludeFill = 0;
  const lengthPrefix = new Uint8Array(4);
  let prefixFill = 0;
  let prelude: EnvelopePrelude | undefined;
  let digest: Uint8Array | undefined;
  let entry: ReturnType<typeof decodeEntryPlaintext> | undefined;
  let reader: ChunkReader | undefined;

  // The frame parser over the decrypted stream.
  let state: FrameState = 'start';
  const frameHead = new Uint8Array(FRAME_HEADER_LENGTH);
  let frameHeadFill = 0;
  let frameType = 0;
  let frameLeft = 0;
  let frameBuf: Uint8Array | undefined; // header and trailer frames are assembled whole
  let frameBufFill = 0;
  let plaintextLength = 0;
  let plaintextOffset = 0; // bytes of the plaintext stream parsed so far
  let paddingFrameLength = 0;
  let header: OpenedHeader | undefined;
  let headerBytes: Uint8Array | undefined;
  let signature: Uint8Array | undefined;
  let bodyLength = 0;
  const bodyHash = bodyHasher();
  let failed: unknown;

  const findEntry = (pre: EnvelopePrelude) => {
    if (pre.kem !== kem) throw new OpenError('envelope KEM does not match this device');
    digest = preludeDigest(pre);
    const ownHintKey = hintPublicKey(kem, device.encryption.publicKey);
    let dh: Uint8Array;
    try {
      dh = p.x25519(hintSecretKey(kem, recipient.encryptionSecretKey), pre.hintKey);
    } catch (cause) {
      throw new OpenError('bad hint key', { cause });
    }
    const hint = deriveHint(dh, digest, ownHintKey);
    const info = labelled(Label.EnvelopeEntry, digest);
    for (const e of pre.entries) {
      if (!equalBytes(e.hint, hint)) continue;
      try {
        return decodeEntryPlaintext(openBase(suite, e.enc, recipient.encryptionSecretKey, info, e.hint, e.ct));
      } catch {
        // A hint collision (2^-128) or a damaged entry: try any other match.
      }
    }
    throw new OpenError('no entry for this device');
  };

  const onHeader = (data: Uint8Array) => {
    const e = entry as NonNullable<typeof entry>;
    if (!equalBytes(p.sha256(data), e.headerDigest)) throw new OpenError('header is not the one this entry was sealed with');
    const h = decodeHeader(data, MAX_HEADER_SIZE);
    if (!equalBytes(h.envelopeId, (prelude as EnvelopePrelude).envelopeId)) throw new OpenError('header names another envelope');
    const own = h.recipients[e.recipientIndex];
    if (own === undefined || !equalBytes(own, device.certId)) throw new OpenError('entry is not addressed to this device');
    const digests = h.personalDigests;
    if ((digests === undefined) !== (e.personal === undefined)) throw new OpenError('personal payload and header disagree');
    if (
      digests &&
      e.personal &&
      !equalBytes(digests[e.recipientIndex] as Uint8Array, personalDigest(e.personal.salt, e.personal.payload))
    ) {
      throw new OpenError('personal payload does not match its digest');
    }
    // Who the header says sent it; the trailer's signature confirms it.
    const sender = verifyDeviceChain(h.sender, trust, now);
    headerBytes = data;
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
      ...(e.personal ? { personal: e.personal.payload } : {}),
    };
  };

  const startFrame = (type: number, length: number) => {
    switch (type) {
      case FrameType.Header:
        if (state !== 'start' || length === 0 || length > MAX_HEADER_SIZE)
          throw new OpenError('header frame out of place or of a bad size');
        break;
      case FrameType.Body:
        if (state !== 'body' || length === 0 || length > CHUNK_SIZE) throw new OpenError('body frame out of place or of a bad size');
        if (length < CHUNK_SIZE) state = 'body-ended';
        break;
      case FrameType.Padding:
        if (state !== 'body' && state !== 'body-ended') throw new OpenError('padding frame out of place');
        // Its length is fixed by what precedes it and the trailer that must follow: check now,
        // so that an oversized padding frame is not read to its end.
        if (length !== paddingLength(plaintextOffset - FRAME_HEADER_LENGTH + TRAILER_FRAME_LENGTH))
          throw new OpenError('padding frame of a bad size');
        state = 'padding';
        paddingFrameLength = FRAME_HEADER_LENGTH + length;
        break;
      case FrameType.Trailer:
        if (state === 'start' || state === 'done' || length !== SIGNATURE_LENGTH)
          throw new OpenError('trailer frame out of place or of a bad size');
        break;
      default:
        throw new OpenError(`unknown frame type ${type}`);
    }
    frameType = type;
    frameLeft = length;
    frameBuf = type === FrameType.Header || type === FrameType.Trailer ? new Uint8Array(length) : undefined;
    frameBufFill = 0;
  };

  const endFrame = (): void => {
    if (frameType === FrameType.Header) {
      onHeader(frameBuf as Uint8Array);
      state = 'body';
    } else if (frameType === FrameType.Trailer) {
      signature = frameBuf as Uint8Array;
      state = 'done';
    }
    frameType = 0;
    frameBuf = undefined;
  };

  /** Parses decrypted stream bytes; returns the body pieces they hold. */
  const parse = (pt: Uint8Array): Uint8Array[] => {
    plaintextLength += pt.length;
    const out: Uint8Array[] = [];
    let o = 0;
    while (o < pt.length) {
      if (state === 'done') throw new OpenError('bytes after the trailer');
      if (frameType === 0) {
        const n = Math.min(FRAME_HEADER_LENGTH - frameHeadFill, pt.length - o);
        frameHead.set(pt.subarray(o, o + n), frameHeadFill);
        frameHeadFill += n;
        o += n;
        plaintextOffset += n;
        if (frameHeadFill < FRAME_HEADER_LENGTH) break;
        frameHeadFill = 0;
        startFrame(frameHead[0] as number, readU32be(frameHead, 1));
        if (frameLeft === 0) endFrame();
        continue;
      }
      const n = Math.min(frameLeft, pt.length - o);
      const data = pt.subarray(o, o + n);
      o += n;
      plaintextOffset += n;
      frameLeft -= n;
      if (frameBuf) {
        frameBuf.set(data, frameBufFill);
        frameBufFill += n;
      } else if (frameType === FrameType.Body) {
        bodyHash.update(data);
        bodyLength += n;
        out.push(data);
      } else {
        let acc = 0;
        for (const b of data) acc |= b;
        if (acc !== 0) throw new OpenError('padding is not zero');
      }
      if (frameLeft === 0) endFrame();
    }
    return out;
  };

  const onPrelude = (bytes: Uint8Array) => {
    prelude = decodePrelude(bytes);
    entry = findEntry(prelude);
    reader = new ChunkReader(deriveStreamKey(entry.contentKey, digest as Uint8Array));
  };

  const guard = <T>(f: () => T): T => {
    if (failed !== undefined) throw failed;
    try {
      return f();
    } catch (err) {
      // The public prelude fails with DecodeError; sender checks with VerifyError; anything
      // once the prelude decoded (key unwrap, stream, inner structures) is one uniform OpenError.
      failed = err instanceof VerifyError || (err instanceof DecodeError && prelude === undefined) ? err : toOpenError(err);
      throw failed;
    }
  };

  return {
    get unverifiedHeader() {
      return header;
    },
    push(bytes) {
      abytes(bytes, 'envelope bytes');
      return guard(() => {
        let o = 0;
        if (!reader) {
          if (prefixFill < 4) {
            const n = Math.min(4 - prefixFill, bytes.length);
            lengthPrefix.set(bytes.subarray(0, n), prefixFill);
            prefixFill += n;
            o = n;
            if (prefixFill < 4) return [];
            const size = readU32be(lengthPrefix, 0);
            if (size > MAX_PRELUDE_SIZE)
              throw new DecodeError(`envelope: prelude of ${size} bytes exceeds the limit of ${MAX_PRELUDE_SIZE}`);
            preludeBuf = new Uint8Array(size);
          }
          const buf = preludeBuf as Uint8Array;
          const n = Math.min(buf.length - preludeFill, bytes.length - o);
          buf.set(bytes.subarray(o, o + n), preludeFill);
          preludeFill += n;
          o += n;
          if (preludeFill < buf.length) return [];
          onPrelude(buf);
        }
        const out: Uint8Array[] = [];
        for (const pt of (reader as ChunkReader).push(bytes.subarray(o))) out.push(...parse(pt));
        return out;
      });
    },
    final() {
      return guard(() => {
        if (!reader) throw new DecodeError('envelope: truncated prelude');
        const rest = parse(reader.end());
        if (state !== 'done' || !header || !signature || !headerBytes) throw new OpenError('truncated stream');
        // Padding is canonical: exactly what the rule gives for the rest of the stream.
        const expected = paddingLength(plaintextLength - paddingFrameLength);
        if (paddingFrameLength !== (expected < 0 ? 0 : FRAME_HEADER_LENGTH + expected))
          throw new OpenError('padding does not follow the padding rule');
        const bodyDigest = bodyHash.digest();
        const headerDigest = p.sha256(headerBytes);
        if (!p.ed25519Verify(signature, signedMessage(digest as Uint8Array, headerDigest, bodyDigest), header.sender.device.signingKey)) {
          throw new VerifyError(VerifyReason.BadSignature, 'the sender signature over the envelope does not verify');
        }
        const evidence: EnvelopeEvidence = { preludeDigest: digest as Uint8Array, header: headerBytes, bodyDigest, signature };
        const pers = (entry as NonNullable<typeof entry>).personal;
        if (pers) evidence.personal = { recipientIndex: header.recipientIndex, salt: pers.salt };
        return { rest, header, evidence, bodyLength };
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
  const { rest, header, evidence } = o.final();
  return { ...header, body: concat(...chunks, ...rest), evidence };
}

/**
 * Checks evidence kept from an opened envelope: the sender's signature over header and body
 * and, given the personal payload, that it is the copy the header commits to for this recipient.
 * `body` (optional) is checked against the signed body digest.
 */
export function verifyEvidence(
  evidence: EnvelopeEvidence,
  signingKey: Uint8Array,
  content?: { body?: Uint8Array; personal?: Uint8Array },
): boolean {
  const p = getProvider();
  if (
    !p.ed25519Verify(evidence.signature, signedMessage(evidence.preludeDigest, p.sha256(evidence.header), evidence.bodyDigest), signingKey)
  )
    return false;
  if (content?.body !== undefined && !equalBytes(bodyHasher().update(content.body).digest(), evidence.bodyDigest)) return false;
  if (content?.personal !== undefined) {
    if (!evidence.personal) return false;
    let digests: Uint8Array[] | undefined;
    try {
      digests = decodeHeader(evidence.header, MAX_HEADER_SIZE).personalDigests;
    } catch {
      return false;
    }
    const expected = digests?.[evidence.personal.recipientIndex];
    if (!expected || !equalBytes(expected, personalDigest(evidence.personal.salt, content.personal))) return false;
  }
  return true;
}
