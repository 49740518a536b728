/**
 * Relay frames (spec/relay.md): the messages a client and a relay exchange over one WebSocket,
 * and the bytes a device signs to authenticate. Pure: no I/O, runs in browsers.
 *
 * Every frame is one binary WebSocket message holding one top-level structure in deterministic
 * CBOR (cbor.ts): key 0 the wire version, key 1 the frame type (40-48 from client to relay,
 * 50-58 from relay to client), fields from key 2. Decoders check the size limit before
 * anything else, then the canonical encoding, version, type and every field, and reject
 * unknown keys. Requests carry a `requestId` that the relay echoes in the response.
 *
 * The relay imports only these wire types and the envelope prelude parser; it never sees a key.
 */
import { utf8 } from './bytes.js';
import { type CborValue, cborMap, decodeCbor, encodeStructure, MapReader, StructType, WIRE_VERSION } from './cbor.js';
import { CborScanner, headLength, plainView } from './cbor-scan.js';
import { ArgumentError, DecodeError } from './errors.js';
import { CERT_MAX_SIZE, REVOCATION_LIST_MAX_SIZE } from './identity.js';
import { Label, labelled } from './labels.js';
import { getProvider } from './provider.js';

// ---------------------------------------------------------------------------------------------
// Constants

/** Bytes of a mailbox id: the certificate id of the device that owns the mailbox. */
export const MAILBOX_ID_LENGTH = 16;
/** Bytes of a relay-assigned message id. */
export const MESSAGE_ID_LENGTH = 16;
/** Bytes of a client-chosen message id (random, fresh per envelope; makes a retried Send idempotent). */
export const CLIENT_MESSAGE_ID_LENGTH = 16;
/** Bytes of an authentication challenge. */
export const RELAY_CHALLENGE_LENGTH = 32;
/** Largest request id (u32). */
export const MAX_REQUEST_ID = 0xffffffff;
/** Most routes of one Send: one per envelope entry. */
export const MAX_ROUTES = 4096;
/** Most message ids one Ack may carry. */
export const MAX_ACK_IDS = 4096;
/** Largest opaque prekey. */
export const MAX_PREKEY_SIZE = 4096;
/** Most one-time prekeys per upload. */
export const MAX_PREKEYS_PER_UPLOAD = 1000;
/** Largest prekey id (u32). */
export const MAX_PREKEY_ID = 0xffffffff;
/** Most entries in one directory result. */
export const MAX_DIRECTORY_RESULTS = 256;
/** Longest directory text query, in UTF-16 code units. */
export const MAX_DIRECTORY_QUERY_LENGTH = 256;
/** Longest error code and error message in an Error frame. */
export const MAX_ERROR_CODE_LENGTH = 64;
export const MAX_ERROR_MESSAGE_LENGTH = 1024;
/** Default frame size limit (the relay's `maxFrameBytes`); decoders take the limit as an argument. */
export const DEFAULT_MAX_FRAME_SIZE = 32 << 20;

/** HTTP paths of a relay. */
export const RelayPath = {
  Challenge: '/v1/challenge',
  Connect: '/v1/connect',
  Health: '/healthz',
  Metrics: '/metrics',
} as const;

/**
 * Authentication travels in these request headers of the WebSocket upgrade (lower case, as
 * Node reports them), each value base64url without padding. Browsers, which cannot set headers
 * on a WebSocket, may send the same values as query parameters of the connect URL instead.
 */
export const RelayAuthHeader = {
  PersonCert: 'valise-person-cert',
  DeviceCert: 'valise-device-cert',
  Challenge: 'valise-challenge',
  Signature: 'valise-signature',
  /** Response header of a refused upgrade or request: the error code. */
  Error: 'valise-error',
} as const;

/** Query parameter names equivalent to {@link RelayAuthHeader} (for browsers). */
export const RelayAuthQuery = { PersonCert: 'pc', DeviceCert: 'dc', Challenge: 'ch', Signature: 'sig' } as const;

/**
 * Stable error codes of Error frames and refused HTTP requests. Clients branch on these;
 * messages are for humans and may change.
 */
export const RelayErrorCode = {
  // Authentication (HTTP 401 / 400 on the upgrade; never a socket)
  AuthMalformed: 'auth-malformed',
  AuthChallenge: 'auth-challenge',
  AuthHost: 'auth-host',
  AuthCertificate: 'auth-certificate',
  AuthRevoked: 'auth-revoked',
  AuthSignature: 'auth-signature',
  // HTTP
  NotFound: 'not-found',
  Unavailable: 'unavailable',
  // Frames
  BadFrame: 'bad-frame',
  BadEnvelope: 'bad-envelope',
  BadRoutes: 'bad-routes',
  RateLimited: 'rate-limited',
  MailboxFull: 'mailbox-full',
  PrekeyLimit: 'prekey-limit',
  DirectoryInvalid: 'directory-invalid',
  RevocationInvalid: 'revocation-invalid',
  RevocationStale: 'revocation-stale',
  ShuttingDown: 'shutting-down',
  Internal: 'internal',
} as const;
export type RelayErrorCode = (typeof RelayErrorCode)[keyof typeof RelayErrorCode];

/** WebSocket close codes the relay uses. */
export const RelayCloseCode = {
  Normal: 1000,
  /** The relay is shutting down. */
  GoingAway: 1001,
  /** A text frame: only binary frames are defined. */
  UnsupportedData: 1003,
  /** Policy: revoked or expired certificate, too many bad frames, a peer that stopped reading. */
  Policy: 1008,
  /** A frame above the size limit. */
  TooBig: 1009,
  Internal: 1011,
  /** Another connection of the same device replaced this one. */
  Superseded: 4000,
} as const;

