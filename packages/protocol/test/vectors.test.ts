/**
 * The vectors in test-vectors/: regenerated from their seeds and compared byte for byte with
 * the files, then each file checked on its own, from its inputs, against its `expect`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../src/bytes.js';
import { open, type SealInput, seal } from '../src/envelope.js';
import type { DistributionKind } from '../src/envelope-wire.js';
import { DecodeError, OpenError, VerifyError } from '../src/errors.js';
import { HpkeAeadId, type HpkeSuite, KdfId, KemId, setupBaseR, setupBaseS } from '../src/hpke.js';
import { decodeDeviceCert, decodePersonCert, decodeRevocationList, type TrustStore, verifyDeviceChain } from '../src/identity.js';
import { encodeSafetyNumberPayload, safetyNumber } from '../src/safety-number.js';
import { generateAllVectors, readFrames, type Vector, vectorJson, vectorPath } from './vectors/generate.js';

const root = fileURLToPath(new URL('../../../test-vectors/', import.meta.url));
const areas = ['identity', 'hpke', 'safety-number', 'envelope'];
const files = areas.flatMap((area) => readdirSync(join(root, area)).map((f) => `${area}/${f}`));
const load = (path: string) => JSON.parse(readFileSync(join(root, path), 'utf8')) as Vector;
const hex = (x: unknown) => fromHex(x as string);

describe('test-vectors/ are reproducible', () => {
  it('regenerating from the seeds gives the same files, byte for byte', () => {
    const generated = generateAllVectors();
    expect(generated.map(vectorPath).sort()).toEqual([...files].sort());
    for (const v of generated) expect(vectorJson(v), vectorPath(v)).toBe(readFileSync(join(root, vectorPath(v)), 'utf8'));
  }, 60_000);
});

/** Runs `f` and classifies the outcome into the fixed set of expectations. */
function outcome(f: () => void): { expect: string; reason?: string } {
  try {
    f();
    return { expect: 'success' };
  } catch (err) {
    if (err instanceof VerifyError) return { expect: 'verify-failure', reason: err.reason };
    if (err instanceof DecodeError) return { expect: 'decode-failure' };
    if (err instanceof OpenError) return { expect: 'open-failure' };
    throw err;
  }
}

function trustFrom(inputs: Record<string, unknown>): TrustStore {
  const trust: TrustStore = { rootPublicKey: hex(inputs.rootPublicKey) };
  if (inputs.revocationList) trust.revocationList = decodeRevocationList(hex(inputs.revocationList));
  return trust;
}

type Party = { personCert: string; deviceCert: string; encryptionSecretKey: string };
const recipientOf = (p: Party) => ({
  device: decodeDeviceCert(fromHex(p.deviceCert)),
  encryptionSecretKey: fromHex(p.encryptionSecretKey),
});

function checkIdentity(v: Vector) {
  const i = v.inputs as Record<string, unknown> & { chain: Record<string, string> };
  const chain = { person: hex(i.chain.person), device: hex(i.chain.device) } as Parameters<typeof verifyDeviceChain>[0];
  if (i.chain.office) chain.office = hex(i.chain.office);
  if (i.chain.officeHolder) chain.officeHolder = hex(i.chain.officeHolder);
  let verified: ReturnType<typeof verifyDeviceChain> | undefined;
  const got = outcome(() => {
    verified = verifyDeviceChain(chain, trustFrom(i), i.now as number);
  });
  expect(got).toEqual(v.reason ? { expect: v.expect, reason: v.reason } : { expect: v.expect });
  if (v.expect === 'success' && verified) {
    expect(verified.person.name).toBe(v.outputs?.personName);
    expect(verified.office?.title).toBe(v.outputs?.officeTitle);
    expect(toHex(verified.person.certId)).toBe(v.intermediates?.personCertId);
    expect(toHex(verified.device.certId)).toBe(v.intermediates?.deviceCertId);
    expect(toHex(verified.person.orgId)).toBe(v.intermediates?.orgId);
  }
}

function checkHpke(v: Vector) {
  const i = v.inputs as Record<string, string | number>;
  const suite = { kem: i.kemId, kdf: i.kdfId, aead: i.aeadId } as HpkeSuite;
  expect(suite).toEqual({ kem: KemId.XWing, kdf: KdfId.HkdfSha256, aead: HpkeAeadId.ChaCha20Poly1305 });
  const o = v.outputs as Record<string, string>;
  const r = setupBaseR(suite, fromHex(o.enc as string), hex(i.skRm), hex(i.info));
  expect(toHex(r.open(hex(i.aad), fromHex(o.ct as string)))).toBe(i.pt);
  expect(toHex(r.export(hex(i.exporterContext), i.exportLength as number))).toBe(o.exportedValue);
  const s = setupBaseS(suite, hex(v.intermediates?.pkRm), hex(i.info), { eseedForTesting: hex(i.eseed) });
  expect(toHex(s.enc)).toBe(o.enc);
}

