/**
 * Every RFC 9180 Appendix A vector for DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256: modes 0-3 with
 * AES-128-GCM, ChaCha20-Poly1305 and export-only. Each intermediate value is checked, and every
 * listed encryption and export is reproduced on the sender side and undone on the recipient side.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../src/bytes.js';
import {
  getKem,
  type HpkeAeadId,
  type HpkeSuite,
  KdfId,
  KemId,
  keySchedule,
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

/** test-vectors/external/hpke-rfc9180-x25519.json, field names as they are in the file. */
interface HpkeVectorFile {
  source: string;
  vectors: HpkeVector[];
}
interface HpkeVector {
  suite: string;
  mode_name: string;
  mode: number;
  kem_id: number;
  kdf_id: number;
  aead_id: number;
  info: string;
  ikmE: string;
  pkEm: string;
  skEm: string;
  ikmR: string;
  pkRm: string;
  skRm: string;
  /** Auth and AuthPSK only. */
  ikmS?: string;
  pkSm?: string;
  skSm?: string;
  /** PSK and AuthPSK only. */
  psk?: string;
  psk_id?: string;
  enc: string;
  shared_secret: string;
  key_schedule_context: string;
  secret: string;
  key: string;
  base_nonce: string;
  exporter_secret: string;
  encryptions: { seq: number; pt: string; aad: string; nonce: string; ct: string }[];
  exports: { exporter_context: string; L: number; exported_value: string }[];
}

const file: HpkeVectorFile = JSON.parse(
  readFileSync(new URL('../../../test-vectors/external/hpke-rfc9180-x25519.json', import.meta.url), 'utf8'),
);

const EMPTY = new Uint8Array(0);

function setup(v: HpkeVector): { sender: SenderContext; recipient: RecipientContext } {
  const suite: HpkeSuite = { kem: v.kem_id as KemId, kdf: v.kdf_id as KdfId, aead: v.aead_id as HpkeAeadId };
  const kem = getKem(suite.kem);
  const r = kem.deriveKeyPair(fromHex(v.ikmR));
  const info = fromHex(v.info);
  const options = { ikmEForTesting: fromHex(v.ikmE) };
  const enc = fromHex(v.enc);
  const psk = v.psk === undefined ? EMPTY : fromHex(v.psk);
  const pskId = v.psk_id === undefined ? EMPTY : fromHex(v.psk_id);
  const s = v.ikmS === undefined ? undefined : kem.deriveKeyPair(fromHex(v.ikmS));
  switch (v.mode) {
    case Mode.Base:
      return { sender: setupBaseS(suite, r.publicKey, info, options), recipient: setupBaseR(suite, enc, r.secretKey, info) };
    case Mode.Psk:
      return {
        sender: setupPskS(suite, r.publicKey, info, psk, pskId, options),
        recipient: setupPskR(suite, enc, r.secretKey, info, psk, pskId),
      };
    case Mode.Auth:
      if (s === undefined) throw new Error('auth vector without ikmS');
      return {
        sender: setupAuthS(suite, r.publicKey, info, s.secretKey, options),
        recipient: setupAuthR(suite, enc, r.secretKey, info, s.publicKey),
      };
    case Mode.AuthPsk:
      if (s === undefined) throw new Error('auth_psk vector without ikmS');
      return {
        sender: setupAuthPskS(suite, r.publicKey, info, psk, pskId, s.secretKey, options),
        recipient: setupAuthPskR(suite, enc, r.secretKey, info, psk, pskId, s.publicKey),
      };
    default:
      throw new Error(`unknown mode ${v.mode}`);
  }
}