// ---------------------------------------------------------------------------------------------
// Authentication

/**
 * The message a device signs with its Ed25519 signing key to authenticate to a relay:
 * `labelled("valise/v1/relay/auth", challenge, utf8(host))`, where `host` is the authority of
 * the connect URL exactly as sent in the HTTP `Host` header (for example `127.0.0.1:8443`).
 */
export function relayAuthMessage(challenge: Uint8Array, host: string): Uint8Array {
  if (!(challenge instanceof Uint8Array) || challenge.length !== RELAY_CHALLENGE_LENGTH) {
    throw new ArgumentError(`challenge: expected ${RELAY_CHALLENGE_LENGTH} bytes`);
  }
  if (typeof host !== 'string' || host.length === 0 || host.length > 1024) throw new ArgumentError('host: expected 1 to 1024 characters');
  return labelled(Label.RelayAuth, challenge, utf8(host));
}

/**
 * The relay's id of a stored message: the first 16 bytes of
 * `SHA-256(labelled("valise/v1/relay/message-id", senderDeviceCertId, clientMessageId))`.
 * Deterministic, so that a retried Send (same sender, same client message id) names the same
 * message, and a sender can know the id before the relay answers.
 */
export function relayMessageId(senderDeviceCertId: Uint8Array, clientMessageId: Uint8Array): Uint8Array {
  if (!(senderDeviceCertId instanceof Uint8Array) || senderDeviceCertId.length !== MAILBOX_ID_LENGTH) {
    throw new ArgumentError(`senderDeviceCertId: expected ${MAILBOX_ID_LENGTH} bytes`);
  }
  if (!(clientMessageId instanceof Uint8Array) || clientMessageId.length !== CLIENT_MESSAGE_ID_LENGTH) {
    throw new ArgumentError(`clientMessageId: expected ${CLIENT_MESSAGE_ID_LENGTH} bytes`);
  }
  const input = new Uint8Array(MESSAGE_ID_PREFIX.length + 32);
  input.set(MESSAGE_ID_PREFIX, 0);
  input.set(senderDeviceCertId, MESSAGE_ID_PREFIX.length);
  input.set(clientMessageId, MESSAGE_ID_PREFIX.length + 16);
  return getProvider().sha256(input).slice(0, MESSAGE_ID_LENGTH);
}

/** `labelled("valise/v1/relay/message-id")`, computed once: the label is a constant prefix. */
const MESSAGE_ID_PREFIX = labelled(Label.RelayMessageId);

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const B64URL_INDEX = new Int16Array(128).fill(-1);
for (let i = 0; i < B64URL.length; i++) B64URL_INDEX[B64URL.charCodeAt(i)] = i;

/** base64url (RFC 4648 §5) without padding. */
export function toBase64Url(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = ((bytes[i] as number) << 16) | ((bytes[i + 1] as number) << 8) | (bytes[i + 2] as number);
    out += B64URL.charAt(n >>> 18) + B64URL.charAt((n >>> 12) & 63) + B64URL.charAt((n >>> 6) & 63) + B64URL.charAt(n & 63);
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = (bytes[i] as number) << 16;
    out += B64URL.charAt(n >>> 18) + B64URL.charAt((n >>> 12) & 63);
  } else if (rest === 2) {
    const n = ((bytes[i] as number) << 16) | ((bytes[i + 1] as number) << 8);
    out += B64URL.charAt(n >>> 18) + B64URL.charAt((n >>> 12) & 63) + B64URL.charAt((n >>> 6) & 63);
  }
  return out;
}

/**
 * Strict base64url decoding: the url-safe alphabet only, no padding, no whitespace, and the
 * unused low bits of the last character zero (so every byte string has exactly one encoding).
 */
export function fromBase64Url(text: string, maxBytes = Number.MAX_SAFE_INTEGER): Uint8Array {
  if (typeof text !== 'string') throw new DecodeError('base64url: expected a string');
  const len = text.length;
  if (len % 4 === 1) throw new DecodeError('base64url: impossible length');
  const n = Math.floor((len * 3) / 4);
  if (n > maxBytes) throw new DecodeError(`base64url: more than ${maxBytes} bytes`);
  const out = new Uint8Array(n);
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < len; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? (B64URL_INDEX[c] as number) : -1;
    if (v < 0) throw new DecodeError('base64url: character outside the alphabet');
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >>> bits) & 0xff;
    }
    acc &= (1 << bits) - 1;
  }
  if (acc !== 0) throw new DecodeError('base64url: non-zero trailing bits');
  return out;
}

// ---------------------------------------------------------------------------------------------
// Frame types

export const RelayFrameType = {
  Send: StructType.RelaySend,
  Ack: StructType.RelayAck,
  PrekeyUpload: StructType.RelayPrekeyUpload,
  PrekeyFetch: StructType.RelayPrekeyFetch,
  PrekeyCount: StructType.RelayPrekeyCount,
  DirectoryPublish: StructType.RelayDirectoryPublish,
  DirectoryLookup: StructType.RelayDirectoryLookup,
  RevocationPublish: StructType.RelayRevocationPublish,
  RevocationGet: StructType.RelayRevocationGet,
  Stored: StructType.RelayStored,
  Deliver: StructType.RelayDeliver,
  Ok: StructType.RelayOk,
  Prekeys: StructType.RelayPrekeys,
  PrekeyCountResult: StructType.RelayPrekeyCountResult,
  PrekeysLow: StructType.RelayPrekeysLow,
  DirectoryResult: StructType.RelayDirectoryResult,
  RevocationList: StructType.RelayRevocationList,
  Error: StructType.RelayError,
  BacklogEnd: StructType.RelayBacklogEnd,
} as const;
export type RelayFrameType = (typeof RelayFrameType)[keyof typeof RelayFrameType];

