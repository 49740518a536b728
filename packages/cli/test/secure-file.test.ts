/**
 * The encrypted file format and the home folder: round trips, wrong passphrases, tampering,
 * random bytes, atomic writes, locking, and the test vectors in test-vectors/cli/.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromHex, toHex } from '@valise/protocol';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../src/errors.js';
import { Home, STATE_FILE } from '../src/home.js';
import { fixedPassphrases } from '../src/passphrase.js';
import {
  dataKey,
  decodeHeader,
  deriveScryptKey,
  FilePurpose,
  HEADER_LENGTH,
  newScryptKey,
  openFile,
  openWithPassphrase,
  SecureFileError,
  sealFile,
  writeFileAtomic,
} from '../src/secure-file.js';
import { cliVectors, vectorJson } from './vectors.js';

const FAST = { logN: 10, r: 8, p: 1 };
const dirs: string[] = [];
const temp = () => {
  const d = mkdtempSync(join(tmpdir(), 'valise-cli-test-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const text = (s: string) => new TextEncoder().encode(s);

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    if (err instanceof SecureFileError) return err.code;
    throw err;
  }
  return 'ok';
}

describe('encrypted files', () => {
  const key = newScryptKey('a good passphrase', FAST);
  const file = sealFile(FilePurpose.HomeState, key, text('{"hello":"world"}'));

  it('round trips, with a 76-byte header and a 16-byte tag', () => {
    expect(file.length).toBe(HEADER_LENGTH + 17 + 16);
    const { plaintext, header } = openWithPassphrase(file, FilePurpose.HomeState, 'a good passphrase');
    expect(new TextDecoder().decode(plaintext)).toBe('{"hello":"world"}');
    expect(header.scrypt).toEqual(FAST);
    // A fresh nonce per write: the same plaintext never gives the same file.
    expect(toHex(sealFile(FilePurpose.HomeState, key, text('{"hello":"world"}')))).not.toBe(toHex(file));
  });

  it('refuses a wrong passphrase with a typed error', () => {
    let err: unknown;
    try {
      openWithPassphrase(file, FilePurpose.HomeState, 'another passphrase');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SecureFileError);
    expect((err as SecureFileError).code).toBe('wrong-passphrase');
    expect((err as SecureFileError).exitCode).toBe(ExitCode.Passphrase);
    expect((err as SecureFileError).hint).toMatch(/VALISE_PASSPHRASE/);
  });

  it('normalises passphrases to NFC', () => {
    const f = sealFile(FilePurpose.HomeState, newScryptKey('caf\u00e9 au lait', FAST), text('x'));
    expect(codeOf(() => openWithPassphrase(f, FilePurpose.HomeState, 'cafe\u0301 au lait'))).toBe('ok');
  });

  it('detects tampering anywhere in the file', () => {
    // Ciphertext and tag: the key check still matches, the AEAD fails.
    for (const i of [HEADER_LENGTH, HEADER_LENGTH + 5, file.length - 1]) {
      const t = file.slice();
      t[i] = (t[i] as number) ^ 0x80;
      expect(codeOf(() => openWithPassphrase(t, FilePurpose.HomeState, 'a good passphrase'))).toBe('damaged-file');
    }
    // Nonce (authenticated as associated data).
    const n = file.slice();
    n[60] = (n[60] as number) ^ 1;
    expect(codeOf(() => openWithPassphrase(n, FilePurpose.HomeState, 'a good passphrase'))).toBe('damaged-file');
    // Salt and parameters change the derived key: reported as a wrong passphrase, never accepted.
    const s = file.slice();
    s[25] = (s[25] as number) ^ 1;
    expect(codeOf(() => openWithPassphrase(s, FilePurpose.HomeState, 'a good passphrase'))).toBe('wrong-passphrase');
    // Magic, version, purpose, truncation.
    const m = file.slice();
    m[1] = 0;
    expect(codeOf(() => openWithPassphrase(m, FilePurpose.HomeState, 'a good passphrase'))).toBe('not-a-valise-file');
    const v = file.slice();
    v[8] = 2;
    expect(codeOf(() => openWithPassphrase(v, FilePurpose.HomeState, 'a good passphrase'))).toBe('unsupported-file-version');
    expect(codeOf(() => openWithPassphrase(file, FilePurpose.DeviceBundle, 'a good passphrase'))).toBe('wrong-file-kind');
    const p = file.slice();
    p[9] = FilePurpose.DeviceBundle;
    expect(codeOf(() => openWithPassphrase(p, FilePurpose.DeviceBundle, 'a good passphrase'))).toBe('damaged-file');
    expect(codeOf(() => openWithPassphrase(file.slice(0, 80), FilePurpose.HomeState, 'a good passphrase'))).toBe('damaged-file');
  });

  it('refuses key parameters that would cost too much', () => {
    const big = file.slice();
    big[11] = 30; // N = 2^30
    expect(codeOf(() => decodeHeader(big))).toBe('damaged-file');
    const r = file.slice();
    new DataView(r.buffer).setUint32(12, 1 << 20);
    expect(codeOf(() => decodeHeader(r))).toBe('damaged-file');
  });

  it('data-key files: another key is reported as such, not as a passphrase', () => {
    const k1 = dataKey(new Uint8Array(32).fill(1));
    const k2 = dataKey(new Uint8Array(32).fill(2));
    const f = sealFile(FilePurpose.Item, k1, text('item'));
    expect(new TextDecoder().decode(openFile(f, FilePurpose.Item, () => k1).plaintext)).toBe('item');
    expect(codeOf(() => openFile(f, FilePurpose.Item, () => k2))).toBe('wrong-key');
  });

  // Mutations that keep the header reach scrypt, once per distinct salt and parameters: seconds of
  // work, more on a loaded machine than the default 5 s allow (it once took 10 s in CI).
  it('random bytes and random mutations only ever give a typed error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        expect([
          'not-a-valise-file',
          'damaged-file',
          'unsupported-file-version',
          'wrong-file-kind',
          'wrong-passphrase',
          'wrong-key',
        ]).toContain(codeOf(() => openWithPassphrase(bytes, FilePurpose.HomeState, 'a good passphrase')));
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.nat(file.length - 1), fc.integer({ min: 1, max: 255 }), (i, x) => {
        const t = file.slice();
        t[i] = (t[i] as number) ^ x;
        expect(codeOf(() => openWithPassphrase(t, FilePurpose.HomeState, 'a good passphrase'))).not.toBe('ok');
      }),
      { numRuns: 150 },
    );
    // Random bytes behind a valid header: still only typed errors.
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), (tail) => {
        const t = new Uint8Array(HEADER_LENGTH + tail.length);
        t.set(file.subarray(0, HEADER_LENGTH));
        t.set(tail, HEADER_LENGTH);
        expect(codeOf(() => openWithPassphrase(t, FilePurpose.HomeState, 'a good passphrase'))).toMatch(/^(damaged-file)$/);
      }),
      { numRuns: 100 },
    );
  }, 60_000);
});

describe('atomic writes', () => {
  it('leave the old file intact, and no temporary file, when a write fails', () => {
    const d = temp();
    const path = join(d, 'state.valise');
    writeFileAtomic(path, text('old contents'));
    expect(() =>
      writeFileAtomic(path, text('new contents'), {
        beforeRename: () => {
          throw new Error('disk full');
        },
      }),
    ).toThrow('disk full');
    expect(readFileSync(path, 'utf8')).toBe('old contents');
    expect(readdirSync(d)).toEqual(['state.valise']);
    writeFileAtomic(path, text('new contents'));
    expect(readFileSync(path, 'utf8')).toBe('new contents');
    expect(readdirSync(d)).toEqual(['state.valise']);
  });

  it('fail cleanly when the folder is missing', () => {
    const d = temp();
    expect(() => writeFileAtomic(join(d, 'missing', 'x'), text('x'))).toThrow();
  });
});

describe('home folder', () => {
  const opts = (dir: string, pass = 'home passphrase') => ({ dir, passphrases: fixedPassphrases(pass, 'bundle passphrase'), kdf: FAST });

  it('creates, saves and reopens the state; items are encrypted under the data key', async () => {
    const dir = join(temp(), 'home');
    const home = await Home.open(opts(dir), { create: true });
    home.state.sent.push({ envelopeId: 'aa', messageId: 'bb', subject: 'x', classification: 'C', to: [], devices: 1, at: 1 });
    home.save();
    home.writeItem(1, { body: 'secret item text' });
    home.close();
    expect(readFileSync(join(dir, STATE_FILE)).includes('secret')).toBe(false);
    expect(readFileSync(join(dir, 'items', '1.valise')).includes('secret item text')).toBe(false);
    const again = await Home.open(opts(dir));
    expect(again.state.sent).toHaveLength(1);
    expect(again.readItem<{ body: string }>(1).body).toBe('secret item text');
    again.close();
  });

  it('a wrong passphrase is a clear error and leaves the file untouched', async () => {
    const dir = join(temp(), 'home');
    (await Home.open(opts(dir), { create: true })).close();
    const before = readFileSync(join(dir, STATE_FILE));
    await expect(Home.open(opts(dir, 'wrong passphrase'))).rejects.toMatchObject({
      code: 'wrong-passphrase',
      exitCode: ExitCode.Passphrase,
    });
    expect(readFileSync(join(dir, STATE_FILE)).equals(before)).toBe(true);
    // The lock was released: the right passphrase opens it.
    (await Home.open(opts(dir))).close();
  });

  it('a missing home says how to create one', async () => {
    await expect(Home.open(opts(join(temp(), 'none')))).rejects.toMatchObject({ code: 'no-home', exitCode: ExitCode.NotFound });
  });

  it('is locked while in use; a lock left by a dead process is taken over', async () => {
    const dir = join(temp(), 'home');
    const home = await Home.open(opts(dir), { create: true });
    await expect(Home.open(opts(dir))).rejects.toMatchObject({ code: 'home-busy', exitCode: ExitCode.Conflict });
    home.close();
    writeFileSync(join(dir, 'lock'), '999999999');
    const h = await Home.open(opts(dir));
    h.close();
    expect(existsSync(join(dir, 'lock'))).toBe(false);
  });

  it('a corrupted state file is reported as damaged, not as a crash', async () => {
    const dir = join(temp(), 'home');
    (await Home.open(opts(dir), { create: true })).close();
    const f = readFileSync(join(dir, STATE_FILE));
    f[f.length - 3] = (f[f.length - 3] as number) ^ 0x10;
    writeFileSync(join(dir, STATE_FILE), f);
    await expect(Home.open(opts(dir))).rejects.toMatchObject({ code: 'damaged-file', exitCode: ExitCode.Damaged });
  });
});

describe('test-vectors/cli', () => {
  const root = fileURLToPath(new URL('../../../test-vectors/cli/', import.meta.url));
  const vectors = cliVectors();

  it('the files match what the code produces', () => {
    if (process.env.VALISE_WRITE_VECTORS) {
      mkdirSync(root, { recursive: true });
      for (const v of vectors) writeFileSync(join(root, `${v.name}.json`), vectorJson(v));
    }
    expect(readdirSync(root).sort()).toEqual(vectors.map((v) => `${v.name}.json`).sort());
    for (const v of vectors) expect(readFileSync(join(root, `${v.name}.json`), 'utf8')).toBe(vectorJson(v));
  });

  it('each file checks on its own', () => {
    for (const name of readdirSync(root)) {
      const v = JSON.parse(readFileSync(join(root, name), 'utf8'));
      const i = v.inputs;
      if (v.expect === 'success') {
        const key = deriveScryptKey(i.passphrase, fromHex(i.salt), i.scrypt);
        expect(toHex(key.encKey)).toBe(v.intermediates.encryptionKey);
        expect(toHex(key.keyCheck)).toBe(v.intermediates.keyCheck);
        const file = sealFile(i.purpose, key, text(i.plaintext), fromHex(i.nonce));
        expect(toHex(file)).toBe(v.outputs.file);
        expect(new TextDecoder().decode(openWithPassphrase(file, i.purpose, i.passphrase).plaintext)).toBe(i.plaintext);
      } else {
        const want = v.expect === 'damaged' ? 'damaged-file' : v.expect;
        expect(codeOf(() => openWithPassphrase(fromHex(i.file), FilePurpose.HomeState, i.passphrase))).toBe(want);
      }
    }
  });
});
