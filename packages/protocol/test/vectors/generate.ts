/**
 * Test-vector generator (spec/README.md, "Test vectors"). Every vector comes from a fixed seed
 * through the deterministic random source; each file holds inputs, intermediates (recomputed
 * here from the spec's formulas, not read out of the implementation), outputs and an `expect`
 * from a fixed set. `npm run vectors` writes them; vectors.test.ts regenerates and diffs them,
 * and checks each file on its own.
 */
import { concat, fromHex, toHex, utf8 } from '../../src/bytes.js';
import { type SealInput, seal } from '../../src/envelope.js';
import { type DistributionEntry, DistributionKind, preludeDigest, readPreludeFrame } from '../../src/envelope-wire.js';
import { hkdfExpand, hkdfExtract } from '../../src/hkdf.js';
import { HpkeAeadId, type HpkeSuite, KdfId, KemId, setupBaseS } from '../../src/hpke.js';
import {
  issueDeviceCert,
  issueOfficeCert,
  issueOfficeHolderCert,
  issuePersonCert,
  issueRevocationList,
  type OrgRoot,
  orgRootFromSecretKey,
  type PersonCert,
  personIdentityFromSecretKey,
} from '../../src/identity.js';
import { Label, labelled } from '../../src/labels.js';
import { getProvider } from '../../src/provider.js';
import { deterministicRandomForTesting, type RandomSource } from '../../src/random.js';
import { encodeSafetyNumberPayload, safetyNumber } from '../../src/safety-number.js';
import { ChunkReader, ChunkWriter, FrameType } from '../../src/stream.js';
import { xwingKeyPairFromSeed, xwingX25519PublicKey } from '../../src/xwing.js';

export type Expect = 'success' | 'decode-failure' | 'verify-failure' | 'open-failure';
export interface Vector {
  area: string;
  case: string;
  description: string;
  expect: Expect;
  /** For verify-failure: the VerifyReason. */
  reason?: string;
  inputs: Record<string, unknown>;
  intermediates?: Record<string, unknown>;
  outputs?: Record<string, unknown>;
}

export const NOW = 1_800_000_000;
const DAY = 86_400;
const VALID = { validFrom: NOW - 30 * DAY, validUntil: NOW + 365 * DAY };

/** A random source that records every draw, so vectors can list them in order. */
function recording(seed: string): { random: RandomSource; draws: string[] } {
  const inner = deterministicRandomForTesting(seed);
  const draws: string[] = [];
  return {
    draws,
    random: (n) => {
      const b = inner(n);
      draws.push(toHex(b)); // copied as hex: callers may wipe the array they get
      return b;
    },
  };
}

interface Party {
  name: string;
  identitySecretKey: Uint8Array;
  person: PersonCert;
  signingSecretKey: Uint8Array;
  encryptionSecretKey: Uint8Array;
  device: ReturnType<typeof issueDeviceCert>;
}

function party(root: OrgRoot, random: RandomSource, name: string, unit: string, kem: number, validity = VALID): Party {
  const identitySecretKey = random(32);
  const identity = personIdentityFromSecretKey(identitySecretKey);
  const person = issuePersonCert(root, {
    personId: random(16),
    identityKey: identity.publicKey,
    name,
    title: 'Counsellor',
    unit,
    ...validity,
  });
  const signingSecretKey = random(32);
  const encSeed = random(32);
  const encPublic = kem === KemId.XWing ? xwingKeyPairFromSeed(encSeed).publicKey : getProvider().x25519PublicKey(encSeed);
  const device = issueDeviceCert(identity, person, {
    deviceId: random(16),
    signingKey: getProvider().ed25519PublicKey(signingSecretKey),
    encryption: { kem, publicKey: encPublic },
    label: 'registry workstation',
    ...validity,
  });
  return { name, identitySecretKey, person, signingSecretKey, encryptionSecretKey: encSeed, device };
}

const partyJson = (p: Party) => ({
  personCert: toHex(p.person.bytes),
  deviceCert: toHex(p.device.bytes),
  encryptionSecretKey: toHex(p.encryptionSecretKey),
});

// ---------------------------------------------------------------------------------------------
// Identity