/** Short names of frame types, for logs and metrics. */
export const RELAY_FRAME_NAMES: Readonly<Record<RelayFrameType, string>> = {
  [RelayFrameType.Send]: 'send',
  [RelayFrameType.Ack]: 'ack',
  [RelayFrameType.PrekeyUpload]: 'prekey-upload',
  [RelayFrameType.PrekeyFetch]: 'prekey-fetch',
  [RelayFrameType.PrekeyCount]: 'prekey-count',
  [RelayFrameType.DirectoryPublish]: 'directory-publish',
  [RelayFrameType.DirectoryLookup]: 'directory-lookup',
  [RelayFrameType.RevocationPublish]: 'revocation-publish',
  [RelayFrameType.RevocationGet]: 'revocation-get',
  [RelayFrameType.Stored]: 'stored',
  [RelayFrameType.Deliver]: 'deliver',
  [RelayFrameType.Ok]: 'ok',
  [RelayFrameType.Prekeys]: 'prekeys',
  [RelayFrameType.PrekeyCountResult]: 'prekey-count-result',
  [RelayFrameType.PrekeysLow]: 'prekeys-low',
  [RelayFrameType.DirectoryResult]: 'directory-result',
  [RelayFrameType.RevocationList]: 'revocation-list',
  [RelayFrameType.Error]: 'error',
  [RelayFrameType.BacklogEnd]: 'backlog-end',
};

/** Where one envelope entry goes: entry `entryIndex` of the prelude to mailbox `mailbox`. */
export interface RelayRoute {
  entryIndex: number;
  mailbox: Uint8Array;
}

export interface RelayPrekey {
  id: number;
  /** Opaque to the relay, at most {@link MAX_PREKEY_SIZE} bytes. */
  bytes: Uint8Array;
}

export interface RelayDirectoryEntry {
  personCert: Uint8Array;
  deviceCert: Uint8Array;
}

export type RelayDirectoryQuery = { personId: Uint8Array } | { deviceCertId: Uint8Array } | { text: string };

// Client -> relay

export interface SendFrame {
  type: typeof RelayFrameType.Send;
  requestId: number;
  clientMessageId: Uint8Array;
  /** A whole sealed envelope: `u32be(P) || prelude || records` (spec/envelope.md). */
  envelope: Uint8Array;
  /** One route per prelude entry, with distinct entry indices and distinct mailboxes. */
  routes: RelayRoute[];
}

export interface AckFrame {
  type: typeof RelayFrameType.Ack;
  requestId: number;
  messageIds: Uint8Array[];
}

export interface PrekeyUploadFrame {
  type: typeof RelayFrameType.PrekeyUpload;
  requestId: number;
  prekeys: RelayPrekey[];
  signedPrekey?: RelayPrekey;
}

export interface PrekeyFetchFrame {
  type: typeof RelayFrameType.PrekeyFetch;
  requestId: number;
  mailbox: Uint8Array;
}

export interface PrekeyCountFrame {
  type: typeof RelayFrameType.PrekeyCount;
  requestId: number;
}

export interface DirectoryPublishFrame {
  type: typeof RelayFrameType.DirectoryPublish;
  requestId: number;
  personCert: Uint8Array;
  deviceCert: Uint8Array;
}

export interface DirectoryLookupFrame {
  type: typeof RelayFrameType.DirectoryLookup;
  requestId: number;
  query: RelayDirectoryQuery;
}

export interface RevocationPublishFrame {
  type: typeof RelayFrameType.RevocationPublish;
  requestId: number;
  list: Uint8Array;
}

export interface RevocationGetFrame {
  type: typeof RelayFrameType.RevocationGet;
  requestId: number;
}

export type ClientFrame =
  | SendFrame
  | AckFrame
  | PrekeyUploadFrame
  | PrekeyFetchFrame
  | PrekeyCountFrame
  | DirectoryPublishFrame
  | DirectoryLookupFrame
  | RevocationPublishFrame
  | RevocationGetFrame;

// Relay -> client

/** The envelope is durably stored for every route. */
export interface StoredFrame {
  type: typeof RelayFrameType.Stored;
  requestId: number;
  clientMessageId: Uint8Array;
  messageId: Uint8Array;
}

/** One stored message for this mailbox; the client acknowledges it with Ack. */
export interface DeliverFrame {
  type: typeof RelayFrameType.Deliver;
  messageId: Uint8Array;
  /** This recipient's slice: a one-entry prelude followed by the shared records. */
  envelope: Uint8Array;
  /** When the relay stored it, seconds since the epoch. */
  storedAt: number;
}

export interface OkFrame {
  type: typeof RelayFrameType.Ok;
  requestId: number;
}

export interface PrekeysFrame {
  type: typeof RelayFrameType.Prekeys;
  requestId: number;
  mailbox: Uint8Array;
  /** Absent when the mailbox has no one-time prekey left. */
  oneTime?: RelayPrekey;
  signed?: RelayPrekey;
}

