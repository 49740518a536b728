/**
 * The scripted exchange behind `npm run demo`: a ministry with headquarters and three embassies;
 * headquarters seals one circular for every embassy device, each embassy opens it and checks
 * who sent it. Everything runs in memory; the relay arrives with `valise relay serve`.
 */
import {
  concat,
  DistributionKind,
  formatSafetyNumber,
  generateOrgRoot,
  generatePersonIdentity,
  getProvider,
  issueDeviceCert,
  issuePersonCert,
  KemId,
  type OrgRoot,
  open,
  readPreludeFrame,
  safetyNumber,
  seal,
  splitEnvelope,
  systemRandom,
  type TrustStore,
  toHex,
  type VerifiedDevice,
  verifyDeviceChain,
  xwingKeyPairFromSeed,
} from '@valise/protocol';
import { useNodeCrypto } from '@valise/protocol/node';

const DAY = 24 * 3600;

interface Member {
  name: string;
  unit: string;
  verified: VerifiedDevice;
  signingSecretKey: Uint8Array;
  encryptionSecretKey: Uint8Array;
  identityKey: Uint8Array;
  personId: Uint8Array;
}

function enrol(root: OrgRoot, trust: TrustStore, name: string, title: string, unit: string, now: number): Member {
  const identity = generatePersonIdentity();
  const person = issuePersonCert(root, {
    identityKey: identity.publicKey,
    name,
    title,
    unit,
    validFrom: now - DAY,
    validUntil: now + 365 * DAY,
  });
  const signingSecretKey = systemRandom(32);
  const enc = xwingKeyPairFromSeed(systemRandom(32));
  const device = issueDeviceCert(identity, person, {
    signingKey: getProvider().ed25519PublicKey(signingSecretKey),
    encryption: { kem: KemId.XWing, publicKey: enc.publicKey },
    label: 'registry workstation',
    validFrom: now - DAY,
    validUntil: now + 365 * DAY,
  });
  const verified = verifyDeviceChain({ person: person.bytes, device: device.bytes }, trust, now);
  return {
    name,
    unit,
    verified,
    signingSecretKey,
    encryptionSecretKey: enc.secretKey,
    identityKey: identity.publicKey,
    personId: person.personId,
  };
}

export function runDemo(say: (line: string) => void = console.log): void {
  useNodeCrypto();
  const t0 = performance.now();
  const now = Math.floor(Date.now() / 1000);
  const step = (n: number, text: string) => say(`\n[${n}] ${text}`);

  step(1, 'The Ministry creates its organisation root key (Ed25519).');
  const root = generateOrgRoot();
  const trust: TrustStore = { rootPublicKey: root.publicKey };
  say(`    org id ${toHex(root.orgId)}`);

  step(2, 'The root certifies people; each person certifies their own device (signing key + X-Wing key).');
  const hq = enrol(root, trust, 'Head of Registry', 'Registrar', 'Headquarters', now);
  const embassies = ['Paris', 'Nairobi', 'Jakarta'].map((city) =>
    enrol(root, trust, `Ambassador to ${city}`, 'Head of Mission', `Embassy in ${city}`, now),
  );
  for (const m of [hq, ...embassies]) say(`    ${m.unit.padEnd(20)} ${m.name.padEnd(24)} device ${toHex(m.verified.device.certId)}`);

  step(3, 'Headquarters seals one circular for the three embassies (body encrypted once, one key wrap per device).');
  const body = new TextEncoder().encode(
    'CIRCULAR 7/2026\n\nAll missions are to review the consular fee schedule attached and confirm receipt by 1 March.\n',
  );
  const envelope = seal(
    {
      subject: 'Circular 7/2026: consular fees',
      classification: 'CONFIDENTIAL',
      distribution: embassies.map((e) => ({ kind: DistributionKind.Person, id: e.personId, name: e.unit })),
    },
    body,
    { chain: { person: hq.verified.person.bytes, device: hq.verified.device.bytes }, signingSecretKey: hq.signingSecretKey },
    embassies.map((e) => e.verified),
  );
  const { prelude, recordsOffset } = readPreludeFrame(envelope);
  say(
    `    envelope ${toHex(prelude.envelopeId)}: ${envelope.length} bytes, ${prelude.entries.length} entries, padded record stream of ${envelope.length - recordsOffset} bytes`,
  );
  say('    what a relay can see: the envelope id, the KEM, opaque entries and a padded size; no sender, no subject, no names');

  step(4, 'A relay would cut the envelope into one delivery per embassy without any key.');
  const { deliveries, records } = splitEnvelope(envelope);
  say(`    ${deliveries.length} deliveries of ${deliveries[0]?.length} bytes each + ${records.length} shared bytes stored once`);

  step(5, 'Each embassy opens its delivery, verifies the sender against the root, and reads the circular.');
  for (const [i, e] of embassies.entries()) {
    const got = open(
      concat(deliveries[i] as Uint8Array, records),
      { device: e.verified.device, encryptionSecretKey: e.encryptionSecretKey },
      trust,
      { now },
    );
    const firstLine = new TextDecoder().decode(got.body).split('\n')[0];
    say(
      `    ${e.unit.padEnd(20)} from ${got.sender.person.name} (${got.sender.person.unit}), "${got.subject}" [${got.classification}]: ${firstLine}`,
    );
  }

  step(6, 'An outsider device of the same ministry cannot open it, and learns nothing about why.');
  const outsider = enrol(root, trust, 'Clerk', 'Clerk', 'Embassy in Lima', now);
  try {
    open(envelope, { device: outsider.verified.device, encryptionSecretKey: outsider.encryptionSecretKey }, trust, { now });
    throw new Error('the outsider opened the envelope');
  } catch (err) {
    say(`    ${(err as Error).message}`);
  }

  step(7, 'The Ambassador to Paris and the Head of Registry compare safety numbers out of band.');
  const paris = embassies[0] as Member;
  const number = safetyNumber(
    { identityKey: hq.identityKey, personId: hq.personId },
    { identityKey: paris.identityKey, personId: paris.personId },
  );
  say(`    ${formatSafetyNumber(number)}`);

  say(`\nDone in ${(performance.now() - t0).toFixed(0)} ms.`);
}