function identityVectors(): Vector[] {
  const random = deterministicRandomForTesting('vectors/identity');
  const rootSecret = random(32);
  const root = orgRootFromSecretKey(rootSecret);
  const a = party(root, random, 'Ambassador to Paris', 'Embassy in Paris', KemId.XWing);
  const office = issueOfficeCert(root, { officeId: random(16), title: 'Head of Mission', unit: 'Embassy in Paris', ...VALID });
  const holder = issueOfficeHolderCert(root, office, a.person, VALID);
  const crl = issueRevocationList(root, { sequence: 7, issuedAt: NOW - DAY, nextUpdate: NOW + 7 * DAY, revoked: [random(16), random(16)] });
  const common = { rootSecretKey: toHex(rootSecret), rootPublicKey: toHex(root.publicKey), now: NOW };
  const chain = { person: toHex(a.person.bytes), device: toHex(a.device.bytes) };
  const vectors: Vector[] = [
    {
      area: 'identity',
      case: 'chain-success',
      description: 'A person certified by the root, a device certified by the person, an office held by the person; verifies at `now`.',
      expect: 'success',
      inputs: {
        ...common,
        identitySecretKey: toHex(a.identitySecretKey),
        person: { personId: toHex(a.person.personId), name: a.person.name, title: a.person.title, unit: a.person.unit, ...VALID },
        chain: { ...chain, office: toHex(office.bytes), officeHolder: toHex(holder.bytes) },
        revocationList: toHex(crl.bytes),
      },
      intermediates: {
        orgId: toHex(root.orgId),
        personCertId: toHex(a.person.certId),
        deviceCertId: toHex(a.device.certId),
        personSignedBytesSha256: toHex(getProvider().sha256(labelled(Label.SigPersonCert, stripSignature(a.person.bytes)))),
      },
      outputs: { personName: a.person.name, officeTitle: office.title, officeUnit: office.unit },
    },
  ];
  const fail = (name: string, description: string, reason: string, inputs: Record<string, unknown>): Vector => ({
    area: 'identity',
    case: name,
    description,
    expect: 'verify-failure',
    reason,
    inputs: { ...common, ...inputs },
  });
  vectors.push(
    fail('chain-expired', 'The same chain one year and a day later.', 'expired', { now: NOW + 366 * DAY, chain }),
    fail('chain-not-yet-valid', 'The same chain before the certificates start.', 'not-yet-valid', { now: NOW - 31 * DAY, chain }),
    fail('chain-revoked-device', 'The device certificate id is on the revocation list.', 'revoked', {
      chain,
      revocationList: toHex(
        issueRevocationList(root, { sequence: 8, issuedAt: NOW - DAY, nextUpdate: NOW + DAY, revoked: [a.device.certId] }).bytes,
      ),
    }),
    fail('chain-stale-revocation-list', 'The revocation list is past its next update.', 'stale-revocation-list', {
      chain,
      revocationList: toHex(issueRevocationList(root, { sequence: 9, issuedAt: NOW - 9 * DAY, nextUpdate: NOW - DAY, revoked: [] }).bytes),
    }),
    fail('chain-bad-signature', 'One bit of the person certificate signature flipped.', 'bad-signature', {
      chain: { ...chain, person: toHex(flipLastBit(a.person.bytes)) },
    }),
  );
  const other = orgRootFromSecretKey(random(32));
  const b = party(other, random, 'Impostor', 'Embassy in Paris', KemId.XWing);
  vectors.push(
    fail('chain-wrong-issuer', 'A chain certified by another organisation root.', 'wrong-issuer', {
      chain: { person: toHex(b.person.bytes), device: toHex(b.device.bytes) },
    }),
  );
  const c = party(root, random, 'Clerk', 'Headquarters', KemId.XWing);
  vectors.push(
    fail('chain-broken', "A person certificate with another person's device certificate.", 'broken-chain', {
      chain: { person: chain.person, device: toHex(c.device.bytes) },
    }),
  );
  vectors.push({
    area: 'identity',
    case: 'decode-unknown-field',
    description: 'A person certificate with an extra map key 30 (re-encoded canonically): MUST be rejected as undecodable.',
    expect: 'decode-failure',
    inputs: { ...common, chain: { person: toHex(withExtraField(a.person.bytes)), device: chain.device } },
  });
  return vectors;
}

function stripSignature(certBytes: Uint8Array): Uint8Array {
  // Canonical map: the signature is key 31, the last entry: 0x18 0x1f 0x58 0x40 + 64 bytes.
  const tail = 4 + 64;
  const body = certBytes.subarray(0, certBytes.length - tail);
  const header = certBytes[0] as number; // 0xa0 | count, fewer than 24 entries
  const out = body.slice();
  out[0] = header - 1;
  return out;
}

function withExtraField(certBytes: Uint8Array): Uint8Array {
  // Insert key 30 => 0 just before key 31 and bump the map count.
  const tail = certBytes.subarray(certBytes.length - 68);
  const out = concat(certBytes.subarray(0, certBytes.length - 68), new Uint8Array([0x18, 0x1e, 0x00]), tail);
  out[0] = (certBytes[0] as number) + 1;
  return out;
}