export interface PrekeyCountResultFrame {
  type: typeof RelayFrameType.PrekeyCountResult;
  requestId: number;
  count: number;
  hasSigned: boolean;
}

export interface PrekeysLowFrame {
  type: typeof RelayFrameType.PrekeysLow;
  remaining: number;
}

export interface DirectoryResultFrame {
  type: typeof RelayFrameType.DirectoryResult;
  requestId: number;
  entries: RelayDirectoryEntry[];
}

export interface RevocationListFrame {
  type: typeof RelayFrameType.RevocationList;
  requestId: number;
  /** Absent when the relay holds no list. */
  list?: Uint8Array;
}

/**
 * Sent once per connection, after the relay has pushed every delivery the mailbox held when the
 * connection opened: a client that only wants to collect what waits can stop here.
 */
export interface BacklogEndFrame {
  type: typeof RelayFrameType.BacklogEnd;
}

export interface ErrorFrame {
  type: typeof RelayFrameType.Error;
  /** A {@link RelayErrorCode}; clients treat an unknown code as a generic failure. */
  code: string;
  message: string;
  /** The request that failed, when the frame decoded far enough to know it. */
  requestId?: number;
}

export type RelayFrame =
  | StoredFrame
  | DeliverFrame
  | OkFrame
  | PrekeysFrame
  | PrekeyCountResultFrame
  | PrekeysLowFrame
  | DirectoryResultFrame
  | RevocationListFrame
  | ErrorFrame
  | BacklogEndFrame;

export type AnyRelayFrame = ClientFrame | RelayFrame;

// ---------------------------------------------------------------------------------------------
// Encoding

const prekeyMap = (p: RelayPrekey) =>
  cborMap([
    [0, p.id],
    [1, p.bytes],
  ]);

function queryMap(q: RelayDirectoryQuery): CborValue {
  if ('personId' in q) return cborMap([[0, q.personId]]);
  if ('deviceCertId' in q) return cborMap([[1, q.deviceCertId]]);
  return cborMap([[2, q.text]]);
}

function fieldsOf(f: AnyRelayFrame): [number, CborValue | undefined][] {
  switch (f.type) {
    case RelayFrameType.Send:
      return [
        [2, f.requestId],
        [3, f.clientMessageId],
        [4, f.envelope],
        [
          5,
          f.routes.map((r) =>
            cborMap([
              [0, r.entryIndex],
              [1, r.mailbox],
            ]),
          ),
        ],
      ];
    case RelayFrameType.Ack:
      return [
        [2, f.requestId],
        [3, f.messageIds],
      ];
    case RelayFrameType.PrekeyUpload:
      return [
        [2, f.requestId],
        [3, f.prekeys.map(prekeyMap)],
        [4, f.signedPrekey === undefined ? undefined : prekeyMap(f.signedPrekey)],
      ];
    case RelayFrameType.PrekeyFetch:
      return [
        [2, f.requestId],
        [3, f.mailbox],
      ];
    case RelayFrameType.PrekeyCount:
    case RelayFrameType.RevocationGet:
    case RelayFrameType.Ok:
      return [[2, f.requestId]];
    case RelayFrameType.DirectoryPublish:
      return [
        [2, f.requestId],
        [3, f.personCert],
        [4, f.deviceCert],
      ];
    case RelayFrameType.DirectoryLookup:
      return [
        [2, f.requestId],
        [3, queryMap(f.query)],
      ];
    case RelayFrameType.RevocationPublish:
      return [
        [2, f.requestId],
        [3, f.list],
      ];
    case RelayFrameType.Stored:
      return [
        [2, f.requestId],
        [3, f.clientMessageId],
        [4, f.messageId],
      ];
    case RelayFrameType.Deliver:
      return [
        [2, f.messageId],
        [3, f.envelope],
        [4, f.storedAt],
      ];
    case RelayFrameType.Prekeys:
      return [
        [2, f.requestId],
        [3, f.mailbox],
        [4, f.oneTime === undefined ? undefined : prekeyMap(f.oneTime)],
        [5, f.signed === undefined ? undefined : prekeyMap(f.signed)],
      ];
    case RelayFrameType.PrekeyCountResult:
      return [
        [2, f.requestId],
        [3, f.count],
        [4, f.hasSigned],
      ];
    case RelayFrameType.PrekeysLow:
      return [[2, f.remaining]];
    case RelayFrameType.BacklogEnd:
      return [];
    case RelayFrameType.DirectoryResult:
      return [
        [2, f.requestId],
        [
          3,
          f.entries.map((e) =>
            cborMap([
              [0, e.personCert],
              [1, e.deviceCert],
            ]),
          ),
        ],
      ];
    case RelayFrameType.RevocationList:
      return [
        [2, f.requestId],
        [3, f.list],
      ];
    case RelayFrameType.Error:
      return [
        [2, f.code],
        [3, f.message],
        [4, f.requestId],
      ];
    default:
      throw new ArgumentError(`unknown frame type ${String((f as { type: unknown }).type)}`);
  }
}

/**
 * Encodes a frame. The encoder does not re-check field limits (the decoders do), except that an
 * Error frame's message is cut to {@link MAX_ERROR_MESSAGE_LENGTH} so that it always decodes.
 *
 * The frames a relay sends for every message (Deliver, Stored, Ok) are written directly, byte for
 * byte as the generic deterministic encoder writes them (a test compares the two on random
 * frames): they are most of a relay's encoding work, and a Deliver is written from its prelude
 * and records without first joining them.
 */
