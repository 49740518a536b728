/**
 * spec/identity.md: certificates, chains, revocation lists, offices.
 * Runs under both crypto providers (vitest.config.ts); both must give the very same bytes.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { concat, toHex, u16be, utf8 } from '../src/bytes.js';
import { type CborMap, type CborValue, decodeCbor, encodeCbor } from '../src/cbor.js';
import { ArgumentError, DecodeError, VerifyError, VerifyReason } from '../src/errors.js';
import {
  CERT_MAX_SIZE,
  CERT_TEXT_MAX_LENGTH,
  certIdOf,
  type DeviceCert,
  DeviceKem,
  decodeDeviceCert,
  decodeOfficeCert,
  decodeOfficeHolderCert,
  decodePersonCert,
  decodeRevocationList,
  encodeDeviceCert,
  encodeOfficeCert,
  encodeOfficeHolderCert,
  encodePersonCert,
  encodeRevocationList,
  generateOrgRoot,
  generatePersonIdentity,
  issueDeviceCert,
  issueOfficeCert,
  issueOfficeHolderCert,
  issuePersonCert,
  issueRevocationList,
  type OfficeCert,
  type OfficeHolderCert,
  type OrgRoot,
  orgIdOf,
  orgRootFromSecretKey,
  type PersonCert,
  type PersonIdentity,
  personIdentityFromSecretKey,
  type RevocationList,
  type SenderChain,
  type TrustStore,
  verifyDeviceChain,
  verifyPersonCert,
  verifyRevocationList,
} from '../src/identity.js';
import { deterministicRandomForTesting, type RandomSource } from '../src/random.js';

const SPEC_PERSON =
  'ab000101010250b75c55eb43f1a9683c102b2c2e877d9a035033333333333333333333333333333333045820a09aa5f47a6759802ff955f8dc2d2a14a5c99d23be97f864127ff9383455a4f0056c416c696365204d617274696e066a416d6261737361646f720770456d626173737920696e205061726973081a684ee180091a6a301500181f584097ba0d50e00a09aa7094231a2370f442399a8422b86c1973a3cefbb86d6afc8a978d0be08783a479391bbe37e1453c75256850e8bf44159968351751f59bda03';
const SPEC_DEVICE =
  'ab000101020250b75c55eb43f1a9683c102b2c2e877d9a035033333333333333333333333333333333045044444444444444444444444444444444055820555555555555555555555555555555555555555555555555555555555555555506a2001820015820666666666666666666666666666666666666666666666666666666666666666607666c6170746f70081a684ee180091a6933c340181f584022b1ba2c652e368dc2f2f6dcc436e348943f869b3d287239bd43e37aa1983d962fe7ad03872f23ae189bd39732dce5913916474c5825fc7cf2276ef8e0d67c0c';
const SPEC_LIST =
  'a8000101050250b75c55eb43f1a9683c102b2c2e877d9a0307041a684ee180051a68581c00068150f0b612718a359729cf6e3cbaf9a34cc4181f5840d09c7d373d90ff4b2a53de3a1617279bfee96e5b1667c8d6f9a8a012bc97078521646a9e11f6ed164302c36efbe5cb9226f6209bdf0eaa55876a8ea8212bad09';

const T0 = 1_750_000_000;
const DAY = 86_400;
const YEAR = 365 * DAY;
/** Inside every window of the fixtures below, and before the revocation lists' nextUpdate. */
const NOW = T0 + 3600;

type Outcome = 'ok' | 'decode' | VerifyReason;

/** What a call did: success, a DecodeError, or a VerifyError's reason. Anything else is rethrown. */
function outcome(fn: () => unknown): Outcome {
  try {
    fn();
    return 'ok';
  } catch (err) {
    if (err instanceof VerifyError) {
      expect(Object.values(VerifyReason)).toContain(err.reason);
      expect(err.code).toBe('VALISE_VERIFY');
      return err.reason;
    }
    if (err instanceof DecodeError) return 'decode';
    throw err;
  }
}

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  out[bit >>> 3] = (out[bit >>> 3] as number) ^ (1 << (bit & 7));
  return out;
}

/** Decodes a structure to its map, lets the test edit it, re-encodes (canonically). */
function editMap(bytes: Uint8Array, edit: (m: CborMap) => void): Uint8Array {
  const m = decodeCbor(bytes, 1 << 21) as CborMap;
  edit(m);
  return encodeCbor(m);
}

// ---------------------------------------------------------------------------------------------
// Fixtures: one organisation, Alice (ambassador, then Head of Mission until mid-year), Bob (her
// successor), an office, and a foreign organisation.

let rnd: RandomSource;
let opt: { randomForTesting: RandomSource };
let root: OrgRoot;
let foreign: OrgRoot;
let aliceId: PersonIdentity;
let alice: PersonCert;
let aliceLaptop: DeviceCert;
let bobId: PersonIdentity;
let bob: PersonCert;
let bobPhone: DeviceCert;
let hom: OfficeCert;
let aliceHoM: OfficeHolderCert;
let bobHoM: OfficeHolderCert;
let trust: TrustStore;
let aliceChain: SenderChain;
let aliceOfficeChain: SenderChain;
let bobOfficeChain: SenderChain;