function flipLastBit(b: Uint8Array): Uint8Array {
  const out = b.slice();
  out[out.length - 1]! ^= 1;
  return out;
}

// ---------------------------------------------------------------------------------------------
// HPKE with X-Wing

function hpkeVectors(): Vector[] {
  const random = deterministicRandomForTesting('vectors/hpke-xwing');
  const seed = random(32);
  const eseed = random(64);
  const { publicKey } = xwingKeyPairFromSeed(seed);
  const suite = { kem: KemId.XWing, kdf: KdfId.HkdfSha256, aead: HpkeAeadId.ChaCha20Poly1305 } as HpkeSuite;
  const info = utf8('valise test vector');
  const ctx = setupBaseS(suite, publicKey, info, { eseedForTesting: eseed });
  const pt = utf8('Beauty is truth, truth beauty');
  const aad = utf8('Count-0');
  const ct = ctx.seal(aad, pt);
  const exported = ctx.export(utf8('valise export'), 32);
  return [
    {
      area: 'hpke',
      case: 'xwing-base-chacha20poly1305',
      description: 'HPKE base mode, KEM X-Wing (0x647a), HKDF-SHA256, ChaCha20-Poly1305; one message and one export.',
      expect: 'success',
      inputs: {
        mode: 0,
        kemId: KemId.XWing,
        kdfId: KdfId.HkdfSha256,
        aeadId: HpkeAeadId.ChaCha20Poly1305,
        skRm: toHex(seed),
        eseed: toHex(eseed),
        info: toHex(info),
        aad: toHex(aad),
        pt: toHex(pt),
        exporterContext: toHex(utf8('valise export')),
        exportLength: 32,
      },
      intermediates: { pkRm: toHex(publicKey) },
      outputs: { enc: toHex(ctx.enc), ct: toHex(ct), exportedValue: toHex(exported) },
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// Safety numbers

function safetyVectors(): Vector[] {
  const random = deterministicRandomForTesting('vectors/safety-number');
  const a = { identityKey: personIdentityFromSecretKey(random(32)).publicKey, personId: random(16) };
  const b = { identityKey: personIdentityFromSecretKey(random(32)).publicKey, personId: random(16) };
  return [
    {
      area: 'safety-number',
      case: 'two-people',
      description: 'The 60-digit safety number of two people and the QR payload as the first party shows it.',
      expect: 'success',
      inputs: {
        a: { identityKey: toHex(a.identityKey), personId: toHex(a.personId) },
        b: { identityKey: toHex(b.identityKey), personId: toHex(b.personId) },
      },
      outputs: { safetyNumber: safetyNumber(a, b), qrPayload: toHex(encodeSafetyNumberPayload(a, b)) },
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// Envelopes

interface EnvelopeCase {
  envelope: Uint8Array;
  inputs: Record<string, unknown>;
  intermediates: Record<string, unknown>;
  outputs: Record<string, unknown>;
  sender: Party;
  recipients: Party[];
  streamKey: Uint8Array;
  root: OrgRoot;
}

function envelopeCase(
  seed: string,
  kem: number,
  recipientCount: number,
  body: Uint8Array,
  personal?: (i: number) => Uint8Array,
): EnvelopeCase {
  const keys = deterministicRandomForTesting(`${seed}/keys`);
  const rootSecret = keys(32);
  const root = orgRootFromSecretKey(rootSecret);
  const sender = party(root, keys, 'Head of Registry', 'Headquarters', kem);
  const recipients = Array.from({ length: recipientCount }, (_, i) => party(root, keys, `Ambassador ${i + 1}`, `Embassy ${i + 1}`, kem));
  const distribution: DistributionEntry[] = recipients.map((r) => ({
    kind: DistributionKind.Person,
    id: r.person.personId,
    name: r.person.unit,
  }));
  const input: SealInput = {
    subject: 'Circular 7/2027',
    classification: 'CONFIDENTIAL',
    contentType: 'text/plain; charset=utf-8',
    distribution,
    createdAt: NOW,
  };
  const personalPayloads = personal ? recipients.map((_, i) => personal(i)) : undefined;
  if (personalPayloads) input.personal = (i) => personalPayloads[i] as Uint8Array;
  const rec = recording(`${seed}/seal`);
  const verified = recipients.map((r) => ({ verified: true as const, person: r.person, device: r.device }));
  const envelope = seal(
    input,
    body,
    { chain: { person: sender.person.bytes, device: sender.device.bytes }, signingSecretKey: sender.signingSecretKey },
    verified,
    { randomForTesting: rec.random },
  );

  // Intermediates, recomputed from the spec's formulas.
  const [envelopeId, contentKey, hintSecret] = rec.draws.map(fromHex) as [Uint8Array, Uint8Array, Uint8Array];
  const p = getProvider();
  const { prelude } = readPreludeFrame(envelope);
  const digest = preludeDigest(prelude);
  const streamKey = hkdfExpand(hkdfExtract(digest, contentKey), labelled(Label.EnvelopeStreamKey), 32);
  const hintPub = (pk: Uint8Array) => (kem === KemId.XWing ? xwingX25519PublicKey(pk) : pk);
  const hints = recipients.map((r) => {
    const rpk = hintPub(r.device.encryption.publicKey);
    return toHex(hkdfExpand(hkdfExtract(digest, p.x25519(hintSecret, rpk)), labelled(Label.EnvelopeHint, rpk), 16));
  });
  const frames = readFrames(envelope, streamKey);
  const header = frames[0]?.data as Uint8Array;
  const bodyDigest = p.sha256(concat(labelled(Label.EnvelopeBodyDigest), body));
  const headerDigest = p.sha256(header);
  const signed = labelled(Label.EnvelopeSignature, digest, headerDigest, bodyDigest);
  return {
    envelope,
    sender,
    recipients,
    streamKey,
    root,
    inputs: {
      rootSecretKey: toHex(rootSecret),
      rootPublicKey: toHex(root.publicKey),
      now: NOW,
      sender: {
        personCert: toHex(sender.person.bytes),
        deviceCert: toHex(sender.device.bytes),
        signingSecretKey: toHex(sender.signingSecretKey),
      },
      recipients: recipients.map(partyJson),
      content: {
        subject: input.subject,
        classification: input.classification,
        contentType: input.contentType,
        createdAt: NOW,
        distribution: distribution.map((d) => ({ kind: d.kind, id: toHex(d.id), name: d.name })),
        body: toHex(body),
        personal: personalPayloads?.map(toHex),
      },
      randomDraws: rec.draws,
    },
    intermediates: {
      envelopeId: toHex(envelopeId),
      contentKey: toHex(contentKey),
      hintKey: toHex(p.x25519PublicKey(hintSecret)),
      preludeDigest: toHex(digest),
      streamKey: toHex(streamKey),
      hints,
      header: toHex(header),
      headerDigest: toHex(headerDigest),
      frames: frames.map((f) => [f.type, f.data.length]),
      bodyDigest: toHex(bodyDigest),
      signedMessageSha256: toHex(p.sha256(signed)),
    },
    outputs: { envelope: toHex(envelope) },
  };
}

/** Decrypts the stream with the stream key and splits it into frames, following the spec. */
export function readFrames(envelope: Uint8Array, streamKey: Uint8Array): { type: number; data: Uint8Array }[] {
  const { recordsOffset } = readPreludeFrame(envelope);
  const r = new ChunkReader(streamKey);
  const plaintext = concat(...r.push(envelope.subarray(recordsOffset)), r.end());
  const frames: { type: number; data: Uint8Array }[] = [];
  const view = new DataView(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength);
  for (let o = 0; o < plaintext.length; ) {
    const type = plaintext[o] as number;
    const length = view.getUint32(o + 1);
    frames.push({ type, data: plaintext.subarray(o + 5, o + 5 + length) });
    o += 5 + length;
  }
  return frames;
}

function envelopeVectors(): Vector[] {
  const out: Vector[] = [];
  const body = utf8('All missions are to review the consular fee schedule and confirm receipt by 1 March.\n');
  const one = envelopeCase('vectors/envelope/xwing-one', KemId.XWing, 1, body);
  out.push({
    area: 'envelope',
    case: 'xwing-one-recipient',
    description: 'One item sealed for one X-Wing device; `randomDraws` are the random byte strings seal drew, in order.',
    expect: 'success',
    inputs: one.inputs,
    intermediates: one.intermediates,
    outputs: { ...one.outputs, opened: [{ recipientIndex: 0, body: toHex(body) }] },
  });

  const three = envelopeCase('vectors/envelope/dhkem-three', KemId.DhkemX25519HkdfSha256, 3, new Uint8Array(70_000).fill(0x41));
  out.push({
    area: 'envelope',
    case: 'dhkem-three-recipients-two-chunks',
    description: 'A 70,000-byte body (two body frames, two chunks) sealed for three DHKEM-X25519 devices.',
    expect: 'success',
    inputs: three.inputs,
    intermediates: three.intermediates,
    outputs: { ...three.outputs, opened: [0, 1, 2].map((i) => ({ recipientIndex: i, body: toHex(new Uint8Array(70_000).fill(0x41)) })) },
  });

  const pers = envelopeCase('vectors/envelope/personal', KemId.XWing, 2, utf8('shared annex'), (i) =>
    utf8(`copy ${i}: the text as marked for recipient ${i}`),
  );
  out.push({
    area: 'envelope',
    case: 'xwing-personal-payloads',
    description: 'Two recipients, each with its own personal payload committed to by a salted digest in the header.',
    expect: 'success',
    inputs: pers.inputs,
    intermediates: pers.intermediates,
    outputs: {
      ...pers.outputs,
      opened: [0, 1].map((i) => ({
        recipientIndex: i,
        body: toHex(utf8('shared annex')),
        personal: toHex(utf8(`copy ${i}: the text as marked for recipient ${i}`)),
      })),
    },
  });

  // Negative cases, all derived from the one-recipient envelope.
  const base = { rootPublicKey: one.inputs.rootPublicKey, now: NOW, recipient: partyJson(one.recipients[0] as Party) };
  const env = one.envelope;
  const { recordsOffset } = readPreludeFrame(env);
  const negative = (
    name: string,
    description: string,
    expect: Expect,
    envelope: Uint8Array,
    extra: Record<string, unknown> = {},
    reason?: string,
  ): Vector => {
    const v: Vector = { area: 'envelope', case: name, description, expect, inputs: { ...base, ...extra, envelope: toHex(envelope) } };
    if (reason) v.reason = reason;
    return v;
  };
  const tampered = env.slice();
  tampered[recordsOffset + 40]! ^= 0x01;
  out.push(negative('tampered-stream', 'One bit flipped inside the encrypted stream (in the sealed header).', 'open-failure', tampered));
  out.push(
    negative(
      'truncated',
      'The last 85 bytes cut off (the trailer frame and the final tag).',
      'open-failure',
      env.subarray(0, env.length - 85),
    ),
  );
  const outsider = envelopeCase('vectors/envelope/xwing-one', KemId.XWing, 2, body).recipients[1] as Party;
  out.push(
    negative('wrong-recipient', 'A device of the same organisation that is not a recipient.', 'open-failure', env, {
      recipient: partyJson(outsider),
    }),
  );
  const crl = issueRevocationList(one.root, {
    sequence: 1,
    issuedAt: NOW - DAY,
    nextUpdate: NOW + DAY,
    revoked: [one.sender.device.certId],
  });
  out.push(
    negative(
      'revoked-sender',
      "The sender's device certificate is revoked.",
      'verify-failure',
      env,
      { revocationList: toHex(crl.bytes) },
      'revoked',
    ),
  );
  out.push(
    negative('expired-sender', 'Opened after the certificates expired.', 'verify-failure', env, { now: NOW + 400 * DAY }, 'expired'),
  );
  const badPrelude = env.slice();
  badPrelude[4]! = 0xbf; // the prelude map made indefinite-length: not deterministic CBOR
  out.push(negative('non-canonical-prelude', 'The prelude map header rewritten as indefinite-length.', 'decode-failure', badPrelude));
  out.push(
    negative(
      'forged-body-by-recipient',
      'A recipient who knows the stream key replaces the body and keeps the signature: the signature no longer verifies.',
      'verify-failure',
      forgeBody(env, one.streamKey),
      {},
      'bad-signature',
    ),
  );
  return out;
}

/** Re-encrypts the stream with a different body of the same length, keeping header, padding and trailer. */
function forgeBody(env: Uint8Array, streamKey: Uint8Array): Uint8Array {
  const { recordsOffset } = readPreludeFrame(env);
  const w = new ChunkWriter(streamKey);
  const out: Uint8Array[] = [env.subarray(0, recordsOffset)];
  for (const f of readFrames(env, streamKey)) {
    const data =
      f.type === FrameType.Body
        ? utf8(
            'All missions are to IGNORE the consular fee schedule; no receipt needed.\n'.padEnd(f.data.length, ' ').slice(0, f.data.length),
          )
        : f.data;
    const head = new Uint8Array(5);
    head[0] = f.type;
    new DataView(head.buffer).setUint32(1, data.length);
    out.push(...w.write(head), ...w.write(data));
  }
  out.push(w.finish());
  return concat(...out);
}

export function generateAllVectors(): Vector[] {
  return [...identityVectors(), ...hpkeVectors(), ...safetyVectors(), ...envelopeVectors()];
}

export const vectorPath = (v: Vector) => `${v.area}/${v.case}.json`;
export const vectorJson = (v: Vector) => `${JSON.stringify(v, null, 1)}\n`;
