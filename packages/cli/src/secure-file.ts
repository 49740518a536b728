/**
 * The encrypted file format of the `valise` command (spec/cli.md, "Encrypted files"): the home
 * state, received items and bundles are each one file of
 *
 *     header (76 bytes) || XChaCha20-Poly1305(key, nonce, plaintext, aad = header)
 *
 * where the key comes either from a passphrase through scrypt (parameters and salt in the
 * header) or from the home's random data key. A key check in the header tells a wrong
 * passphrase (or key) apart from a damaged file; the AEAD, whose associated data is the whole
 * header, detects any change to header or ciphertext.
 *
 * Writes are atomic: the bytes go to a temporary file in the same folder, which is flushed and
 * then renamed over the target, so a crash or error leaves either the old file or the new one.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { hmac } from '@noble/hashes/hmac.js';
import { scrypt } from '@noble/hashes/scrypt.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { CliError, ExitCode } from './errors.js';

/** `\x89VLS\r\n\x1a\n`: high bit set, line endings and EOF, so text-mode damage shows at once. */
export const FILE_MAGIC = Uint8Array.of(0x89, 0x56, 0x4c, 0x53, 0x0d, 0x0a, 0x1a, 0x0a);
export const FILE_VERSION = 1;
export const HEADER_LENGTH = 76;
export const NONCE_LENGTH = 24;
export const SALT_LENGTH = 16;
export const KEY_CHECK_LENGTH = 16;
export const TAG_LENGTH = 16;

/** What a file holds; part of the authenticated header, so one kind cannot pass for another. */
export const FilePurpose = {
  HomeState: 1,
  Item: 2,
  DeviceBundle: 3,
  PersonBundle: 4,
  /** A tracing document the sender keeps (spec/cli.md §13). */
  TracingRecord: 5,
} as const;
export type FilePurpose = (typeof FilePurpose)[keyof typeof FilePurpose];

export const KeySource = {
  /** scrypt(passphrase, salt, N = 2^logN, r, p), 64 bytes: encryption key || check key. */
  Scrypt: 1,
  /** The home's 32-byte data key (held in the home state file). */
  DataKey: 2,
} as const;
export type KeySource = (typeof KeySource)[keyof typeof KeySource];

export interface ScryptParams {
  logN: number;
  r: number;
  p: number;
}

/** Default cost: about 300 ms and 32 MiB with the pure-JS scrypt on a 2020s laptop core. */
export const DEFAULT_SCRYPT: Readonly<ScryptParams> = Object.freeze({ logN: 15, r: 8, p: 1 });

/** Bounds a reader accepts, so that a planted file cannot make it spend hours or gigabytes. */
const MIN_LOG_N = 10;
const MAX_LOG_N = 22;
const MAX_R = 32;
const MAX_P = 16;
/** Most memory scrypt may use (128 * r * N bytes). */
const MAX_SCRYPT_MEMORY = 1 << 30;
/** Most work (N * r * p): 64 times the default, a few tens of seconds at worst. */
const MAX_SCRYPT_WORK = 1 << 24;

const KEY_CHECK_INFO = new TextEncoder().encode('valise/cli/v1/key-check');

export class SecureFileError extends CliError {}

const damaged = (message: string, hint = 'the file is damaged or was altered; restore it from a backup') =>
  new SecureFileError('damaged-file', message, ExitCode.Damaged, hint);

export interface FileHeader {
  version: number;
  purpose: FilePurpose;
  source: KeySource;
  scrypt: ScryptParams;
  /** scrypt salt; zeros for the data key. */
  salt: Uint8Array;
  keyCheck: Uint8Array;
  nonce: Uint8Array;
}

/** A key ready to encrypt or decrypt files of one kind, with the header fields that go with it. */
export interface FileKey {
  source: KeySource;
  scrypt: ScryptParams;
  salt: Uint8Array;
  encKey: Uint8Array;
  keyCheck: Uint8Array;
}

function checkParams(p: ScryptParams): void {
  const ok =
    Number.isInteger(p.logN) &&
    p.logN >= MIN_LOG_N &&
    p.logN <= MAX_LOG_N &&
    Number.isInteger(p.r) &&
    p.r >= 1 &&
    p.r <= MAX_R &&
    Number.isInteger(p.p) &&
    p.p >= 1 &&
    p.p <= MAX_P &&
    128 * p.r * 2 ** p.logN <= MAX_SCRYPT_MEMORY &&
    2 ** p.logN * p.r * p.p <= MAX_SCRYPT_WORK;
  if (!ok) throw damaged(`scrypt parameters out of range (logN ${p.logN}, r ${p.r}, p ${p.p})`);
}

const checkValue = (key: Uint8Array) => hmac(sha256, key, KEY_CHECK_INFO).slice(0, KEY_CHECK_LENGTH);

