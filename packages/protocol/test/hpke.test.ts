/**
 * HPKE behaviour beyond the RFC vectors: round-trip and tamper properties for every mode and
 * both KEMs, the error contract (ArgumentError / CryptoError / uniform OpenError), sequence
 * numbers and their overflow. The vectors themselves are in rfc9180-hpke.test.ts.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../src/bytes.js';
import { ArgumentError, CryptoError, ErrorCode, OpenError, SealError } from '../src/errors.js';
import {
  getKem,
  HpkeAeadId,
  type HpkeSuite,
  KdfId,
  KemId,
  keySchedule,
  MAX_SEQUENCE,
  Mode,
  openBase,
  type RecipientContext,
  type SenderContext,
  sealBase,
  setupAuthPskR,
  setupAuthPskS,
  setupAuthR,
  setupAuthS,
  setupBaseR,
  setupBaseS,
  setupPskR,
  setupPskS,
} from '../src/hpke.js';
import { getProvider } from '../src/provider.js';
import { deterministicRandomForTesting } from '../src/random.js';

const random = deterministicRandomForTesting('hpke.test');
const EMPTY = new Uint8Array(0);
const te = new TextEncoder();

const suiteOf = (kem: KemId, aead: HpkeAeadId = HpkeAeadId.ChaCha20Poly1305): HpkeSuite => ({ kem, kdf: KdfId.HkdfSha256, aead });
const DH = suiteOf(KemId.DhkemX25519HkdfSha256);
const XW = suiteOf(KemId.XWing);

// One long-lived key pair per KEM (and a sender key pair for DHKEM's Auth modes).
const keys = {
  [KemId.DhkemX25519HkdfSha256]: getKem(KemId.DhkemX25519HkdfSha256).generateKeyPair(random),
  [KemId.XWing]: getKem(KemId.XWing).generateKeyPair(random),
};
const senderKeys = getKem(KemId.DhkemX25519HkdfSha256).generateKeyPair(random);
const PSK = random(32);
const PSK_ID = te.encode('psk id');

const flip = (b: Uint8Array, bit: number): Uint8Array => {
  const out = b.slice();
  out[bit >> 3] = (out[bit >> 3] as number) ^ (1 << (bit & 7));
  return out;
};

/** Sets up a sender/recipient pair in any mode; `tweak` lets a test change the recipient's view. */
function pair(
  suite: HpkeSuite,
  mode: Mode,
  info: Uint8Array,
  tweak: { info?: Uint8Array; psk?: Uint8Array; pkS?: Uint8Array; enc?: (e: Uint8Array) => Uint8Array } = {},
): { s: SenderContext; r: () => RecipientContext } {
  const { publicKey: pkR, secretKey: skR } = keys[suite.kem];
  const rInfo = tweak.info ?? info;
  const rPsk = tweak.psk ?? PSK;
  const pkS = tweak.pkS ?? senderKeys.publicKey;
  let s: SenderContext;
  switch (mode) {
    case Mode.Base:
      s = setupBaseS(suite, pkR, info);
      return { s, r: () => setupBaseR(suite, (tweak.enc ?? ((e) => e))(s.enc), skR, rInfo) };
    case Mode.Psk:
      s = setupPskS(suite, pkR, info, PSK, PSK_ID);
      return { s, r: () => setupPskR(suite, (tweak.enc ?? ((e) => e))(s.enc), skR, rInfo, rPsk, PSK_ID) };
    case Mode.Auth:
      s = setupAuthS(suite, pkR, info, senderKeys.secretKey);
      return { s, r: () => setupAuthR(suite, (tweak.enc ?? ((e) => e))(s.enc), skR, rInfo, pkS) };
    default:
      s = setupAuthPskS(suite, pkR, info, PSK, PSK_ID, senderKeys.secretKey);
      return { s, r: () => setupAuthPskR(suite, (tweak.enc ?? ((e) => e))(s.enc), skR, rInfo, rPsk, PSK_ID, pkS) };
  }
}