describe('RFC 9180 Appendix A, X25519 suites', () => {
  it('the file holds all 12 X25519/HKDF-SHA256 suites: modes 0-3 x AEADs 1, 3, 0xffff', () => {
    const seen = file.vectors.map((v) => `${v.kem_id}/${v.kdf_id}/${v.mode}/${v.aead_id}`).sort();
    const expected = [0, 1, 2, 3].flatMap((m) => [1, 3, 0xffff].map((a) => `32/1/${m}/${a}`)).sort();
    expect(seen).toEqual(expected);
  });

  for (const v of file.vectors) {
    describe(`${v.mode_name}, ${v.suite}`, () => {
      const suite: HpkeSuite = { kem: v.kem_id as KemId, kdf: v.kdf_id as KdfId, aead: v.aead_id as HpkeAeadId };
      const kem = getKem(suite.kem);
      const psk = v.psk === undefined ? EMPTY : fromHex(v.psk);
      const pskId = v.psk_id === undefined ? EMPTY : fromHex(v.psk_id);

      it('DeriveKeyPair gives skEm/pkEm, skRm/pkRm (and skSm/pkSm)', () => {
        expect(suite.kem).toBe(KemId.DhkemX25519HkdfSha256);
        expect(suite.kdf).toBe(KdfId.HkdfSha256);
        const e = kem.deriveKeyPair(fromHex(v.ikmE));
        expect([toHex(e.secretKey), toHex(e.publicKey)]).toEqual([v.skEm, v.pkEm]);
        const r = kem.deriveKeyPair(fromHex(v.ikmR));
        expect([toHex(r.secretKey), toHex(r.publicKey)]).toEqual([v.skRm, v.pkRm]);
        expect(toHex(kem.publicKeyOf(fromHex(v.skRm)))).toBe(v.pkRm);
        if (v.mode === Mode.Auth || v.mode === Mode.AuthPsk) {
          const s = kem.deriveKeyPair(fromHex(v.ikmS as string));
          expect([toHex(s.secretKey), toHex(s.publicKey)]).toEqual([v.skSm, v.pkSm]);
        }
      });

      it('Encap/AuthEncap with ikmE give enc and shared_secret; Decap/AuthDecap give shared_secret', () => {
        const ikmE = () => fromHex(v.ikmE);
        const pkR = fromHex(v.pkRm);
        const skR = fromHex(v.skRm);
        const auth = v.mode === Mode.Auth || v.mode === Mode.AuthPsk;
        if (auth) {
          const { authEncap, authDecap } = kem;
          if (authEncap === undefined || authDecap === undefined) throw new Error('DHKEM must have Auth');
          const out = authEncap(pkR, fromHex(v.skSm as string), ikmE);
          expect([toHex(out.enc), toHex(out.sharedSecret)]).toEqual([v.enc, v.shared_secret]);
          expect(toHex(authDecap(fromHex(v.enc), skR, fromHex(v.pkSm as string)))).toBe(v.shared_secret);
        } else {
          const out = kem.encap(pkR, ikmE);
          expect([toHex(out.enc), toHex(out.sharedSecret)]).toEqual([v.enc, v.shared_secret]);
          expect(toHex(kem.decap(fromHex(v.enc), skR))).toBe(v.shared_secret);
        }
      });

      it('KeySchedule gives key_schedule_context, secret, key, base_nonce, exporter_secret', () => {
        const ks = keySchedule(suite, v.mode as Mode, fromHex(v.shared_secret), fromHex(v.info), psk, pskId);
        expect(toHex(ks.keyScheduleContext)).toBe(v.key_schedule_context);
        expect(toHex(ks.secret)).toBe(v.secret);
        expect(toHex(ks.key)).toBe(v.key);
        expect(toHex(ks.baseNonce)).toBe(v.base_nonce);
        expect(toHex(ks.exporterSecret)).toBe(v.exporter_secret);
      });

      it('the setup functions give enc, every listed ciphertext (seal) and plaintext (open)', () => {
        const { sender, recipient } = setup(v);
        expect(toHex(sender.enc)).toBe(v.enc);
        const last = v.encryptions.at(-1)?.seq ?? -1;
        const listed = new Map(v.encryptions.map((e) => [e.seq, e]));
        for (let seq = 0; seq <= last; seq++) {
          const e = listed.get(seq);
          expect(sender.seq).toBe(seq);
          // Unlisted sequence numbers are filled with empty messages to advance both contexts.
          const aad = e === undefined ? EMPTY : fromHex(e.aad);
          const pt = e === undefined ? EMPTY : fromHex(e.pt);
          const ct = sender.seal(aad, pt);
          if (e !== undefined) {
            expect(toHex(ct), `seq ${seq}`).toBe(e.ct);
            // The vector's own nonce and key reproduce its ciphertext (a check on the file).
            const aead = v.aead_id as 1 | 3;
            expect(toHex(getProvider().aeadSeal(aead, fromHex(v.key), fromHex(e.nonce), pt, aad))).toBe(e.ct);
          }
          expect(recipient.open(aad, ct)).toEqual(pt);
        }
      });

      it('export gives every listed exported_value, on both sides', () => {
        const { sender, recipient } = setup(v);
        for (const x of v.exports) {
          expect(toHex(sender.export(fromHex(x.exporter_context), x.L))).toBe(x.exported_value);
          expect(toHex(recipient.export(fromHex(x.exporter_context), x.L))).toBe(x.exported_value);
        }
      });

      if (v.mode === Mode.Base && v.encryptions.length > 0) {
        it('single-shot sealBase/openBase reproduce the first encryption', () => {
          const e = v.encryptions[0];
          if (e === undefined || e.seq !== 0) throw new Error('first encryption must be seq 0');
          const out = sealBase(suite, fromHex(v.pkRm), fromHex(v.info), fromHex(e.aad), fromHex(e.pt), { ikmEForTesting: fromHex(v.ikmE) });
          expect([toHex(out.enc), toHex(out.ct)]).toEqual([v.enc, e.ct]);
          expect(toHex(openBase(suite, fromHex(v.enc), fromHex(v.skRm), fromHex(v.info), fromHex(e.aad), fromHex(e.ct)))).toBe(e.pt);
        });
      }
    });
  }
});