function list(revoked: Uint8Array[], by: OrgRoot = root, sequence = 1): RevocationList {
  return issueRevocationList(by, { sequence, issuedAt: T0, nextUpdate: T0 + 7 * DAY, revoked });
}

beforeAll(() => {
  rnd = deterministicRandomForTesting('identity.test.ts');
  opt = { randomForTesting: rnd };
  root = generateOrgRoot(opt);
  foreign = generateOrgRoot(opt);
  aliceId = generatePersonIdentity(opt);
  alice = issuePersonCert(
    root,
    {
      identityKey: aliceId.publicKey,
      name: 'Alice Martin',
      title: 'Ambassador',
      unit: 'Embassy in Paris',
      validFrom: T0,
      validUntil: T0 + YEAR,
    },
    opt,
  );
  aliceLaptop = issueDeviceCert(
    aliceId,
    alice,
    {
      signingKey: generatePersonIdentity(opt).publicKey,
      encryption: { kem: DeviceKem.XWing, publicKey: rnd(1216).slice() },
      label: 'laptop',
      validFrom: T0,
      validUntil: T0 + YEAR / 2,
    },
    opt,
  );
  bobId = generatePersonIdentity(opt);
  bob = issuePersonCert(
    root,
    {
      identityKey: bobId.publicKey,
      name: 'Bob Okafor',
      title: 'Ambassador',
      unit: 'Embassy in Paris',
      validFrom: T0,
      validUntil: T0 + YEAR,
    },
    opt,
  );
  bobPhone = issueDeviceCert(
    bobId,
    bob,
    {
      signingKey: generatePersonIdentity(opt).publicKey,
      encryption: { kem: DeviceKem.DhkemX25519, publicKey: rnd(32).slice() },
      label: 'phone',
      validFrom: T0,
      validUntil: T0 + YEAR,
    },
    opt,
  );
  hom = issueOfficeCert(root, { title: 'Head of Mission', unit: 'Embassy in Paris', validFrom: T0, validUntil: T0 + 10 * YEAR }, opt);
  aliceHoM = issueOfficeHolderCert(root, hom, alice, { validFrom: T0, validUntil: T0 + YEAR / 4 });
  bobHoM = issueOfficeHolderCert(root, hom, bob, { validFrom: T0 + YEAR / 4 + 1, validUntil: T0 + YEAR });
  trust = { rootPublicKey: root.publicKey };
  aliceChain = { person: alice.bytes, device: aliceLaptop.bytes };
  aliceOfficeChain = { ...aliceChain, office: hom.bytes, officeHolder: aliceHoM.bytes };
  bobOfficeChain = { person: bob.bytes, device: bobPhone.bytes, office: hom.bytes, officeHolder: bobHoM.bytes };
});

// ---------------------------------------------------------------------------------------------

