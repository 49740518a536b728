/** What every command needs: where the home is, how to get passphrases, the clock. */
import { fromHex } from '@valise/protocol';
import { usageError } from './errors.js';
import type { HomeOptions } from './home.js';
import type { PassphraseSource } from './passphrase.js';
import type { ScryptParams } from './secure-file.js';

export interface CommandContext {
  /** The home folder. */
  home: string;
  passphrases: PassphraseSource;
  /** scrypt parameters for new homes and bundles (default: secure-file.ts DEFAULT_SCRYPT). */
  kdf?: ScryptParams;
  /** Seconds since the epoch. */
  now: () => number;
  /** Relay connection and request timeout, ms. */
  timeoutMs?: number;
  /** Progress and warnings for humans (stderr); never part of --json output. */
  note?: (line: string) => void;
}

export const DAY = 24 * 3600;
/** Certificates start this long before "now", so that a relay or peer whose clock lags a little accepts them. */
export const CLOCK_SKEW = 3600;

export const homeOptions = (ctx: CommandContext): HomeOptions =>
  ctx.kdf === undefined ? { dir: ctx.home, passphrases: ctx.passphrases } : { dir: ctx.home, passphrases: ctx.passphrases, kdf: ctx.kdf };

export const nowSeconds = () => Math.floor(Date.now() / 1000);

/** A 16-byte id given on the command line as 32 hex digits. */
export function parseId(value: string, what: string, hint?: string): Uint8Array {
  const v = value.trim().toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(v)) throw usageError(`${what}: expected 32 hexadecimal digits, got "${value}"`, hint);
  return fromHex(v);
}

export const isHexId = (value: string) => /^[0-9a-f]{32}$/i.test(value.trim());

export function parseDays(value: number | undefined, fallback: number, what: string): number {
  const d = value ?? fallback;
  if (!Number.isInteger(d) || d < 1 || d > 36500)
    throw usageError(`${what}: expected a whole number of days from 1 to 36500, got ${String(value)}`);
  return d;
}