const combos = fc.constantFrom(
  ...[Mode.Base, Mode.Psk, Mode.Auth, Mode.AuthPsk].flatMap((mode) =>
    [HpkeAeadId.ChaCha20Poly1305, HpkeAeadId.Aes128Gcm].map((aead) => ({ kem: KemId.DhkemX25519HkdfSha256 as KemId, mode, aead })),
  ),
  ...[Mode.Base, Mode.Psk].flatMap((mode) =>
    [HpkeAeadId.ChaCha20Poly1305, HpkeAeadId.Aes128Gcm].map((aead) => ({ kem: KemId.XWing as KemId, mode, aead })),
  ),
);

const bytes = fc.uint8Array({ maxLength: 200 });

describe('HPKE properties', () => {
  it('seal/open round-trips random messages in every mode, both KEMs, both AEADs, without touching inputs', () => {
    fc.assert(
      fc.property(combos, bytes, fc.array(fc.tuple(bytes, bytes), { minLength: 1, maxLength: 3 }), (c, info, messages) => {
        const suite = suiteOf(c.kem, c.aead);
        const inputs = [info, ...messages.flat()];
        const copies = inputs.map((a) => a.slice());
        const { s, r } = pair(suite, c.mode, info);
        const rc = r();
        for (const [aad, pt] of messages) expect(rc.open(aad, s.seal(aad, pt))).toEqual(pt);
        expect(rc.export(info, 33)).toEqual(s.export(info, 33));
        expect(inputs).toEqual(copies);
      }),
      { numRuns: 100 },
    );
  });

  it('single-shot sealBase/openBase round-trip and do not touch inputs', () => {
    fc.assert(
      fc.property(fc.constantFrom(DH, XW), bytes, bytes, bytes, (suite, info, aad, pt) => {
        const { publicKey, secretKey } = keys[suite.kem];
        const copies = [publicKey, secretKey, info, aad, pt].map((a) => a.slice());
        const { enc, ct } = sealBase(suite, publicKey, info, aad, pt);
        expect(ct).toHaveLength(pt.length + 16);
        const encCopy = enc.slice();
        const ctCopy = ct.slice();
        expect(openBase(suite, enc, secretKey, info, aad, ct)).toEqual(pt);
        expect([publicKey, secretKey, info, aad, pt, enc, ct]).toEqual([...copies, encCopy, ctCopy]);
      }),
      { numRuns: 30 },
    );
  });

  // One sealed message per KEM; the properties below only flip bits and open.
  const sealed = [DH, XW].map((suite) => {
    const info = te.encode('info');
    const aad = te.encode('aad');
    const pt = te.encode('the letter');
    return { suite, info, aad, pt, ...sealBase(suite, keys[suite.kem].publicKey, info, aad, pt) };
  });

  it('any single flipped bit of enc gives OpenError', () => {
    fc.assert(
      fc.property(fc.constantFrom(...sealed), fc.nat(), (m, n) => {
        const bad = flip(m.enc, n % (8 * m.enc.length));
        expect(() => openBase(m.suite, bad, keys[m.suite.kem].secretKey, m.info, m.aad, m.ct)).toThrow(OpenError);
      }),
      { numRuns: 150 },
    );
  });

  it('any single flipped bit of ct gives OpenError', () => {
    fc.assert(
      fc.property(fc.constantFrom(...sealed), fc.nat(), (m, n) => {
        const bad = flip(m.ct, n % (8 * m.ct.length));
        expect(() => openBase(m.suite, m.enc, keys[m.suite.kem].secretKey, m.info, m.aad, bad)).toThrow(OpenError);
      }),
      { numRuns: 150 },
    );
  });

  it('the untampered messages still open', () => {
    for (const m of sealed) expect(openBase(m.suite, m.enc, keys[m.suite.kem].secretKey, m.info, m.aad, m.ct)).toEqual(m.pt);
  });
});