describe('encoding', () => {
  it('issue -> decode -> re-encode gives identical bytes for every structure', () => {
    const rl = list([alice.certId, bobPhone.certId]);
    const cases: [Uint8Array, (b: Uint8Array) => Uint8Array][] = [
      [alice.bytes, (b) => encodePersonCert(decodePersonCert(b))],
      [aliceLaptop.bytes, (b) => encodeDeviceCert(decodeDeviceCert(b))],
      [bobPhone.bytes, (b) => encodeDeviceCert(decodeDeviceCert(b))],
      [hom.bytes, (b) => encodeOfficeCert(decodeOfficeCert(b))],
      [aliceHoM.bytes, (b) => encodeOfficeHolderCert(decodeOfficeHolderCert(b))],
      [rl.bytes, (b) => encodeRevocationList(decodeRevocationList(b))],
    ];
    for (const [bytes, roundTrip] of cases) expect(toHex(roundTrip(bytes))).toBe(toHex(bytes));
    expect(decodePersonCert(alice.bytes)).toEqual(alice);
    expect(decodeDeviceCert(aliceLaptop.bytes)).toEqual(aliceLaptop);
    expect(decodeOfficeCert(hom.bytes)).toEqual(hom);
    expect(decodeOfficeHolderCert(aliceHoM.bytes)).toEqual(aliceHoM);
    expect(decodeRevocationList(rl.bytes)).toEqual(rl);
  });

  it('round-trips arbitrary field values (property)', () => {
    const text = fc.string({ unit: 'binary', maxLength: CERT_TEXT_MAX_LENGTH / 2 });
    const window = fc
      .tuple(fc.nat({ max: 2 ** 40 }), fc.integer({ min: 1, max: 2 ** 40 }))
      .map(([from, span]) => ({ validFrom: from, validUntil: from + span }));
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        text,
        text,
        text,
        window,
        fc.constantFrom(DeviceKem.XWing, DeviceKem.DhkemX25519),
        (personId, name, title, unit, w, kem) => {
          const p = issuePersonCert(root, { personId, identityKey: aliceId.publicKey, name, title, unit, ...w });
          expect(p).toMatchObject({ personId, name, title, unit, ...w });
          expect(toHex(encodePersonCert(decodePersonCert(p.bytes)))).toBe(toHex(p.bytes));
          const d = issueDeviceCert(aliceId, p, {
            signingKey: bobId.publicKey,
            encryption: { kem, publicKey: new Uint8Array(kem === DeviceKem.XWing ? 1216 : 32).fill(7) },
            label: unit,
            ...w,
          });
          expect(toHex(encodeDeviceCert(decodeDeviceCert(d.bytes)))).toBe(toHex(d.bytes));
          expect(verifyDeviceChain({ person: p.bytes, device: d.bytes }, trust, w.validFrom).device.deviceId).toEqual(d.deviceId);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('lays out a person certificate as spec/identity.md says (keys 0-9 and 31)', () => {
    const m = decodeCbor(alice.bytes, CERT_MAX_SIZE) as CborMap;
    expect([...m.keys()]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 31]);
    expect(m.get(0)).toBe(1);
    expect(m.get(1)).toBe(1);
    expect(m.get(2)).toEqual(alice.orgId);
    expect(m.get(4)).toEqual(aliceId.publicKey);
    expect([m.get(5), m.get(6), m.get(7), m.get(8), m.get(9)]).toEqual(['Alice Martin', 'Ambassador', 'Embassy in Paris', T0, T0 + YEAR]);
    const d = decodeCbor(aliceLaptop.bytes, CERT_MAX_SIZE) as CborMap;
    expect([...d.keys()]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 31]);
    expect([...(d.get(6) as CborMap).keys()]).toEqual([0, 1]);
    expect((d.get(6) as CborMap).get(0)).toBe(0x647a);
    for (const [bytes, type] of [
      [hom.bytes, 3],
      [aliceHoM.bytes, 4],
      [list([]).bytes, 5],
    ] as const) {
      const x = decodeCbor(bytes, 1 << 20) as CborMap;
      expect(x.get(1)).toBe(type);
      expect((x.get(31) as Uint8Array).length).toBe(64);
    }
  });

  it('derives ids and signatures exactly as specified (independent computation with @noble)', () => {
    const h16 = (label: string, data: Uint8Array) => sha256(concat(u16be(utf8(label).length), utf8(label), data)).slice(0, 16);
    expect(toHex(orgIdOf(root.publicKey))).toBe(toHex(h16('valise/v1/org-id', root.publicKey)));
    expect(toHex(root.orgId)).toBe(toHex(h16('valise/v1/org-id', root.publicKey)));
    const cases: [Uint8Array, Uint8Array, string][] = [
      [alice.bytes, root.publicKey, 'valise/v1/sig/person-cert'],
      [aliceLaptop.bytes, aliceId.publicKey, 'valise/v1/sig/device-cert'],
      [hom.bytes, root.publicKey, 'valise/v1/sig/office-cert'],
      [aliceHoM.bytes, root.publicKey, 'valise/v1/sig/office-holder-cert'],
      [list([alice.certId]).bytes, root.publicKey, 'valise/v1/sig/revocation-list'],
    ];
    for (const [bytes, signer, label] of cases) {
      const m = decodeCbor(bytes, 1 << 20) as CborMap;
      const sig = m.get(31) as Uint8Array;
      m.delete(31);
      const tbs = encodeCbor(m);
      expect(ed25519.verify(sig, concat(u16be(utf8(label).length), utf8(label), tbs), signer)).toBe(true);
      // The tbs is the certificate without its last field: key 31 sorts last.
      expect(toHex(bytes)).toContain(toHex(tbs).slice(2));
    }
    for (const c of [alice, aliceLaptop, hom, aliceHoM]) {
      expect(toHex(c.certId)).toBe(toHex(h16('valise/v1/cert-id', c.bytes)));
      expect(toHex(certIdOf(c.bytes))).toBe(toHex(c.certId));
    }
  });

  it('gives the same bytes from the same seed under both providers', () => {
    const r = deterministicRandomForTesting('identity.test.ts/vector');
    const o = { randomForTesting: r };
    const org = generateOrgRoot(o);
    const id = generatePersonIdentity(o);
    const p = issuePersonCert(org, { identityKey: id.publicKey, name: 'N', title: 'T', unit: 'U', validFrom: 1, validUntil: 2 }, o);
    const d = issueDeviceCert(
      id,
      p,
      { signingKey: id.publicKey, encryption: { kem: DeviceKem.DhkemX25519, publicKey: r(32) }, label: 'L', validFrom: 1, validUntil: 2 },
      o,
    );
    const digest = sha256(concat(org.publicKey, p.bytes, d.bytes));
    expect(toHex(digest)).toBe('64a178a2835c956d4829b74b6bad635c946c4bd70f2d8fd2c9989795988c286b');
  });

  it('reproduces the worked example of spec/identity.md', () => {
    const r = orgRootFromSecretKey(new Uint8Array(32).fill(0x11));
    const id = personIdentityFromSecretKey(new Uint8Array(32).fill(0x22));
    expect(toHex(r.publicKey)).toBe('d04ab232742bb4ab3a1368bd4615e4e6d0224ab71a016baf8520a332c9778737');
    expect(toHex(r.orgId)).toBe('b75c55eb43f1a9683c102b2c2e877d9a');
    expect(toHex(id.publicKey)).toBe('a09aa5f47a6759802ff955f8dc2d2a14a5c99d23be97f864127ff9383455a4f0');
    const p = issuePersonCert(r, {
      personId: new Uint8Array(16).fill(0x33),
      identityKey: id.publicKey,
      name: 'Alice Martin',
      title: 'Ambassador',
      unit: 'Embassy in Paris',
      validFrom: 1750000000,
      validUntil: 1781536000,
    });
    expect(toHex(p.bytes)).toBe(SPEC_PERSON);
    expect(toHex(p.certId)).toBe('523888684163a1ded31ab630dc18f0c9');
    const d = issueDeviceCert(id, p, {
      deviceId: new Uint8Array(16).fill(0x44),
      signingKey: new Uint8Array(32).fill(0x55),
      encryption: { kem: DeviceKem.DhkemX25519, publicKey: new Uint8Array(32).fill(0x66) },
      label: 'laptop',
      validFrom: 1750000000,
      validUntil: 1765000000,
    });
    expect(toHex(d.bytes)).toBe(SPEC_DEVICE);
    expect(toHex(d.certId)).toBe('f0b612718a359729cf6e3cbaf9a34cc4');
    const rl = issueRevocationList(r, { sequence: 7, issuedAt: 1750000000, nextUpdate: 1750604800, revoked: [d.certId] });
    expect(toHex(rl.bytes)).toBe(SPEC_LIST);
    const t: TrustStore = { rootPublicKey: r.publicKey, revocationList: rl };
    expect(outcome(() => verifyDeviceChain({ person: p.bytes, device: d.bytes }, t, 1750000000))).toBe(VerifyReason.Revoked);
  });

  it('rebuilds an org root from its secret key', () => {
    const again = orgRootFromSecretKey(root.secretKey);
    expect(again).toEqual(root);
  });
});

describe('strict decoding', () => {
  const decoders: [string, (b: Uint8Array) => unknown][] = [
    ['person', decodePersonCert],
    ['device', decodeDeviceCert],
    ['office', decodeOfficeCert],
    ['office holder', decodeOfficeHolderCert],
    ['revocation list', decodeRevocationList],
  ];

  it('random bytes give only DecodeError, in every decoder', () => {
    for (const [, decode] of decoders) {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 400 }), (b) => {
          expect(() => decode(b)).toThrow(DecodeError);
        }),
        { numRuns: 300 },
      );
    }
  });

  it('random well-formed CBOR maps with the right header give only DecodeError', () => {
    const leaf: fc.Arbitrary<CborValue> = fc.oneof(
      fc.nat({ max: 2 ** 40 }),
      fc.integer({ min: -1000, max: -1 }),
      fc.uint8Array({ maxLength: 70 }),
      fc.constantFrom(new Uint8Array(16), new Uint8Array(32), new Uint8Array(64)),
      fc.string({ maxLength: 10 }),
      fc.boolean(),
    );
    const value = fc.oneof(leaf, fc.array(leaf, { maxLength: 3 }));
    const entries = fc.array(fc.tuple(fc.integer({ min: 0, max: 31 }), value), { maxLength: 12 });
    decoders.forEach(([, decode], i) => {
      fc.assert(
        fc.property(entries, fc.boolean(), (kv, header) => {
          const m: CborMap = new Map(kv);
          if (header) {
            m.set(0, 1);
            m.set(1, i + 1);
          }
          expect(() => decode(encodeCbor(m))).toThrow(DecodeError);
        }),
        { numRuns: 200 },
      );
    });
  });

  it('edited valid structures either fail with DecodeError or decode to exactly what was given', () => {
    const samples: [Uint8Array, (b: Uint8Array) => { bytes: Uint8Array }][] = [
      [alice.bytes, decodePersonCert],
      [bobPhone.bytes, decodeDeviceCert],
      [hom.bytes, decodeOfficeCert],
      [aliceHoM.bytes, decodeOfficeHolderCert],
      [list([alice.certId, hom.certId]).bytes, decodeRevocationList],
    ];
    for (const [bytes, decode] of samples) {
      const edit = fc.oneof(
        fc.nat({ max: bytes.length * 8 - 1 }).map((bit) => flipBit(bytes, bit)),
        fc.nat({ max: bytes.length - 1 }).map((n) => bytes.slice(0, n)),
        fc.uint8Array({ minLength: 1, maxLength: 8 }).map((tail) => concat(bytes, tail)),
        fc.tuple(fc.nat({ max: bytes.length - 1 }), fc.nat({ max: 255 })).map(([i, v]) => {
          const out = Uint8Array.from(bytes);
          out[i] = v;
          return out;
        }),
      );
      fc.assert(
        fc.property(edit, (b) => {
          let decoded: { bytes: Uint8Array } | undefined;
          try {
            decoded = decode(b);
          } catch (err) {
            expect(err).toBeInstanceOf(DecodeError);
            return;
          }
          expect(toHex(decoded.bytes)).toBe(toHex(b));
        }),
        { numRuns: 200 },
      );
    }
  });

  it('rejects each specific violation', () => {
    const bad: [string, Uint8Array, (b: Uint8Array) => unknown][] = [
      ['unknown field', editMap(alice.bytes, (m) => m.set(10, 0)), decodePersonCert],
      ['missing field', editMap(alice.bytes, (m) => m.delete(6)), decodePersonCert],
      ['missing signature', editMap(alice.bytes, (m) => m.delete(31)), decodePersonCert],
      ['version 2', editMap(alice.bytes, (m) => m.set(0, 2)), decodePersonCert],
      ['wrong type', alice.bytes, decodeDeviceCert],
      ['short key', editMap(alice.bytes, (m) => m.set(4, new Uint8Array(31))), decodePersonCert],
      ['short signature', editMap(alice.bytes, (m) => m.set(31, new Uint8Array(63))), decodePersonCert],
      ['long name', editMap(alice.bytes, (m) => m.set(5, 'x'.repeat(CERT_TEXT_MAX_LENGTH + 1))), decodePersonCert],
      ['name as bytes', editMap(alice.bytes, (m) => m.set(5, utf8('Alice'))), decodePersonCert],
      ['empty window', editMap(alice.bytes, (m) => m.set(8, T0 + YEAR)), decodePersonCert],
      ['reversed window', editMap(hom.bytes, (m) => m.set(6, T0 + 11 * YEAR)), decodeOfficeCert],
      ['negative time', editMap(aliceHoM.bytes, (m) => m.set(6, -1)), decodeOfficeHolderCert],
      ['unknown KEM', editMap(bobPhone.bytes, (m) => (m.get(6) as CborMap).set(0, 0x0021)), decodeDeviceCert],
      ['X-Wing key of 32 bytes', editMap(bobPhone.bytes, (m) => (m.get(6) as CborMap).set(0, 0x647a)), decodeDeviceCert],
      ['extra field in encryption key', editMap(bobPhone.bytes, (m) => (m.get(6) as CborMap).set(2, 0)), decodeDeviceCert],
      ['encryption key as bytes', editMap(bobPhone.bytes, (m) => m.set(6, new Uint8Array(32))), decodeDeviceCert],
      [
        'unsorted revocations',
        editMap(list([alice.certId, bob.certId]).bytes, (m) => (m.get(6) as Uint8Array[]).reverse()),
        decodeRevocationList,
      ],
      ['duplicate revocation', editMap(list([alice.certId]).bytes, (m) => m.set(6, [alice.certId, alice.certId])), decodeRevocationList],
      ['15-byte revocation', editMap(list([]).bytes, (m) => m.set(6, [new Uint8Array(15)])), decodeRevocationList],
      ['issuedAt = nextUpdate', editMap(list([]).bytes, (m) => m.set(5, T0)), decodeRevocationList],
      ['oversized', concat(alice.bytes, new Uint8Array(CERT_MAX_SIZE)), decodePersonCert],
    ];
    for (const [what, bytes, decode] of bad) expect(() => decode(bytes), what).toThrow(DecodeError);
    // Exactly at the limit is fine.
    const long = editMap(alice.bytes, (m) => m.set(5, 'é'.repeat(CERT_TEXT_MAX_LENGTH)));
    expect(decodePersonCert(long).name).toHaveLength(CERT_TEXT_MAX_LENGTH);
  });

  it('rejects text that is not well-formed UTF-8 (a lone surrogate encoded as ED A0 80)', () => {
    const marked = editMap(alice.bytes, (m) => m.set(5, 'XYZ'));
    const at = toHex(marked).indexOf('58595a') / 2;
    const forged = Uint8Array.from(marked);
    forged.set([0xed, 0xa0, 0x80], at);
    expect(() => decodePersonCert(forged)).toThrow(DecodeError);
  });
});