/** Passphrases are compared as Unicode NFC, so the same text typed on different systems gives the same key. */
export const passphraseBytes = (passphrase: string) => new TextEncoder().encode(passphrase.normalize('NFC'));

/**
 * Derived keys of this process, by passphrase, salt and parameters: a process that opens the
 * same file twice (the demo, a test) pays for scrypt once. Never written anywhere.
 */
const derivedCache = new Map<string, FileKey>();

export function deriveScryptKey(passphrase: string, salt: Uint8Array, params: ScryptParams = DEFAULT_SCRYPT): FileKey {
  checkParams(params);
  if (salt.length !== SALT_LENGTH) throw new TypeError(`salt: expected ${SALT_LENGTH} bytes`);
  const pw = passphraseBytes(passphrase);
  const cacheKey = Buffer.from(sha256(new Uint8Array([...pw, 0, ...salt, params.logN, params.r, params.p]))).toString('hex');
  const hit = derivedCache.get(cacheKey);
  if (hit !== undefined) return hit;
  const dk = scrypt(pw, salt, { N: 2 ** params.logN, r: params.r, p: params.p, dkLen: 64, maxmem: MAX_SCRYPT_MEMORY + (1 << 20) });
  const key: FileKey = {
    source: KeySource.Scrypt,
    scrypt: { ...params },
    salt: Uint8Array.from(salt),
    encKey: dk.slice(0, 32),
    keyCheck: checkValue(dk.slice(32)),
  };
  dk.fill(0);
  if (derivedCache.size > 64) derivedCache.clear();
  derivedCache.set(cacheKey, key);
  return key;
}

/** A fresh scrypt key with a random salt, for a new file. */
export function newScryptKey(passphrase: string, params: ScryptParams = DEFAULT_SCRYPT): FileKey {
  return deriveScryptKey(passphrase, new Uint8Array(randomBytes(SALT_LENGTH)), params);
}

export function dataKey(key: Uint8Array): FileKey {
  if (key.length !== 32) throw new TypeError('data key: expected 32 bytes');
  return {
    source: KeySource.DataKey,
    scrypt: { logN: 0, r: 0, p: 0 },
    salt: new Uint8Array(SALT_LENGTH),
    encKey: key,
    keyCheck: checkValue(key),
  };
}

export function encodeHeader(h: FileHeader): Uint8Array {
  const out = new Uint8Array(HEADER_LENGTH);
  const v = new DataView(out.buffer);
  out.set(FILE_MAGIC, 0);
  out[8] = h.version;
  out[9] = h.purpose;
  out[10] = h.source;
  out[11] = h.scrypt.logN;
  v.setUint32(12, h.scrypt.r);
  v.setUint32(16, h.scrypt.p);
  out.set(h.salt, 20);
  out.set(h.keyCheck, 36);
  out.set(h.nonce, 52);
  return out;
}

/** Parses and checks the header of an encrypted file (no key needed). */
export function decodeHeader(file: Uint8Array, expected?: FilePurpose): FileHeader {
  if (file.length < FILE_MAGIC.length || !FILE_MAGIC.every((b, i) => file[i] === b)) {
    throw new SecureFileError(
      'not-a-valise-file',
      'not a Valise encrypted file (wrong magic bytes)',
      ExitCode.Damaged,
      'check that you named the right file',
    );
  }
  if (file.length < HEADER_LENGTH + TAG_LENGTH) throw damaged('the file is truncated');
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const version = file[8] as number;
  if (version !== FILE_VERSION) {
    throw new SecureFileError(
      'unsupported-file-version',
      `file format version ${version} is not supported (this valise reads version ${FILE_VERSION})`,
      ExitCode.Damaged,
      'use the valise version that wrote the file',
    );
  }
  const purpose = file[9] as FilePurpose;
  if (!Object.values(FilePurpose).includes(purpose)) throw damaged(`unknown file purpose ${purpose}`);
  if (expected !== undefined && purpose !== expected) {
    throw new SecureFileError(
      'wrong-file-kind',
      `this file holds ${purposeName(purpose)}, not ${purposeName(expected)}`,
      ExitCode.Usage,
      'check that you named the right file',
    );
  }
  const source = file[10] as KeySource;
  const scryptParams = { logN: file[11] as number, r: v.getUint32(12), p: v.getUint32(16) };
  const salt = file.slice(20, 36);
  if (source === KeySource.Scrypt) checkParams(scryptParams);
  else if (source === KeySource.DataKey) {
    if (scryptParams.logN !== 0 || scryptParams.r !== 0 || scryptParams.p !== 0 || salt.some((b) => b !== 0))
      throw damaged('data-key file with KDF fields set');
  } else throw damaged(`unknown key source ${source}`);
  return { version, purpose, source, scrypt: scryptParams, salt, keyCheck: file.slice(36, 52), nonce: file.slice(52, 76) };
}