describe('HPKE recipient failures are one uniform OpenError', () => {
  const info = te.encode('info');
  const aad = te.encode('aad');
  const pt = te.encode('pt');

  /** Runs `f`, expects an OpenError, returns it. */
  function openError(f: () => unknown): OpenError {
    try {
      f();
    } catch (err) {
      expect(err).toBeInstanceOf(OpenError);
      return err as OpenError;
    }
    throw new Error('expected an OpenError');
  }

  it('wrong info, psk, sender key, aad, truncated or reordered ct, bad enc: same code and message', () => {
    const errors: OpenError[] = [];
    const other = getKem(KemId.DhkemX25519HkdfSha256).generateKeyPair(random);
    const cases: [HpkeSuite, Mode, Parameters<typeof pair>[3]][] = [
      [DH, Mode.Base, { info: te.encode('other info') }],
      [XW, Mode.Psk, { psk: random(32) }],
      [DH, Mode.Auth, { pkS: other.publicKey }],
      [DH, Mode.AuthPsk, { psk: random(32) }],
    ];
    for (const [suite, mode, tweak] of cases) {
      const { s, r } = pair(suite, mode, info, tweak);
      const rc = r();
      errors.push(openError(() => rc.open(aad, s.seal(aad, pt))));
    }
    {
      const { s, r } = pair(DH, Mode.Base, info);
      const rc = r();
      const first = s.seal(aad, pt);
      const second = s.seal(aad, pt);
      errors.push(openError(() => rc.open(te.encode('other aad'), first)));
      errors.push(openError(() => rc.open(aad, first.subarray(0, 15))));
      errors.push(openError(() => rc.open(aad, EMPTY)));
      errors.push(openError(() => rc.open(aad, second))); // out of order
      expect(rc.seq).toBe(0); // failures do not advance the sequence
      expect(rc.open(aad, first)).toEqual(pt);
      expect(rc.open(aad, second)).toEqual(pt);
      expect(rc.seq).toBe(2);
    }
    // Received enc of the wrong length, or a low-order point, fail at setup.
    errors.push(openError(() => pair(DH, Mode.Base, info, { enc: (e) => e.subarray(1) }).r()));
    errors.push(openError(() => pair(XW, Mode.Base, info, { enc: (e) => e.subarray(0, 1119) }).r()));
    errors.push(openError(() => pair(DH, Mode.Base, info, { enc: () => new Uint8Array(32) }).r()));
    errors.push(openError(() => pair(DH, Mode.Auth, info, { pkS: new Uint8Array(32) }).r()));
    errors.push(openError(() => pair(XW, Mode.Base, info, { enc: (e) => e.slice().fill(0, 1088) }).r()));

    for (const e of errors) {
      expect(e.code).toBe(ErrorCode.Open);
      expect(e.message).toBe(errors[0]?.message);
      expect(Object.keys(e)).not.toContain('detail');
      expect(JSON.stringify(e)).not.toMatch(/AEAD|KEM|enc|length|order/i);
    }
  });

  it('open on an export-only context is an OpenError', () => {
    const suite = suiteOf(KemId.DhkemX25519HkdfSha256, HpkeAeadId.ExportOnly);
    const s = setupBaseS(suite, keys[suite.kem].publicKey, info);
    const r = setupBaseR(suite, s.enc, keys[suite.kem].secretKey, info);
    expect(() => r.open(aad, new Uint8Array(32))).toThrow(OpenError);
    expect(r.export(info, 16)).toEqual(s.export(info, 16));
  });
});