function checkSafety(v: Vector) {
  const i = v.inputs as Record<string, Record<string, string>>;
  const party = (x: Record<string, string> | undefined) => ({ identityKey: hex(x?.identityKey), personId: hex(x?.personId) });
  expect(safetyNumber(party(i.a), party(i.b))).toBe(v.outputs?.safetyNumber);
  expect(safetyNumber(party(i.b), party(i.a))).toBe(v.outputs?.safetyNumber);
  expect(toHex(encodeSafetyNumberPayload(party(i.a), party(i.b)))).toBe(v.outputs?.qrPayload);
}

function checkEnvelope(v: Vector) {
  const i = v.inputs as Record<string, unknown>;
  const trust = trustFrom(i);
  if (v.expect !== 'success') {
    const got = outcome(() => open(hex(i.envelope), recipientOf(i.recipient as Party), trust, { now: i.now as number }));
    expect(got).toEqual(v.reason ? { expect: v.expect, reason: v.reason } : { expect: v.expect });
    return;
  }
  const envelope = hex(v.outputs?.envelope);
  const recipients = i.recipients as Party[];
  for (const o of (v.outputs as Record<string, unknown>).opened as { recipientIndex: number; body: string; personal?: string }[]) {
    const got = open(envelope, recipientOf(recipients[o.recipientIndex] as Party), trust, { now: i.now as number });
    expect(got.recipientIndex).toBe(o.recipientIndex);
    expect(toHex(got.body)).toBe(o.body);
    expect(got.personal && toHex(got.personal)).toBe(o.personal);
  }
  // The stream key in the intermediates opens the stream to the listed frames and header.
  const im = v.intermediates as Record<string, unknown>;
  const frames = readFrames(envelope, hex(im.streamKey));
  expect(frames.map((f) => [f.type, f.data.length])).toEqual(im.frames);
  expect(toHex(frames[0]?.data as Uint8Array)).toBe(im.header);
  // Sealing again from the listed inputs and random draws gives the same envelope.
  const c = i.content as Record<string, unknown>;
  const draws = (i.randomDraws as string[]).map(fromHex);
  let next = 0;
  const replay = (n: number) => {
    const d = draws[next++];
    if (!d || d.length !== n) throw new Error(`random draw ${next - 1} is not ${n} bytes`);
    return d.slice();
  };
  const input: SealInput = {
    subject: c.subject as string,
    classification: c.classification as string,
    contentType: c.contentType as string,
    createdAt: c.createdAt as number,
    distribution: (c.distribution as { kind: number; id: string; name: string }[]).map((d) => ({
      kind: d.kind as (typeof DistributionKind)[keyof typeof DistributionKind],
      id: fromHex(d.id),
      name: d.name,
    })),
  };
  const personal = c.personal as string[] | undefined;
  if (personal) input.personal = (k) => fromHex(personal[k] as string);
  const s = i.sender as Record<string, string>;
  const verified = recipients.map((r) =>
    verifyDeviceChain({ person: fromHex(r.personCert), device: fromHex(r.deviceCert) }, trust, i.now as number),
  );
  const again = seal(
    input,
    hex(c.body),
    { chain: { person: hex(s.personCert), device: hex(s.deviceCert) }, signingSecretKey: hex(s.signingSecretKey) },
    verified,
    {
      randomForTesting: replay,
    },
  );
  expect(next).toBe(draws.length);
  expect(toHex(again)).toBe(v.outputs?.envelope);
  expect(decodePersonCert(hex(s.personCert)).name).toBeTypeOf('string');
}

const checkers: Record<string, (v: Vector) => void> = {
  identity: checkIdentity,
  hpke: checkHpke,
  'safety-number': checkSafety,
  envelope: checkEnvelope,
};

describe.each(files)('%s', (path) => {
  it('holds as its `expect` says', () => {
    const v = load(path);
    expect(['success', 'decode-failure', 'verify-failure', 'open-failure']).toContain(v.expect);
    (checkers[v.area] as (v: Vector) => void)(v);
  });
});