export function purposeName(p: FilePurpose): string {
  switch (p) {
    case FilePurpose.HomeState:
      return 'a home state';
    case FilePurpose.Item:
      return 'a received item';
    case FilePurpose.DeviceBundle:
      return 'a device bundle';
    case FilePurpose.PersonBundle:
      return 'a person enrolment bundle';
    case FilePurpose.TracingRecord:
      return 'a tracing record';
    default:
      return `purpose ${p as number}`;
  }
}

/** Encrypts `plaintext` into a complete file. `nonce` is random unless given (test vectors only). */
export function sealFile(purpose: FilePurpose, key: FileKey, plaintext: Uint8Array, nonce?: Uint8Array): Uint8Array {
  const n = nonce ?? new Uint8Array(randomBytes(NONCE_LENGTH));
  if (n.length !== NONCE_LENGTH) throw new TypeError(`nonce: expected ${NONCE_LENGTH} bytes`);
  const header = encodeHeader({
    version: FILE_VERSION,
    purpose,
    source: key.source,
    scrypt: key.scrypt,
    salt: key.salt,
    keyCheck: key.keyCheck,
    nonce: n,
  });
  const ct = xchacha20poly1305(key.encKey, n, header).encrypt(plaintext);
  const out = new Uint8Array(header.length + ct.length);
  out.set(header, 0);
  out.set(ct, header.length);
  return out;
}

/**
 * Decrypts a file. `keyFor` turns the header into a key (deriving it from a passphrase, or
 * returning the data key). A key whose check value differs is a wrong passphrase (or a file of
 * another home); a key that matches but does not authenticate the ciphertext means damage.
 */
export function openFile(
  file: Uint8Array,
  expected: FilePurpose,
  keyFor: (header: FileHeader) => FileKey,
): { plaintext: Uint8Array; key: FileKey; header: FileHeader } {
  const header = decodeHeader(file, expected);
  const key = keyFor(header);
  if (key.source !== header.source)
    throw new SecureFileError('wrong-key', 'this file is encrypted with another kind of key', ExitCode.Damaged);
  if (!equalConstantTime(key.keyCheck, header.keyCheck)) {
    if (header.source === KeySource.Scrypt) {
      const env = header.purpose === FilePurpose.HomeState ? 'VALISE_PASSPHRASE' : 'VALISE_BUNDLE_PASSPHRASE';
      throw new SecureFileError(
        'wrong-passphrase',
        `wrong passphrase for ${purposeName(header.purpose)}`,
        ExitCode.Passphrase,
        `check the passphrase (${env} or the prompt) and retry`,
      );
    }
    throw new SecureFileError(
      'wrong-key',
      `${purposeName(header.purpose)} encrypted under another home's key`,
      ExitCode.Damaged,
      'the file was copied from another home',
    );
  }
  let plaintext: Uint8Array;
  try {
    plaintext = xchacha20poly1305(key.encKey, header.nonce, file.subarray(0, HEADER_LENGTH)).decrypt(file.subarray(HEADER_LENGTH));
  } catch {
    throw damaged(`${purposeName(header.purpose)} does not authenticate: it is damaged or was tampered with`);
  }
  return { plaintext, key, header };
}

function equalConstantTime(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= (a[i] as number) ^ (b[i] as number);
  return d === 0;
}

/** Opens a passphrase-protected file. */
export function openWithPassphrase(file: Uint8Array, expected: FilePurpose, passphrase: string) {
  return openFile(file, expected, (h) => {
    if (h.source !== KeySource.Scrypt)
      throw new SecureFileError('wrong-key', `${purposeName(h.purpose)} is not protected by a passphrase`, ExitCode.Damaged);
    return deriveScryptKey(passphrase, h.salt, h.scrypt);
  });
}

/** Hooks for tests: replace a step of the atomic write to simulate a failure. */
export interface AtomicWriteHooks {
  beforeRename?: (tempPath: string) => void;
}

/**
 * Writes `data` to `path` atomically: temporary file in the same folder, fsync, rename over the
 * target, fsync the folder. On any failure the temporary file is removed and the old file stays.
 */
export function writeFileAtomic(path: string, data: Uint8Array, hooks: AtomicWriteHooks = {}, mode = 0o600): void {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(temp, 'wx', mode);
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off, data.length - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    hooks.beforeRename?.(temp);
    renameSync(temp, path);
  } catch (err) {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        // already failing
      }
    }
    try {
      unlinkSync(temp);
    } catch {
      // never created, or already renamed
    }
    throw err;
  }
  try {
    const dfd = openSync(dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // some file systems refuse to fsync a folder; the rename is still atomic
  }
}

export function readFileBytes(path: string): Uint8Array {
  const b = readFileSync(path);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}