describe('HPKE sender and argument errors', () => {
  const info = te.encode('info');
  const dh = keys[KemId.DhkemX25519HkdfSha256];
  const xw = keys[KemId.XWing];

  it('unknown or unsupported code points are ArgumentErrors', () => {
    const bad = [
      { kem: 0x0010, kdf: 1, aead: 3 },
      { kem: 0x0020, kdf: 2, aead: 3 },
      { kem: 0x0020, kdf: 1, aead: 2 },
      { kem: 0x0020, kdf: 1, aead: 0 },
    ] as unknown as HpkeSuite[];
    for (const suite of bad) expect(() => setupBaseS(suite, dh.publicKey, info)).toThrow(ArgumentError);
    expect(() => getKem(0x0021 as KemId)).toThrow(ArgumentError);
    expect(() => keySchedule(DH, 4 as Mode, new Uint8Array(32), info)).toThrow(ArgumentError);
  });

  it('wrong key lengths and non-byte arguments are ArgumentErrors, on both sides', () => {
    const enc = setupBaseS(DH, dh.publicKey, info).enc;
    expect(() => setupBaseS(DH, dh.publicKey.subarray(1), info)).toThrow(ArgumentError);
    expect(() => setupBaseS(XW, dh.publicKey, info)).toThrow(ArgumentError);
    expect(() => setupBaseR(DH, enc, dh.secretKey.subarray(1), info)).toThrow(ArgumentError);
    expect(() => setupBaseR(XW, new Uint8Array(1120), new Uint8Array(31), info)).toThrow(ArgumentError);
    expect(() => setupAuthS(DH, dh.publicKey, info, new Uint8Array(31))).toThrow(ArgumentError);
    expect(() => setupAuthR(DH, enc, dh.secretKey, info, new Uint8Array(33))).toThrow(ArgumentError);
    expect(() => setupBaseS(DH, dh.publicKey, 'info' as unknown as Uint8Array)).toThrow(ArgumentError);
    const s = setupBaseS(DH, dh.publicKey, info);
    expect(() => s.seal('aad' as unknown as Uint8Array, EMPTY)).toThrow(ArgumentError);
  });

  it('PSK inputs are checked as RFC 9180 §5.1 VerifyPSKInputs says, plus a 32-byte minimum', () => {
    expect(() => setupPskS(DH, dh.publicKey, info, PSK, EMPTY)).toThrow(ArgumentError);
    expect(() => setupPskS(DH, dh.publicKey, info, EMPTY, PSK_ID)).toThrow(ArgumentError);
    expect(() => setupPskS(DH, dh.publicKey, info, EMPTY, EMPTY)).toThrow(ArgumentError);
    expect(() => setupPskS(DH, dh.publicKey, info, PSK.subarray(0, 31), PSK_ID)).toThrow(ArgumentError);
    expect(() => setupPskR(XW, new Uint8Array(1120), xw.secretKey, info, PSK, EMPTY)).toThrow(ArgumentError);
    expect(() => keySchedule(DH, Mode.Base, new Uint8Array(32), info, PSK, PSK_ID)).toThrow(ArgumentError);
    expect(() => keySchedule(DH, Mode.Auth, new Uint8Array(32), info, PSK, PSK_ID)).toThrow(ArgumentError);
    expect(() => keySchedule(DH, Mode.AuthPsk, new Uint8Array(32), info)).toThrow(ArgumentError);
  });

  it('X-Wing has no Auth modes', () => {
    expect(() => setupAuthS(XW, xw.publicKey, info, xw.secretKey)).toThrow(ArgumentError);
    expect(() => setupAuthPskS(XW, xw.publicKey, info, PSK, PSK_ID, xw.secretKey)).toThrow(ArgumentError);
    expect(() => setupAuthR(XW, new Uint8Array(1120), xw.secretKey, info, xw.publicKey)).toThrow(ArgumentError);
    expect(() => setupAuthPskR(XW, new Uint8Array(1120), xw.secretKey, info, PSK, PSK_ID, xw.publicKey)).toThrow(ArgumentError);
  });

  it('testing options must match the KEM', () => {
    expect(() => setupBaseS(XW, xw.publicKey, info, { ikmEForTesting: new Uint8Array(32) })).toThrow(ArgumentError);
    expect(() => setupBaseS(DH, dh.publicKey, info, { eseedForTesting: new Uint8Array(64) })).toThrow(ArgumentError);
    expect(() => setupBaseS(DH, dh.publicKey, info, { ikmEForTesting: new Uint8Array(31) })).toThrow(ArgumentError);
    expect(() => setupBaseS(XW, xw.publicKey, info, { eseedForTesting: new Uint8Array(32) })).toThrow(ArgumentError);
  });

  it('a low-order recipient key is a CryptoError for the sender', () => {
    const zero = new Uint8Array(32);
    expect(() => setupBaseS(DH, zero, info)).toThrow(CryptoError);
    expect(() => setupAuthS(DH, zero, info, dh.secretKey)).toThrow(CryptoError);
    expect(() => sealBase(DH, zero, info, EMPTY, EMPTY)).toThrow(CryptoError);
    const pk = xw.publicKey.slice().fill(0, 1184);
    expect(() => sealBase(XW, pk, info, EMPTY, EMPTY)).toThrow(CryptoError);
  });

  it('export-only suites cannot seal, and export lengths are bounded by 255*Nh', () => {
    const suite = suiteOf(KemId.DhkemX25519HkdfSha256, HpkeAeadId.ExportOnly);
    expect(() => sealBase(suite, dh.publicKey, info, EMPTY, EMPTY)).toThrow(ArgumentError);
    const s = setupBaseS(suite, dh.publicKey, info);
    expect(() => s.seal(EMPTY, EMPTY)).toThrow(ArgumentError);
    expect(s.export(EMPTY, 0)).toHaveLength(0);
    expect(s.export(EMPTY, 255 * 32)).toHaveLength(8160);
    for (const bad of [-1, 8161, 1.5]) expect(() => s.export(EMPTY, bad)).toThrow(ArgumentError);
  });

  it('production senders draw fresh randomness (different enc each time)', () => {
    expect(setupBaseS(DH, dh.publicKey, info).enc).not.toEqual(setupBaseS(DH, dh.publicKey, info).enc);
    expect(setupBaseS(XW, xw.publicKey, info).enc).not.toEqual(setupBaseS(XW, xw.publicKey, info).enc);
  });
});

