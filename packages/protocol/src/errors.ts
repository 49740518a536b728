/**
 * Errors. One base class with a stable `code`, one subclass per operation.
 *
 * Codes are part of the public API: clients switch on them, the relay sends them
 * in error frames. Messages may change; codes may not.
 *
 * Every failure inside `open` becomes an {@link OpenError} with the same code and
 * message, so that which check failed cannot be learned from outside (no oracle).
 * The reason is kept on a non-enumerable field for local debugging only.
 */

export const ErrorCode = {
  /** Bytes that do not decode: wrong type, length, version, size, or non-canonical CBOR. */
  Decode: 'VALISE_DECODE',
  /** A signature, certificate chain or revocation check failed. */
  Verify: 'VALISE_VERIFY',
  /** An envelope or ciphertext could not be opened. Deliberately uninformative. */
  Open: 'VALISE_OPEN',
  /** Sealing was refused: bad recipients, oversized personal payload, ... */
  Seal: 'VALISE_SEAL',
  /** A caller passed an argument of the wrong type or length. */
  Argument: 'VALISE_ARGUMENT',
  /** A primitive failed (for example an X25519 output of all zeros). */
  Crypto: 'VALISE_CRYPTO',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class ValiseError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }

  /** Type guard that also works across package copies (checks the code, not the prototype). */
  static is(err: unknown, code?: ErrorCode): err is ValiseError {
    if (typeof err !== 'object' || err === null) return false;
    const c = (err as { code?: unknown }).code;
    if (typeof c !== 'string' || !Object.values(ErrorCode).includes(c as ErrorCode)) return false;
    return code === undefined || c === code;
  }
}

export class DecodeError extends ValiseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.Decode, message, options);
  }
}

/** Why a certificate, chain, revocation list or signature was not accepted. */
export const VerifyReason = {
  BadSignature: 'bad-signature',
  WrongIssuer: 'wrong-issuer',
  Expired: 'expired',
  NotYetValid: 'not-yet-valid',
  Revoked: 'revoked',
  WrongType: 'wrong-type',
  StaleRevocationList: 'stale-revocation-list',
  BrokenChain: 'broken-chain',
} as const;
export type VerifyReason = (typeof VerifyReason)[keyof typeof VerifyReason];

export class VerifyError extends ValiseError {
  readonly reason: VerifyReason;
  constructor(reason: VerifyReason, message: string) {
    super(ErrorCode.Verify, message);
    this.reason = reason;
  }
}

const OPEN_MESSAGE = 'cannot open: not a recipient, or the envelope is damaged or forged';

export class OpenError extends ValiseError {
  declare readonly detail: string;
  constructor(detail = 'unspecified', options?: { cause?: unknown }) {
    super(ErrorCode.Open, OPEN_MESSAGE, options);
    // Kept off the enumerable surface so that it is not serialised or logged by accident.
    Object.defineProperty(this, 'detail', { value: detail, enumerable: false });
  }
}

export class SealError extends ValiseError {
  constructor(message: string) {
    super(ErrorCode.Seal, message);
  }
}

export class ArgumentError extends ValiseError {
  constructor(message: string) {
    super(ErrorCode.Argument, message);
  }
}

export class CryptoError extends ValiseError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.Crypto, message, options);
  }
}