describe('chain verification', () => {
  it('accepts a valid chain, with and without an office', () => {
    const v = verifyDeviceChain(aliceChain, trust, NOW);
    expect(v.verified).toBe(true);
    expect(v.person).toEqual(alice);
    expect(v.device).toEqual(aliceLaptop);
    expect(v.office).toBeUndefined();
    const o = verifyDeviceChain(aliceOfficeChain, { ...trust, revocationList: list([bob.certId]) }, NOW);
    expect(o.office).toEqual(hom);
    expect(o.officeHolder).toEqual(aliceHoM);
  });

  it('treats validity windows as inclusive at both ends', () => {
    expect(outcome(() => verifyDeviceChain(aliceChain, trust, T0))).toBe('ok');
    expect(outcome(() => verifyDeviceChain(aliceChain, trust, T0 - 1))).toBe(VerifyReason.NotYetValid);
    expect(outcome(() => verifyDeviceChain(aliceChain, trust, T0 + YEAR / 2))).toBe('ok');
    expect(outcome(() => verifyDeviceChain(aliceChain, trust, T0 + YEAR / 2 + 1))).toBe(VerifyReason.Expired);
  });

  /** Every reason, reached through the public API, with the first check that fails. */
  function reasonCases(): [string, () => unknown, Outcome][] {
    const rootAsPerson: PersonIdentity = { secretKey: root.secretKey, publicKey: root.publicKey };
    // The root signs a device for Alice with its own key: it cannot, without a new identity key.
    const rogueDevice = issueDeviceCert(
      rootAsPerson,
      { ...alice, identityKey: root.publicKey },
      {
        signingKey: root.publicKey,
        encryption: { kem: DeviceKem.DhkemX25519, publicKey: new Uint8Array(32).fill(9) },
        label: 'rogue',
        validFrom: T0,
        validUntil: T0 + YEAR,
      },
    );
    // A foreign organisation certifies Alice's key and person id; her own key signs the device.
    const foreignAlice = issuePersonCert(foreign, { ...alice, identityKey: aliceId.publicKey });
    const foreignLaptop = issueDeviceCert(aliceId, foreignAlice, { ...aliceLaptop, deviceId: aliceLaptop.deviceId });
    const foreignOffice = issueOfficeCert(foreign, {
      title: 'Head of Mission',
      unit: 'Embassy in Paris',
      validFrom: T0,
      validUntil: T0 + YEAR,
    });
    // Alice's identity key is replaced (new key, same person id): her old appointment names the old key.
    const alice2Id = generatePersonIdentity(opt);
    const alice2 = issuePersonCert(root, { ...alice, identityKey: alice2Id.publicKey });
    const alice2Laptop = issueDeviceCert(alice2Id, alice2, { ...aliceLaptop });
    const sigFlipped = flipBit(alice.bytes, alice.bytes.length * 8 - 1);
    const withList = (revoked: Uint8Array[]): TrustStore => ({ ...trust, revocationList: list(revoked) });
    const v =
      (chain: SenderChain, t: TrustStore = trust, now = NOW) =>
      () =>
        verifyDeviceChain(chain, t, now);
    return [
      ['valid', v(aliceChain), 'ok'],
      ['person expired', v(aliceChain, trust, T0 + YEAR + 1), VerifyReason.Expired],
      ['device expired', v(aliceChain, trust, T0 + YEAR / 2 + 1), VerifyReason.Expired],
      ['not yet valid', v(aliceChain, trust, T0 - 1), VerifyReason.NotYetValid],
      ['office holder not yet valid', v(bobOfficeChain), VerifyReason.NotYetValid],
      ['person revoked (revokes its devices)', v(aliceChain, withList([alice.certId])), VerifyReason.Revoked],
      ['device revoked', v(aliceChain, withList([aliceLaptop.certId])), VerifyReason.Revoked],
      ['another device revoked', v(aliceChain, withList([bobPhone.certId])), 'ok'],
      ['office revoked', v(aliceOfficeChain, withList([hom.certId])), VerifyReason.Revoked],
      ['holder revoked', v(aliceOfficeChain, withList([aliceHoM.certId])), VerifyReason.Revoked],
      ['person of a foreign org', v({ person: foreignAlice.bytes, device: foreignLaptop.bytes }), VerifyReason.WrongIssuer],
      [
        'office of a foreign org',
        v({ ...aliceChain, office: foreignOffice.bytes, officeHolder: aliceHoM.bytes }),
        VerifyReason.WrongIssuer,
      ],
      ['revocation list of a foreign org', v(aliceChain, { ...trust, revocationList: list([], foreign) }), VerifyReason.WrongIssuer],
      ['foreign list, direct', () => verifyRevocationList(list([], foreign).bytes, root.publicKey, NOW), VerifyReason.WrongIssuer],
      ['person signature flipped', v({ ...aliceChain, person: sigFlipped }), VerifyReason.BadSignature],
      ['device signed by the root', v({ ...aliceChain, device: rogueDevice.bytes }), VerifyReason.BadSignature],
      ['device of another person', v({ ...aliceChain, device: bobPhone.bytes }), VerifyReason.BrokenChain],
      ['holder is another person', v({ ...bobOfficeChain, officeHolder: aliceHoM.bytes }, trust, T0 + 10), VerifyReason.BrokenChain],
      [
        'holder names the old identity key',
        v({ person: alice2.bytes, device: alice2Laptop.bytes, office: hom.bytes, officeHolder: aliceHoM.bytes }),
        VerifyReason.BrokenChain,
      ],
      ['office without holder', v({ ...aliceChain, office: hom.bytes }), VerifyReason.BrokenChain],
      ['stale list', v(aliceChain, withList([]), T0 + 7 * DAY + 1), VerifyReason.StaleRevocationList],
      ['list fresh at nextUpdate', v(aliceChain, withList([]), T0 + 7 * DAY), 'ok'],
      ['stale list, direct', () => verifyRevocationList(list([]).bytes, root.publicKey, T0 + 8 * DAY), VerifyReason.StaleRevocationList],
      [
        'older list than the one held',
        () => verifyRevocationList(list([], root, 4).bytes, root.publicKey, NOW, { minSequence: 5 }),
        VerifyReason.StaleRevocationList,
      ],
      ['same list again', () => verifyRevocationList(list([], root, 5).bytes, root.publicKey, NOW, { minSequence: 5 }), 'ok'],
      ['device in the person slot', v({ person: aliceLaptop.bytes, device: alice.bytes }), VerifyReason.WrongType],
      ['garbage', v({ ...aliceChain, device: new Uint8Array([1, 2, 3]) }), 'decode'],
    ];
  }

  it('returns every VerifyReason, typed, for the case that causes it', () => {
    const cases = reasonCases();
    for (const [name, run, expected] of cases) expect(outcome(run), name).toBe(expected);
    const reached = new Set(cases.map(([, , r]) => r));
    for (const reason of Object.values(VerifyReason)) expect(reached, reason).toContain(reason);
  });

  it('a flipped bit anywhere in any certificate never verifies and only throws DecodeError or VerifyError', () => {
    const t: TrustStore = { ...trust, revocationList: list([bobPhone.certId]) };
    const slots = ['person', 'device', 'office', 'officeHolder'] as const;
    fc.assert(
      fc.property(fc.constantFrom(...slots), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (slot, where) => {
        const original = aliceOfficeChain[slot] as Uint8Array;
        const chain = { ...aliceOfficeChain, [slot]: flipBit(original, Math.floor(where * original.length * 8)) };
        expect(outcome(() => verifyDeviceChain(chain, t, NOW))).not.toBe('ok');
      }),
      { numRuns: 150 },
    );
  });

  it('a flipped bit anywhere in a revocation list is never accepted', () => {
    const rl = list([alice.certId, bobPhone.certId, hom.certId]);
    fc.assert(
      fc.property(fc.nat({ max: rl.bytes.length * 8 - 1 }), (bit) => {
        const bad = flipBit(rl.bytes, bit);
        expect(outcome(() => verifyRevocationList(bad, root.publicKey, NOW))).not.toBe('ok');
        const decoded = (() => {
          try {
            return decodeRevocationList(bad);
          } catch {
            return undefined;
          }
        })();
        if (decoded) expect(outcome(() => verifyDeviceChain(aliceChain, { ...trust, revocationList: decoded }, NOW))).not.toBe('ok');
      }),
      { numRuns: 100 },
    );
  });

  it('uses the signed bytes of a revocation list, not its decoded fields', () => {
    const rl = verifyRevocationList(list([aliceLaptop.certId]).bytes, root.publicKey, NOW);
    const t: TrustStore = { ...trust, revocationList: rl };
    expect(outcome(() => verifyDeviceChain(aliceChain, t, NOW))).toBe(VerifyReason.Revoked);
    rl.revoked.length = 0; // editing the object does not un-revoke
    expect(outcome(() => verifyDeviceChain(aliceChain, t, NOW))).toBe(VerifyReason.Revoked);
    rl.bytes.set(flipBit(rl.bytes, rl.bytes.length * 8 - 1)); // editing its bytes makes it unauthentic
    expect(outcome(() => verifyDeviceChain(aliceChain, t, NOW))).toBe(VerifyReason.BadSignature);
    // An unverified list, decoded only, is authenticated on first use.
    const forged = decodeRevocationList(flipBit(list([]).bytes, list([]).bytes.length * 8 - 3));
    expect(outcome(() => verifyDeviceChain(aliceChain, { ...trust, revocationList: forged }, NOW))).toBe(VerifyReason.BadSignature);
  });

  it('verifies a person certificate alone', () => {
    expect(verifyPersonCert(alice.bytes, trust, NOW)).toEqual(alice);
    expect(outcome(() => verifyPersonCert(alice.bytes, { ...trust, revocationList: list([alice.certId]) }, NOW))).toBe(
      VerifyReason.Revoked,
    );
    expect(outcome(() => verifyPersonCert(alice.bytes, { rootPublicKey: foreign.publicKey }, NOW))).toBe(VerifyReason.WrongIssuer);
    expect(outcome(() => verifyPersonCert(alice.bytes, trust, T0 + 2 * YEAR))).toBe(VerifyReason.Expired);
  });
});

