/**
 * Authentication in the HTTP upgrade (spec/relay.md, "Authentication"), before any socket is
 * accepted: a single-use challenge from GET /v1/challenge, the device's certificate chain, and
 * its Ed25519 signature over `labelled("valise/v1/relay/auth", challenge, utf8(host))`.
 */
import { randomFillSync } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import {
  CERT_MAX_SIZE,
  ErrorCode,
  fromBase64Url,
  getProvider,
  RELAY_CHALLENGE_LENGTH,
  RelayAuthHeader,
  RelayAuthQuery,
  RelayErrorCode,
  relayAuthMessage,
  toBase64Url,
  ValiseError,
  type VerifiedDevice,
  VerifyError,
  VerifyReason,
} from '@valise/protocol';
import type { RevocationState } from './revocation.js';

/**
 * Outstanding challenges. Each is used at most once (it is removed when presented, whatever the
 * outcome) and expires after the TTL. The table is bounded: when full, the oldest is dropped.
 */
export class ChallengeTable {
  /** base64url challenge -> expiry (ms); insertion order is expiry order. */
  private readonly table = new Map<string, number>();

  constructor(
    private readonly max: number,
    private readonly ttlMs: number,
    private readonly clock: () => number,
  ) {}

  get size(): number {
    return this.table.size;
  }

  issue(): { challenge: Uint8Array; expiresAt: number } {
    const now = this.clock();
    for (const [k, exp] of this.table) {
      if (exp >= now && this.table.size < this.max) break;
      this.table.delete(k);
    }
    const challenge = new Uint8Array(RELAY_CHALLENGE_LENGTH);
    randomFillSync(challenge);
    const expiresAt = now + this.ttlMs;
    this.table.set(toBase64Url(challenge), expiresAt);
    return { challenge, expiresAt };
  }

  /** True if the challenge was issued, not yet used and not expired; it is consumed either way. */
  consume(challenge: Uint8Array): boolean {
    const key = toBase64Url(challenge);
    const exp = this.table.get(key);
    if (exp === undefined) return false;
    this.table.delete(key);
    return exp >= this.clock();
  }
}

export type AuthResult =
  | { ok: true; device: VerifiedDevice; host: string }
  | { ok: false; code: RelayErrorCode; message: string; reason?: string };

const refuse = (code: RelayErrorCode, message: string, reason?: string): AuthResult =>
  reason === undefined ? { ok: false, code, message } : { ok: false, code, message, reason };

function field(req: IncomingMessage, url: URL, header: string, query: string): string | undefined {
  const h = req.headers[header];
  if (typeof h === 'string') return h;
  return url.searchParams.get(query) ?? undefined;
}

/** Base64url text of at most `maxBytes` bytes, or undefined. */
function b64(text: string | undefined, maxBytes: number): Uint8Array | undefined {
  if (text === undefined || text.length > Math.ceil((maxBytes * 4) / 3)) return undefined;
  try {
    return fromBase64Url(text, maxBytes);
  } catch {
    return undefined;
  }
}

export interface AuthContext {
  challenges: ChallengeTable;
  revocation: RevocationState;
  publicHosts: ReadonlySet<string> | undefined;
  nowSeconds: () => number;
}

/** Checks an upgrade request, in the order of spec/relay.md: fields, host, challenge, chain, signature. */
export function authenticate(req: IncomingMessage, url: URL, ctx: AuthContext): AuthResult {
  const person = b64(field(req, url, RelayAuthHeader.PersonCert, RelayAuthQuery.PersonCert), CERT_MAX_SIZE);
  const device = b64(field(req, url, RelayAuthHeader.DeviceCert, RelayAuthQuery.DeviceCert), CERT_MAX_SIZE);
  const challenge = b64(field(req, url, RelayAuthHeader.Challenge, RelayAuthQuery.Challenge), RELAY_CHALLENGE_LENGTH);
  const signature = b64(field(req, url, RelayAuthHeader.Signature, RelayAuthQuery.Signature), 64);
  const host = req.headers.host;
  if (person === undefined || person.length === 0 || device === undefined || device.length === 0) {
    return refuse(RelayErrorCode.AuthMalformed, 'missing or malformed certificates');
  }
  if (challenge === undefined || challenge.length !== RELAY_CHALLENGE_LENGTH) {
    return refuse(RelayErrorCode.AuthMalformed, 'missing or malformed challenge');
  }
  if (signature === undefined || signature.length !== 64) return refuse(RelayErrorCode.AuthMalformed, 'missing or malformed signature');
  if (host === undefined || host.length === 0 || host.length > 1024) return refuse(RelayErrorCode.AuthMalformed, 'missing Host header');
  if (ctx.publicHosts !== undefined && !ctx.publicHosts.has(host.toLowerCase())) {
    return refuse(RelayErrorCode.AuthHost, 'this relay does not answer to that host name');
  }
  if (!ctx.challenges.consume(challenge)) return refuse(RelayErrorCode.AuthChallenge, 'unknown, used or expired challenge');
  let verified: VerifiedDevice;
  try {
    verified = ctx.revocation.verifyChain({ person, device }, ctx.nowSeconds());
  } catch (err) {
    if (err instanceof VerifyError || (ValiseError.is(err, ErrorCode.Verify) && 'reason' in (err as object))) {
      const reason = (err as VerifyError).reason;
      if (reason === VerifyReason.Revoked) return refuse(RelayErrorCode.AuthRevoked, 'certificate revoked', reason);
      return refuse(RelayErrorCode.AuthCertificate, `certificate chain does not verify (${reason})`, reason);
    }
    if (ValiseError.is(err)) return refuse(RelayErrorCode.AuthCertificate, 'certificate chain does not decode', 'decode');
    throw err;
  }
  const ok = getProvider().ed25519Verify(signature, relayAuthMessage(challenge, host), verified.device.signingKey);
  if (!ok) return refuse(RelayErrorCode.AuthSignature, 'bad signature');
  return { ok: true, device: verified, host };
}
