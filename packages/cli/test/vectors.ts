/**
 * Test vectors of the CLI's encrypted file format (spec/cli.md, "Encrypted files"), written to
 * test-vectors/cli/ from fixed inputs. `VALISE_WRITE_VECTORS=1 npx vitest run packages/cli/test/secure-file.test.ts`
 * rewrites them; otherwise the test checks that the files match what the code produces.
 */
import { hmac } from '@noble/hashes/hmac.js';
import { scrypt } from '@noble/hashes/scrypt.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { fromHex, toHex } from '@valise/protocol';
import { deriveScryptKey, FilePurpose, HEADER_LENGTH, passphraseBytes, sealFile } from '../src/secure-file.js';

export interface CliVector {
  name: string;
  description: string;
  inputs: Record<string, unknown>;
  intermediates: Record<string, unknown>;
  outputs: Record<string, unknown>;
  expect: 'success' | 'wrong-passphrase' | 'damaged';
}

/** The passphrase is given with a decomposed "é" (e + U+0301); the key is derived from its NFC form. */
const PASSPHRASE = 'correct horse battery staple\u0065\u0301';
const SALT = '000102030405060708090a0b0c0d0e0f';
const NONCE = 'a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7';
const PLAINTEXT = '{"format":"valise-home","version":1,"note":"test vector"}';
const PARAMS = { logN: 15, r: 8, p: 1 };

export function cliVectors(): CliVector[] {
  const pw = passphraseBytes(PASSPHRASE);
  const dk = scrypt(pw, fromHex(SALT), { N: 2 ** PARAMS.logN, r: PARAMS.r, p: PARAMS.p, dkLen: 64 });
  const keyCheck = hmac(sha256, dk.slice(32), new TextEncoder().encode('valise/cli/v1/key-check')).slice(0, 16);
  const key = deriveScryptKey(PASSPHRASE, fromHex(SALT), PARAMS);
  const file = sealFile(FilePurpose.HomeState, key, new TextEncoder().encode(PLAINTEXT), fromHex(NONCE));
  const tampered = file.slice();
  tampered[tampered.length - 20] = (tampered[tampered.length - 20] as number) ^ 0x01;
  const success: CliVector = {
    name: 'state-file',
    description:
      'A home state file: scrypt(N=2^15, r=8, p=1) of the NFC passphrase (given ending in e + U+0301 COMBINING ACUTE ACCENT, which NFC makes U+00E9), XChaCha20-Poly1305 with the 76-byte header as associated data.',
    inputs: { passphrase: PASSPHRASE, purpose: FilePurpose.HomeState, scrypt: PARAMS, salt: SALT, nonce: NONCE, plaintext: PLAINTEXT },
    intermediates: {
      passphraseNfcUtf8: toHex(pw),
      scryptOutput: toHex(dk),
      encryptionKey: toHex(dk.slice(0, 32)),
      checkKey: toHex(dk.slice(32)),
      keyCheck: toHex(keyCheck),
      header: toHex(file.slice(0, HEADER_LENGTH)),
    },
    outputs: { file: toHex(file) },
    expect: 'success',
  };
  return [
    success,
    {
      name: 'state-file-wrong-passphrase',
      description: 'The file of state-file opened with another passphrase: the key check differs.',
      inputs: { passphrase: 'correct horse battery staple', file: toHex(file) },
      intermediates: {},
      outputs: {},
      expect: 'wrong-passphrase',
    },
    {
      name: 'state-file-tampered',
      description: 'The file of state-file with one ciphertext bit flipped: the key check matches, the AEAD fails.',
      inputs: { passphrase: PASSPHRASE, file: toHex(tampered) },
      intermediates: {},
      outputs: {},
      expect: 'damaged',
    },
  ];
}

export const vectorJson = (v: CliVector) => `${JSON.stringify(v, null, 2)}\n`;