export function encodeRelayFrame(frame: AnyRelayFrame): Uint8Array {
  switch (frame.type) {
    case RelayFrameType.Deliver:
      return encodeDeliverFrame(frame.messageId, [frame.envelope], frame.storedAt);
    case RelayFrameType.Stored:
      return encodeStoredFrame(frame.requestId, frame.clientMessageId, frame.messageId);
    case RelayFrameType.Ok:
      return encodeOkFrame(frame.requestId);
    case RelayFrameType.Error:
      if (frame.message.length > MAX_ERROR_MESSAGE_LENGTH) {
        return encodeRelayFrameGenericForTesting({ ...frame, message: frame.message.slice(0, MAX_ERROR_MESSAGE_LENGTH) });
      }
      return encodeRelayFrameGenericForTesting(frame);
    default:
      return encodeRelayFrameGenericForTesting(frame);
  }
}

/** The generic path of {@link encodeRelayFrame} (deterministic CBOR through `encodeStructure`), for tests. */
export function encodeRelayFrameGenericForTesting(frame: AnyRelayFrame): Uint8Array {
  return encodeStructure(frame.type, fieldsOf(frame));
}

/** Writes a shortest-form CBOR head of major type `major` and argument `n` at `o`; returns the new offset. */
function writeHead(out: Uint8Array, o: number, major: number, n: number): number {
  const m = major << 5;
  if (n < 24) {
    out[o] = m | n;
    return o + 1;
  }
  if (n < 0x100) {
    out[o] = m | 24;
    out[o + 1] = n;
    return o + 2;
  }
  if (n < 0x10000) {
    out[o] = m | 25;
    out[o + 1] = n >>> 8;
    out[o + 2] = n & 0xff;
    return o + 3;
  }
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  if (n <= 0xffffffff) {
    out[o] = m | 26;
    view.setUint32(o + 1, n, false);
    return o + 5;
  }
  out[o] = m | 27;
  view.setBigUint64(o + 1, BigInt(n), false);
  return o + 9;
}

function checkUint(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new ArgumentError(`${what}: expected an unsigned safe integer`);
}

function checkId(id: Uint8Array, what: string): void {
  if (!(id instanceof Uint8Array) || id.length !== 16) throw new ArgumentError(`${what}: expected 16 bytes`);
}

/**
 * A Deliver frame whose envelope is the concatenation of `parts` (a recipient's prelude and the
 * shared records), written without joining them first. `allocate` gives the output array; a
 * server may pass one that skips zero-filling (every byte is written), such as Node's
 * `Buffer.allocUnsafe`.
 */
export function encodeDeliverFrame(
  messageId: Uint8Array,
  parts: readonly Uint8Array[],
  storedAt: number,
  allocate: (size: number) => Uint8Array = (size) => new Uint8Array(size),
): Uint8Array {
  checkId(messageId, 'messageId');
  checkUint(storedAt, 'storedAt');
  let envelopeLength = 0;
  for (const p of parts) envelopeLength += p.length;
  // {0: 1, 1: 51, 2: messageId, 3: envelope, 4: storedAt}
  const size = 6 + 2 + 16 + 1 + headLength(envelopeLength) + envelopeLength + 1 + headLength(storedAt);
  const out = allocate(size);
  out.set([0xa5, 0x00, 0x01, 0x01, 0x18, RelayFrameType.Deliver, 0x02, 0x50], 0);
  out.set(messageId, 8);
  let o = 24;
  out[o++] = 0x03;
  o = writeHead(out, o, 2, envelopeLength);
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  out[o++] = 0x04;
  writeHead(out, o, 0, storedAt);
  return out;
}

function encodeStoredFrame(requestId: number, clientMessageId: Uint8Array, messageId: Uint8Array): Uint8Array {
  checkUint(requestId, 'requestId');
  checkId(clientMessageId, 'clientMessageId');
  checkId(messageId, 'messageId');
  // {0: 1, 1: 50, 2: requestId, 3: clientMessageId, 4: messageId}
  const out = new Uint8Array(7 + headLength(requestId) + 2 * 18);
  out.set([0xa5, 0x00, 0x01, 0x01, 0x18, RelayFrameType.Stored, 0x02], 0);
  let o = writeHead(out, 7, 0, requestId);
  out[o++] = 0x03;
  out[o++] = 0x50;
  out.set(clientMessageId, o);
  o += 16;
  out[o++] = 0x04;
  out[o++] = 0x50;
  out.set(messageId, o);
  return out;
}

