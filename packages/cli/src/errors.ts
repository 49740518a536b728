/**
 * Errors of the `valise` command: every failure becomes a {@link CliError} with a stable code,
 * a message that says what happened, a hint that says what to do, and an exit code
 * (spec/cli.md, "Exit codes").
 */
import { ErrorCode, RelayErrorCode, ValiseError, VerifyError, VerifyReason } from '@valise/protocol';

/** Process exit codes. Stable: scripts branch on them. */
export const ExitCode = {
  Ok: 0,
  /** An unexpected failure (a bug, or an I/O error the CLI does not know how to explain). */
  Failure: 1,
  /** Bad arguments: unknown command or option, a missing or malformed value. */
  Usage: 2,
  /** The passphrase is wrong or missing. */
  Passphrase: 3,
  /** Something named does not exist: home, organisation, person, office, recipient, item. */
  NotFound: 4,
  /** A certificate, chain, revocation list or signature did not verify. */
  Verify: 5,
  /** The relay could not be reached, refused the connection or refused a request. */
  Relay: 6,
  /** A file is damaged, tampered with, or not a Valise file. */
  Damaged: 7,
  /** The operation conflicts with existing state (already initialised, already registered, busy). */
  Conflict: 8,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export class CliError extends Error {
  constructor(
    /** Stable machine-readable code, e.g. `wrong-passphrase`. */
    readonly code: string,
    message: string,
    readonly exitCode: ExitCode,
    /** What the user can do about it. */
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CliError';
  }
}

export const usageError = (message: string, hint?: string) => new CliError('usage', message, ExitCode.Usage, hint);
export const notFound = (code: string, message: string, hint?: string) => new CliError(code, message, ExitCode.NotFound, hint);

/** What to do about each chain verification failure. */
const VERIFY_HINTS: Record<string, string> = {
  [VerifyReason.BadSignature]: 'a certificate or signature was forged or damaged: do not trust this party; report it to your administrator',
  [VerifyReason.WrongIssuer]: 'it belongs to another organisation: check that this home was set up with the right organisation root',
  [VerifyReason.Expired]: 'the certificate has expired: the administrator must issue a new one (valise person add / valise device enrol)',
  [VerifyReason.NotYetValid]: "the certificate is not valid yet: check this computer's clock",
  [VerifyReason.Revoked]: 'the certificate has been revoked by the organisation: contact your administrator',
  [VerifyReason.WrongType]: 'a certificate of the wrong kind was presented: the data is damaged or forged',
  [VerifyReason.StaleRevocationList]:
    "the organisation's revocation list is out of date: the administrator must issue a fresh one (valise revoke --relay URL)",
  [VerifyReason.BrokenChain]: 'the certificates do not belong together: the data is damaged or forged',
};

/** Hints for the relay's error codes (spec/relay.md). */
const RELAY_HINTS: Record<string, string> = {
  [RelayErrorCode.AuthMalformed]: 'the relay did not understand the login: check that client and relay are the same version',
  [RelayErrorCode.AuthChallenge]: "the login challenge expired or was used: retry; if it persists, check this computer's clock",
  [RelayErrorCode.AuthHost]: 'the relay answers to another host name: use the URL your administrator gave you',
  [RelayErrorCode.AuthCertificate]:
    "the relay does not accept this device's certificates: check that the relay was started with this organisation's root (--org-root)",
  [RelayErrorCode.AuthRevoked]: 'this device or person has been revoked: contact your administrator',
  [RelayErrorCode.AuthSignature]: "the relay refused this device's signature: the home may be damaged; re-register the device bundle",
  [RelayErrorCode.Unavailable]: 'the relay is shutting down or overloaded: retry in a moment',
  [RelayErrorCode.BadEnvelope]: 'the relay refused the envelope as malformed: this is a bug, please report it',
  [RelayErrorCode.BadRoutes]: 'the relay refused the routing of the envelope: this is a bug, please report it',
  [RelayErrorCode.RateLimited]: 'too many requests: wait a few seconds and retry',
  [RelayErrorCode.MailboxFull]: "a recipient's mailbox is full: they must run `valise inbox`; retry later",
  [RelayErrorCode.DirectoryInvalid]:
    'the relay refused the certificates: they may be expired or revoked; ask your administrator for a new bundle',
  [RelayErrorCode.RevocationInvalid]: 'the relay refused the revocation list: it is not signed by this organisation root',
  [RelayErrorCode.RevocationStale]: 'the relay already holds this or a newer revocation list: nothing to do',
  [RelayErrorCode.ShuttingDown]: 'the relay is shutting down: retry in a moment',
  [RelayErrorCode.Internal]: 'the relay failed internally: retry; if it persists, tell the relay operator',
};

export function relayError(code: string, message: string): CliError {
  return new CliError(
    `relay-${code}`,
    `relay refused: ${message} (${code})`,
    ExitCode.Relay,
    RELAY_HINTS[code] ?? 'retry later or tell the relay operator',
  );
}

/** Converts anything thrown into a {@link CliError}, mapping protocol errors to actionable messages. */
export function toCliError(err: unknown): CliError {
  if (err instanceof CliError) return err;
  if (err instanceof VerifyError || (ValiseError.is(err, ErrorCode.Verify) && typeof (err as VerifyError).reason === 'string')) {
    const reason = (err as VerifyError).reason;
    return new CliError(
      `verify-${reason}`,
      `verification failed (${reason}): ${(err as Error).message}`,
      ExitCode.Verify,
      VERIFY_HINTS[reason],
      {
        cause: err,
      },
    );
  }
  if (ValiseError.is(err)) {
    const e = err as ValiseError;
    switch (e.code) {
      case ErrorCode.Decode:
        return new CliError(
          'damaged',
          `data does not decode: ${e.message}`,
          ExitCode.Damaged,
          'the file or message is damaged or not a Valise structure',
          {
            cause: err,
          },
        );
      case ErrorCode.Open:
        return new CliError(
          'cannot-open',
          e.message,
          ExitCode.Verify,
          'the item is not for this device, or it was damaged or forged in transit',
          { cause: err },
        );
      case ErrorCode.Seal:
        return new CliError(
          'cannot-seal',
          `cannot seal: ${e.message}`,
          ExitCode.Usage,
          'check the subject, classification and recipients',
          { cause: err },
        );
      case ErrorCode.Argument:
        return new CliError('bad-argument', e.message, ExitCode.Usage, undefined, { cause: err });
      default:
        return new CliError('crypto', e.message, ExitCode.Failure, undefined, { cause: err });
    }
  }
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e === 'object' && typeof e.code === 'string') {
    if (e.code === 'ENOENT') return new CliError('file-not-found', e.message, ExitCode.NotFound, 'check the path', { cause: err });
    if (e.code === 'EACCES' || e.code === 'EPERM') {
      return new CliError('permission-denied', e.message, ExitCode.Failure, 'check the permissions of the file or folder', { cause: err });
    }
    if (e.code === 'ECONNREFUSED' || e.code === 'ENOTFOUND' || e.code === 'ECONNRESET' || e.code === 'EHOSTUNREACH') {
      return new CliError(
        'relay-unreachable',
        `cannot reach the relay: ${e.message}`,
        ExitCode.Relay,
        'check the relay URL and that the relay is running',
        {
          cause: err,
        },
      );
    }
  }
  return new CliError('internal', err instanceof Error ? err.message : String(err), ExitCode.Failure, undefined, { cause: err });
}