describe('offices', () => {
  it('hands an office to a successor with a new holder certificate and no new protocol', () => {
    const early = T0 + 10;
    const late = T0 + YEAR / 4 + 100;
    // Alice holds the office first; Bob's appointment is not yet valid.
    expect(verifyDeviceChain(aliceOfficeChain, trust, early).office?.title).toBe('Head of Mission');
    expect(outcome(() => verifyDeviceChain(bobOfficeChain, trust, early))).toBe(VerifyReason.NotYetValid);
    // Then Alice's appointment expires and Bob's takes over; Alice keeps her own account.
    expect(outcome(() => verifyDeviceChain(aliceOfficeChain, trust, late))).toBe(VerifyReason.Expired);
    expect(verifyDeviceChain(aliceChain, trust, late).person.name).toBe('Alice Martin');
    const v = verifyDeviceChain(bobOfficeChain, trust, late);
    expect(v.office?.officeId).toEqual(hom.officeId);
    expect(v.officeHolder?.personId).toEqual(bob.personId);
    // Or the root ends Alice's appointment early by revoking it.
    const t: TrustStore = { ...trust, revocationList: list([aliceHoM.certId]) };
    expect(outcome(() => verifyDeviceChain(aliceOfficeChain, t, early))).toBe(VerifyReason.Revoked);
    expect(verifyDeviceChain(aliceChain, t, early).person.name).toBe('Alice Martin');
  });
});