function encodeOkFrame(requestId: number): Uint8Array {
  checkUint(requestId, 'requestId');
  // {0: 1, 1: 52, 2: requestId}
  const out = new Uint8Array(7 + headLength(requestId));
  out.set([0xa3, 0x00, 0x01, 0x01, 0x18, RelayFrameType.Ok, 0x02], 0);
  writeHead(out, 7, 0, requestId);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Decoding

const CLIENT_TYPES: ReadonlySet<number> = new Set([
  RelayFrameType.Send,
  RelayFrameType.Ack,
  RelayFrameType.PrekeyUpload,
  RelayFrameType.PrekeyFetch,
  RelayFrameType.PrekeyCount,
  RelayFrameType.DirectoryPublish,
  RelayFrameType.DirectoryLookup,
  RelayFrameType.RevocationPublish,
  RelayFrameType.RevocationGet,
]);
const RELAY_TYPES: ReadonlySet<number> = new Set([
  RelayFrameType.Stored,
  RelayFrameType.Deliver,
  RelayFrameType.Ok,
  RelayFrameType.Prekeys,
  RelayFrameType.PrekeyCountResult,
  RelayFrameType.PrekeysLow,
  RelayFrameType.DirectoryResult,
  RelayFrameType.RevocationList,
  RelayFrameType.Error,
  RelayFrameType.BacklogEnd,
]);

/** Decodes the frame header and returns a reader positioned on the fields, or throws. */
function readHeader(
  bytes: Uint8Array,
  maxSize: number,
  allowed: ReadonlySet<number>,
  what: string,
): { r: MapReader; type: RelayFrameType } {
  // decodeCbor checks the size limit before parsing anything.
  const r = MapReader.from(decodeCbor(bytes, maxSize, what), what);
  const v = r.uint(0, 'version');
  if (v !== WIRE_VERSION) throw new DecodeError(`${what}: unsupported version ${v}`);
  const t = r.uint(1, 'type');
  if (!allowed.has(t)) throw new DecodeError(`${what}: unexpected frame type ${t}`);
  return { r, type: t as RelayFrameType };
}

const requestId = (r: MapReader) => r.uint(2, 'requestId', MAX_REQUEST_ID);
const id16 = (r: MapReader, key: number, field: string) => r.bytes(key, field, { len: 16 });

function readPrekey(value: CborValue, what: string): RelayPrekey {
  const m = MapReader.from(value, what);
  const p = { id: m.uint(0, 'id', MAX_PREKEY_ID), bytes: m.bytes(1, 'bytes', { min: 1, max: MAX_PREKEY_SIZE }) };
  m.done();
  return p;
}

function readIds(items: CborValue[], what: string): Uint8Array[] {
  return items.map((x, i) => {
    if (!(x instanceof Uint8Array) || x.length !== MESSAGE_ID_LENGTH)
      throw new DecodeError(`${what}[${i}]: expected ${MESSAGE_ID_LENGTH} bytes`);
    return x;
  });
}

function readCert(r: MapReader, key: number, field: string): Uint8Array {
  return r.bytes(key, field, { min: 1, max: CERT_MAX_SIZE });
}

function readClientFields(r: MapReader, type: RelayFrameType, maxSize: number): ClientFrame {
  const w = r.what;
  switch (type) {
    case RelayFrameType.Send: {
      const f: SendFrame = {
        type,
        requestId: requestId(r),
        clientMessageId: id16(r, 3, 'clientMessageId'),
        envelope: r.bytes(4, 'envelope', { min: 5, max: maxSize }),
        routes: r.array(5, 'routes', MAX_ROUTES).map((item, i) => {
          const m = MapReader.from(item, `${w}.routes[${i}]`);
          const route = { entryIndex: m.uint(0, 'entryIndex', MAX_ROUTES - 1), mailbox: id16(m, 1, 'mailbox') };
          m.done();
          return route;
        }),
      };
      if (f.routes.length === 0) throw new DecodeError(`${w}: no routes`);
      return f;
    }
    case RelayFrameType.Ack: {
      const messageIds = readIds(r.array(3, 'messageIds', MAX_ACK_IDS), `${w}.messageIds`);
      if (messageIds.length === 0) throw new DecodeError(`${w}: no message ids`);
      return { type, requestId: requestId(r), messageIds };
    }
    case RelayFrameType.PrekeyUpload: {
      const f: PrekeyUploadFrame = {
        type,
        requestId: requestId(r),
        prekeys: r.array(3, 'prekeys', MAX_PREKEYS_PER_UPLOAD).map((x, i) => readPrekey(x, `${w}.prekeys[${i}]`)),
      };
      const signed = r.optional(4, (k) => readPrekey(r.mapAt(k, 'signedPrekey').map, `${w}.signedPrekey`));
      if (signed !== undefined) f.signedPrekey = signed;
      if (f.prekeys.length === 0 && signed === undefined) throw new DecodeError(`${w}: nothing to upload`);
      return f;
    }
    case RelayFrameType.PrekeyFetch:
      return { type, requestId: requestId(r), mailbox: id16(r, 3, 'mailbox') };
    case RelayFrameType.PrekeyCount:
    case RelayFrameType.RevocationGet:
      return { type, requestId: requestId(r) };
    case RelayFrameType.DirectoryPublish:
      return { type, requestId: requestId(r), personCert: readCert(r, 3, 'personCert'), deviceCert: readCert(r, 4, 'deviceCert') };
    case RelayFrameType.DirectoryLookup: {
      const q = r.mapAt(3, 'query');
      if (q.map.size !== 1) throw new DecodeError(`${w}.query: expected exactly one field`);
      let query: RelayDirectoryQuery;
      if (q.has(0)) query = { personId: id16(q, 0, 'personId') };
      else if (q.has(1)) query = { deviceCertId: id16(q, 1, 'deviceCertId') };
      else {
        const text = q.text(2, 'text', MAX_DIRECTORY_QUERY_LENGTH);
        if (text.length === 0) throw new DecodeError(`${w}.query.text: empty`);
        query = { text };
      }
      q.done();
      return { type, requestId: requestId(r), query };
    }
    case RelayFrameType.RevocationPublish:
      return { type, requestId: requestId(r), list: r.bytes(3, 'list', { min: 1, max: REVOCATION_LIST_MAX_SIZE }) };
    default:
      throw new DecodeError(`${w}: unexpected frame type ${type}`);
  }
}

function readRelayFields(r: MapReader, type: RelayFrameType, maxSize: number): RelayFrame {
  const w = r.what;
  switch (type) {
    case RelayFrameType.Stored:
      return { type, requestId: requestId(r), clientMessageId: id16(r, 3, 'clientMessageId'), messageId: id16(r, 4, 'messageId') };
    case RelayFrameType.Deliver:
      return {
        type,
        messageId: id16(r, 2, 'messageId'),
        envelope: r.bytes(3, 'envelope', { min: 5, max: maxSize }),
        storedAt: r.uint(4, 'storedAt'),
      };
    case RelayFrameType.Ok:
      return { type, requestId: requestId(r) };
    case RelayFrameType.BacklogEnd:
      return { type };
    case RelayFrameType.Prekeys: {
      const f: PrekeysFrame = { type, requestId: requestId(r), mailbox: id16(r, 3, 'mailbox') };
      const oneTime = r.optional(4, (k) => readPrekey(r.mapAt(k, 'oneTime').map, `${w}.oneTime`));
      const signed = r.optional(5, (k) => readPrekey(r.mapAt(k, 'signed').map, `${w}.signed`));
      if (oneTime !== undefined) f.oneTime = oneTime;
      if (signed !== undefined) f.signed = signed;
      return f;
    }
    case RelayFrameType.PrekeyCountResult:
      return { type, requestId: requestId(r), count: r.uint(3, 'count', MAX_PREKEY_ID), hasSigned: r.bool(4, 'hasSigned') };
    case RelayFrameType.PrekeysLow:
      return { type, remaining: r.uint(2, 'remaining', MAX_PREKEY_ID) };
    case RelayFrameType.DirectoryResult:
      return {
        type,
        requestId: requestId(r),
        entries: r.array(3, 'entries', MAX_DIRECTORY_RESULTS).map((item, i) => {
          const m = MapReader.from(item, `${w}.entries[${i}]`);
          const e = { personCert: readCert(m, 0, 'personCert'), deviceCert: readCert(m, 1, 'deviceCert') };
          m.done();
          return e;
        }),
      };
    case RelayFrameType.RevocationList: {
      const f: RevocationListFrame = { type, requestId: requestId(r) };
      const list = r.optional(3, (k) => r.bytes(k, 'list', { min: 1, max: REVOCATION_LIST_MAX_SIZE }));
      if (list !== undefined) f.list = list;
      return f;
    }
    case RelayFrameType.Error: {
      const f: ErrorFrame = {
        type,
        code: r.text(2, 'code', MAX_ERROR_CODE_LENGTH),
        message: r.text(3, 'message', MAX_ERROR_MESSAGE_LENGTH),
      };
      const id = r.optional(4, (k) => r.uint(k, 'requestId', MAX_REQUEST_ID));
      if (id !== undefined) f.requestId = id;
      return f;
    }
    default:
      throw new DecodeError(`${w}: unexpected frame type ${type}`);
  }
}

export interface DecodeClientFrameOptions {
  /**
   * A Send's envelope may be a view into `bytes` instead of a copy (the caller then must not
   * change `bytes` while it uses the frame). A relay sets it: each envelope would otherwise be
   * one more buffer for the garbage collector to track, per message.
   */
  shareEnvelope?: boolean;
}

/**
 * Decodes one frame sent by a client. The size limit is checked first; then the encoding must
 * be deterministic CBOR, the version 1, the type one of the client frame types, and every field
 * as spec/relay.md states, with no unknown keys. Anything else is a {@link DecodeError}. Byte
 * strings are copies, except a Send's envelope with `shareEnvelope`.
 */
export function decodeClientFrame(
  bytes: Uint8Array,
  maxSize = DEFAULT_MAX_FRAME_SIZE,
  options: DecodeClientFrameOptions = {},
): ClientFrame {
  return decodeClientFrameFast(bytes, maxSize, options.shareEnvelope === true) ?? decodeClientFrameGeneric(bytes, maxSize);
}

/** The generic path of {@link decodeClientFrame}: the strict CBOR decoder, then every field; for tests. */
export function decodeClientFrameGenericForTesting(bytes: Uint8Array, maxSize = DEFAULT_MAX_FRAME_SIZE): ClientFrame {
  return decodeClientFrameGeneric(bytes, maxSize);
}

/** The fast path of {@link decodeClientFrame} alone: the frame, or undefined where the generic path decides; for tests. */
export function decodeClientFrameFastForTesting(bytes: Uint8Array, maxSize = DEFAULT_MAX_FRAME_SIZE): ClientFrame | undefined {
  return decodeClientFrameFast(bytes, maxSize, false);
}

function decodeClientFrameGeneric(bytes: Uint8Array, maxSize: number): ClientFrame {
  const { r, type } = readHeader(bytes, maxSize, CLIENT_TYPES, 'client frame');
  const f = readClientFields(r, type, maxSize);
  r.done();
  return f;
}

// Fast path for the two frames a relay decodes for every message (Send and Ack). The generic path
// builds a Map per CBOR map and walks it with MapReader, which costs several times the parsing
// itself; these read the one deterministic encoding a valid frame can have straight from the
// bytes. They accept only frames that the generic path accepts, with the same result, and return
// undefined for anything else (including every invalid frame): the generic path then decides,
// so errors and their messages are unchanged. A differential test (relay-frames-fast.test.ts)
// holds the two paths to this.
//
// Every valid Send or Ack has exactly one encoding of the shape read here: all fields are
// required and no others are allowed, so the map sizes and keys are fixed; keys 0..5 and the
// version and type are one-byte items; the field heads are shortest-form. Only an argument of
// 2^32 or more (an envelope of 4 GiB) is left to the generic path.

/** `{0: 1, 1: 40, 2: ...`: a map of six fields, version 1, type Send, then the key of requestId. */
const SEND_PREFIX = [0xa6, 0x00, 0x01, 0x01, 0x18, RelayFrameType.Send, 0x02];
/** `{0: 1, 1: 41, 2: ...`: a map of four fields, version 1, type Ack, then the key of requestId. */
const ACK_PREFIX = [0xa4, 0x00, 0x01, 0x01, 0x18, RelayFrameType.Ack, 0x02];
/** The head of a 16-byte string (ids and mailboxes). */
const BYTES16 = 0x50;

function decodeClientFrameFast(bytes: Uint8Array, maxSize: number, shareEnvelope: boolean): ClientFrame | undefined {
  // The size limit as the generic path checks it (written so that a NaN limit also goes there).
  if (!(bytes instanceof Uint8Array) || !(bytes.length <= maxSize)) return undefined;
  // The type's byte in a Send or Ack; other frames go to the generic path before any allocation.
  const type = bytes[5];
  if (type !== RelayFrameType.Send && type !== RelayFrameType.Ack) return undefined;
  const b = plainView(bytes);
  const s = new CborScanner(b, 0, b.length);
  if (type === RelayFrameType.Send) return s.literal(SEND_PREFIX) ? readSendFast(s, maxSize, shareEnvelope) : undefined;
  return s.literal(ACK_PREFIX) ? readAckFast(s) : undefined;
}

/** Reads the fields of a Send after {@link SEND_PREFIX}, as {@link readClientFields} does. */
function readSendFast(s: CborScanner, maxSize: number, shareEnvelope: boolean): SendFrame | undefined {
  const b = s.b;
  const requestId = s.uint(MAX_REQUEST_ID);
  if (requestId < 0 || !s.byte(3) || !s.byte(BYTES16)) return undefined;
  const idAt = s.pos;
  s.pos += CLIENT_MESSAGE_ID_LENGTH;
  if (!s.byte(4)) return undefined; // also catches a clientMessageId cut short by the end
  const envelopeAt = s.bytes(5, maxSize);
  if (envelopeAt < 0) return undefined;
  const envelopeEnd = s.pos;
  if (!s.byte(5)) return undefined;
  const n = s.head(4);
  if (n < 1 || n > MAX_ROUTES) return undefined;
  const routes: RelayRoute[] = new Array(n);
  for (let i = 0; i < n; i++) {
    // {0: entryIndex, 1: mailbox}
    if (!s.byte(0xa2) || !s.byte(0)) return undefined;
    const entryIndex = s.uint(MAX_ROUTES - 1);
    if (entryIndex < 0 || !s.byte(1)) return undefined;
    const mailboxAt = s.bytes(MAILBOX_ID_LENGTH, MAILBOX_ID_LENGTH);
    if (mailboxAt < 0) return undefined;
    routes[i] = { entryIndex, mailbox: b.slice(mailboxAt, mailboxAt + MAILBOX_ID_LENGTH) };
  }
  if (s.pos !== s.end) return undefined;
  return {
    type: RelayFrameType.Send,
    requestId,
    clientMessageId: b.slice(idAt, idAt + CLIENT_MESSAGE_ID_LENGTH),
    envelope: shareEnvelope ? b.subarray(envelopeAt, envelopeEnd) : b.slice(envelopeAt, envelopeEnd),
    routes,
  };
}

/** Reads the fields of an Ack after {@link ACK_PREFIX}, as {@link readClientFields} does. */
function readAckFast(s: CborScanner): AckFrame | undefined {
  const b = s.b;
  const requestId = s.uint(MAX_REQUEST_ID);
  if (requestId < 0 || !s.byte(3)) return undefined;
  const n = s.head(4);
  // Each id is 17 bytes (its head and 16 bytes): the count must fit in what is left.
  if (n < 1 || n > MAX_ACK_IDS || n * (MESSAGE_ID_LENGTH + 1) !== s.end - s.pos) return undefined;
  const messageIds: Uint8Array[] = new Array(n);
  let p = s.pos;
  for (let i = 0; i < n; i++, p += MESSAGE_ID_LENGTH) {
    if (b[p++] !== BYTES16) return undefined;
    messageIds[i] = b.slice(p, p + MESSAGE_ID_LENGTH);
  }
  return { type: RelayFrameType.Ack, requestId, messageIds };
}

/** Decodes one frame sent by a relay, with the same rules as {@link decodeClientFrame}. */
export function decodeRelayFrame(bytes: Uint8Array, maxSize = DEFAULT_MAX_FRAME_SIZE): RelayFrame {
  const { r, type } = readHeader(bytes, maxSize, RELAY_TYPES, 'relay frame');
  const f = readRelayFields(r, type, maxSize);
  r.done();
  return f;
}

/**
 * The request id of a client frame that failed to decode, when it can be read at all (so that
 * the relay's Error frame can name the request). Never throws.
 */
export function peekRequestId(bytes: Uint8Array, maxSize = DEFAULT_MAX_FRAME_SIZE): number | undefined {
  try {
    const v = decodeCbor(bytes, maxSize, 'frame');
    if (!(v instanceof Map)) return undefined;
    const id = v.get(2);
    return typeof id === 'number' && Number.isSafeInteger(id) && id >= 0 && id <= MAX_REQUEST_ID && CLIENT_TYPES.has(v.get(1) as number)
      ? id
      : undefined;
  } catch {
    return undefined;
  }
}
