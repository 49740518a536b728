/**
 * Every domain-separation label Valise uses, in one place. Each is quoted in spec/.
 *
 * A label is always applied as `u16be(len(label)) || label || data` ({@link labelled}), so no
 * label can be a prefix of another use. RFC 9180's own labels ("HPKE-v1", "eae_prk", ...) live in
 * hpke.ts because they belong to that RFC, and X-Wing's combiner label in xwing.ts.
 */
import { concat, u16be, utf8 } from './bytes.js';

export const Label = {
  /** HPKE `info` prefix for each recipient's key wrap in a sealed envelope. */
  EnvelopeEntry: 'valise/v1/envelope/entry',
  /** KDF label for the per-recipient hint that lets a recipient find its entry. */
  EnvelopeHint: 'valise/v1/envelope/hint',
  /** KDF label deriving the stream (body) key from the content key. */
  EnvelopeStreamKey: 'valise/v1/envelope/stream-key',
  /** Digest of the envelope prelude core (version, id, suite) bound into every key wrap. */
  EnvelopePrelude: 'valise/v1/envelope/prelude',
  /** Hash of the body plaintext, as signed by the sender. */
  EnvelopeBodyDigest: 'valise/v1/envelope/body-digest',
  /** Salted hash of one recipient's personal payload. */
  EnvelopePersonalDigest: 'valise/v1/envelope/personal-digest',
  /** Signature context of the sender's signature over an envelope. */
  EnvelopeSignature: 'valise/v1/envelope/signature',
  /** Signature contexts of certificates and revocation lists, one per structure type. */
  SigPersonCert: 'valise/v1/sig/person-cert',
  SigDeviceCert: 'valise/v1/sig/device-cert',
  SigOfficeCert: 'valise/v1/sig/office-cert',
  SigOfficeHolderCert: 'valise/v1/sig/office-holder-cert',
  SigRevocationList: 'valise/v1/sig/revocation-list',
  /** Hash label giving a certificate its 16-byte id. */
  CertId: 'valise/v1/cert-id',
  /** Hash label giving an organisation its 16-byte id from its root key. */
  OrgId: 'valise/v1/org-id',
  /** Iterated-hash label of safety numbers. */
  SafetyNumber: 'valise/v1/safety-number',
  /** HMAC-SHA-256 input deriving an item's bias-stream key from its tracing key (spec/fingerprint.md). */
  FingerprintBias: 'valise/v1/fingerprint/bias',
  /** HMAC-SHA-256 input deriving one recipient's codeword-stream key from the tracing key. */
  FingerprintCodeword: 'valise/v1/fingerprint/codeword',
  /** HMAC-SHA-256 input deriving the key of the permutation from code positions to marking points. */
  FingerprintPermutation: 'valise/v1/fingerprint/permutation',
  /** Hash of the original text, kept in the tracing record. */
  FingerprintOriginal: 'valise/v1/fingerprint/original',
  /** Signed message of a device authenticating to a relay: `labelled(label, challenge, utf8(host))` (spec/relay.md). */
  RelayAuth: 'valise/v1/relay/auth',
  /** Relay message id: first 16 bytes of SHA-256(labelled(label, sender device cert id, client message id)) (spec/relay.md). */
  RelayMessageId: 'valise/v1/relay/message-id',
  /** Seed expansion of the deterministic random source used by tests and vectors only. */
  TestRandom: 'valise/v1/test-random',
} as const;
export type Label = (typeof Label)[keyof typeof Label];

/** `u16be(len(label)) || label || parts...` */
export function labelled(label: Label, ...parts: Uint8Array[]): Uint8Array {
  const l = utf8(label);
  return concat(u16be(l.length), l, ...parts);
}