describe('HPKE sequence numbers', () => {
  // RFC 9180 A.1.1 (Base, AES-128-GCM): known key and base_nonce, so nonces can be checked directly.
  const v = JSON.parse(readFileSync(new URL('../../../test-vectors/external/hpke-rfc9180-x25519.json', import.meta.url), 'utf8'))
    .vectors[0] as {
    aead_id: number;
    mode: number;
    info: string;
    ikmE: string;
    pkRm: string;
    skRm: string;
    key: string;
    base_nonce: string;
  };
  const suite = suiteOf(KemId.DhkemX25519HkdfSha256, HpkeAeadId.Aes128Gcm);
  const setSeq = (ctx: SenderContext | RecipientContext, seq: number) => {
    (ctx as unknown as { nextSeq: number }).nextSeq = seq;
  };

  it('the nonce is base_nonce XOR I2OSP(seq, 12), also for sequence numbers past 2^32', () => {
    expect([v.mode, v.aead_id]).toEqual([0, 1]);
    const s = setupBaseS(suite, fromHex(v.pkRm), fromHex(v.info), { ikmEForTesting: fromHex(v.ikmE) });
    const pt = te.encode('late message');
    for (const seq of [2 ** 32 - 1, 2 ** 32, 2 ** 40 + 0x1234567, MAX_SEQUENCE - 1]) {
      setSeq(s, seq);
      const ct = s.seal(EMPTY, pt);
      expect(s.seq).toBe(seq + 1);
      const nonce = fromHex(v.base_nonce);
      let x = BigInt(seq);
      for (let i = 11; i >= 0; i--, x >>= 8n) nonce[i] = (nonce[i] as number) ^ Number(x & 0xffn);
      expect(getProvider().aeadOpen(1, fromHex(v.key), nonce, ct, EMPTY)).toEqual(pt);
      const r = setupBaseR(suite, s.enc, fromHex(v.skRm), fromHex(v.info));
      setSeq(r, seq);
      expect(r.open(EMPTY, ct)).toEqual(pt);
      expect(toHex(nonce)).not.toBe(v.base_nonce);
    }
  });

  it('overflow is an error: SealError for the sender, OpenError for the recipient, no state change', () => {
    const s = setupBaseS(suite, fromHex(v.pkRm), fromHex(v.info));
    const r = setupBaseR(suite, s.enc, fromHex(v.skRm), fromHex(v.info));
    setSeq(s, MAX_SEQUENCE - 1);
    setSeq(r, MAX_SEQUENCE - 1);
    const last = s.seal(EMPTY, EMPTY);
    expect(r.open(EMPTY, last)).toEqual(EMPTY);
    expect(() => s.seal(EMPTY, EMPTY)).toThrow(SealError);
    expect(() => r.open(EMPTY, last)).toThrow(OpenError);
    expect([s.seq, r.seq]).toEqual([MAX_SEQUENCE, MAX_SEQUENCE]);
    expect(s.export(EMPTY, 8)).toEqual(r.export(EMPTY, 8)); // export is unaffected
  });
});