describe('issuers', () => {
  it('refuse bad arguments with ArgumentError', () => {
    const person = { identityKey: aliceId.publicKey, name: 'A', title: 'T', unit: 'U', validFrom: T0, validUntil: T0 + 1 };
    const device = {
      signingKey: aliceId.publicKey,
      encryption: { kem: DeviceKem.DhkemX25519 as number, publicKey: new Uint8Array(32) },
      label: 'l',
      validFrom: T0,
      validUntil: T0 + 1,
    };
    const bad: [string, () => unknown][] = [
      ['short identity key', () => issuePersonCert(root, { ...person, identityKey: new Uint8Array(31) })],
      ['short person id', () => issuePersonCert(root, { ...person, personId: new Uint8Array(15) })],
      ['long name', () => issuePersonCert(root, { ...person, name: 'x'.repeat(257) })],
      ['lone surrogate', () => issuePersonCert(root, { ...person, name: 'a\uD800b' })],
      ['empty window', () => issuePersonCert(root, { ...person, validUntil: T0 })],
      ['fractional time', () => issuePersonCert(root, { ...person, validFrom: 0.5 })],
      ['root with a wrong org id', () => issuePersonCert({ ...root, orgId: foreign.orgId }, person)],
      ['root with a mismatched key pair', () => issuePersonCert({ ...root, secretKey: foreign.secretKey }, person)],
      ['identity of another person', () => issueDeviceCert(bobId, alice, device)],
      ['mismatched identity pair', () => issueDeviceCert({ ...aliceId, secretKey: bobId.secretKey }, alice, device)],
      ['unknown KEM', () => issueDeviceCert(aliceId, alice, { ...device, encryption: { kem: 0x21, publicKey: new Uint8Array(32) } })],
      [
        'X-Wing key too short',
        () => issueDeviceCert(aliceId, alice, { ...device, encryption: { kem: DeviceKem.XWing, publicKey: new Uint8Array(32) } }),
      ],
      [
        'foreign office',
        () => issueOfficeHolderCert(root, issueOfficeCert(foreign, { title: 'x', unit: 'y', validFrom: 0, validUntil: 1 }), alice, device),
      ],
      ['bad revocation id', () => issueRevocationList(root, { sequence: 1, issuedAt: 1, nextUpdate: 2, revoked: [new Uint8Array(17)] })],
      ['list window', () => issueRevocationList(root, { sequence: 1, issuedAt: 2, nextUpdate: 2, revoked: [] })],
    ];
    for (const [what, run] of bad) expect(run, what).toThrow(ArgumentError);
  });

  it('sorts and deduplicates revoked ids', () => {
    const ids = [bob.certId, alice.certId, bob.certId, hom.certId];
    const rl = issueRevocationList(root, { sequence: 9, issuedAt: T0, nextUpdate: T0 + DAY, revoked: ids });
    const expected = [alice.certId, bob.certId, hom.certId].map(toHex).sort();
    expect(rl.revoked.map(toHex)).toEqual(expected);
    expect(rl.sequence).toBe(9);
  });

  it('never modify their inputs, nor do decoders and verifiers', () => {
    const snapshot = <T>(x: T): T => structuredClone(x);
    const inputs = { root, aliceId, alice, aliceLaptop, hom, aliceHoM, aliceOfficeChain };
    const before = snapshot(inputs);
    const revoked = [bobPhone.certId, bob.certId];
    const revokedBefore = snapshot(revoked);
    const fields = {
      identityKey: aliceId.publicKey,
      name: 'A',
      title: 'T',
      unit: 'U',
      validFrom: T0,
      validUntil: T0 + YEAR,
      personId: alice.personId,
    };
    const fieldsBefore = snapshot(fields);
    issuePersonCert(root, fields);
    issueDeviceCert(aliceId, alice, {
      signingKey: aliceLaptop.signingKey,
      encryption: aliceLaptop.encryption,
      label: 'x',
      validFrom: T0,
      validUntil: T0 + 1,
    });
    issueOfficeHolderCert(root, hom, alice, { validFrom: T0, validUntil: T0 + 1 });
    const rl = issueRevocationList(root, { sequence: 1, issuedAt: T0, nextUpdate: T0 + DAY, revoked });
    const rlBytes = Uint8Array.from(rl.bytes);
    const t: TrustStore = { rootPublicKey: root.publicKey, revocationList: rl };
    verifyDeviceChain(aliceOfficeChain, t, NOW);
    outcome(() => verifyDeviceChain(aliceOfficeChain, t, T0 + 30 * DAY));
    verifyRevocationList(rl.bytes, root.publicKey, NOW);
    decodePersonCert(alice.bytes);
    expect(inputs).toEqual(before);
    expect(revoked).toEqual(revokedBefore);
    expect(fields).toEqual(fieldsBefore);
    expect(rl.bytes).toEqual(rlBytes);
  });

  it('accept unaligned views and return copies that do not alias the input', () => {
    const buf = new Uint8Array(alice.bytes.length + 3);
    buf.set(alice.bytes, 3);
    const view = buf.subarray(3);
    const p = decodePersonCert(view);
    expect(p.bytes).toEqual(alice.bytes);
    view.set(flipBit(view, view.length * 8 - 1));
    expect(p.bytes).toEqual(alice.bytes);
    expect(p.signature).toEqual(alice.signature);
  });
});
