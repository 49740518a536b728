/**
 * Valise inputs for the benchmarks: one organisation, a sender device, and recipient devices of
 * either KEM. Everything here runs once, outside the timed loops: recipients are verified once,
 * as a real client verifies its directory once and caches the result.
 */
import {
  type DeviceCert,
  DeviceKem,
  type DistributionEntry,
  DistributionKind,
  generateOrgRoot,
  generatePersonIdentity,
  getProvider,
  issueDeviceCert,
  issuePersonCert,
  type OrgRoot,
  type PersonCert,
  type PersonIdentity,
  type RecipientCredentials,
  type SealInput,
  type SenderCredentials,
  systemRandom,
  type TrustStore,
  type VerifiedDevice,
  verifyDeviceChain,
  xwingKeyPairFromSeed,
} from '../packages/protocol/src/index.js';

export type Kem = 'xwing' | 'x25519';
export const KEM_ID: Record<Kem, DeviceKem> = { xwing: DeviceKem.XWing, x25519: DeviceKem.DhkemX25519 };
export const KEM_LABEL: Record<Kem, string> = { xwing: 'X-Wing', x25519: 'X25519' };

export interface RecipientDevice {
  verified: VerifiedDevice;
  credentials: RecipientCredentials;
  /** The device's KEM key pair, for the floor rows that call HPKE directly. */
  kemPublicKey: Uint8Array;
  kemSecretKey: Uint8Array;
}

export interface Org {
  root: OrgRoot;
  trust: TrustStore;
  /** Seconds since the epoch at which every certificate is valid. */
  now: number;
  sender: SenderCredentials;
  /** The sender device's Ed25519 key pair, for the floor rows. */
  senderSigning: { secretKey: Uint8Array; publicKey: Uint8Array };
  /** Recipient devices of one KEM, two devices per person (cached per KEM and count). */
  recipients(kem: Kem, count: number): RecipientDevice[];
  sealInput(recipients: readonly RecipientDevice[]): SealInput;
}

const DAY = 86_400;

function kemKeyPair(kem: Kem): { publicKey: Uint8Array; secretKey: Uint8Array } {
  if (kem === 'xwing') return xwingKeyPairFromSeed(systemRandom(32));
  const secretKey = systemRandom(32);
  return { publicKey: getProvider().x25519PublicKey(secretKey), secretKey };
}

export function buildOrg(): Org {
  const now = Math.floor(Date.now() / 1000);
  const validity = { validFrom: now - DAY, validUntil: now + 30 * DAY };
  const root = generateOrgRoot();
  const trust: TrustStore = { rootPublicKey: root.publicKey };

  const person = (name: string): { identity: PersonIdentity; cert: PersonCert } => {
    const identity = generatePersonIdentity();
    const cert = issuePersonCert(root, {
      identityKey: identity.publicKey,
      name,
      title: 'Counsellor',
      unit: 'Embassy in Paris',
      ...validity,
    });
    return { identity, cert };
  };

  const device = (owner: { identity: PersonIdentity; cert: PersonCert }, kem: Kem, label: string) => {
    const signingSecretKey = systemRandom(32);
    const signingKey = getProvider().ed25519PublicKey(signingSecretKey);
    const kemPair = kemKeyPair(kem);
    const cert: DeviceCert = issueDeviceCert(owner.identity, owner.cert, {
      signingKey,
      encryption: { kem: KEM_ID[kem], publicKey: kemPair.publicKey },
      label,
      ...validity,
    });
    const verified = verifyDeviceChain({ person: owner.cert.bytes, device: cert.bytes }, trust, now);
    return { cert, verified, signingSecretKey, signingKey, kemPair };
  };

  const alice = person('Alice Sender');
  const aliceLaptop = device(alice, 'xwing', 'laptop');
  const sender: SenderCredentials = {
    chain: { person: alice.cert.bytes, device: aliceLaptop.cert.bytes },
    signingSecretKey: aliceLaptop.signingSecretKey,
  };

  const cache = new Map<string, RecipientDevice[]>();
  const recipients = (kem: Kem, count: number): RecipientDevice[] => {
    const id = `${kem}/${count}`;
    let list = cache.get(id);
    if (list === undefined) {
      list = [];
      let owner = person('Recipient 0');
      for (let i = 0; i < count; i++) {
        if (i % 2 === 0 && i > 0) owner = person(`Recipient ${i / 2}`);
        const d = device(owner, kem, i % 2 === 0 ? 'laptop' : 'phone');
        list.push({
          verified: d.verified,
          credentials: { device: d.cert, encryptionSecretKey: d.kemPair.secretKey },
          kemPublicKey: d.kemPair.publicKey,
          kemSecretKey: d.kemPair.secretKey,
        });
      }
      cache.set(id, list);
    }
    return list;
  };

  const sealInput = (list: readonly RecipientDevice[]): SealInput => {
    // Addressed to people, as a sender writes it; deduplicated by person.
    const seen = new Set<string>();
    const distribution: DistributionEntry[] = [];
    for (const r of list) {
      const p = r.verified.person;
      const k = Buffer.from(p.personId).toString('hex');
      if (seen.has(k)) continue;
      seen.add(k);
      distribution.push({ kind: DistributionKind.Person, id: p.personId, name: p.name });
    }
    return { subject: 'Benchmark: quarterly report', classification: 'UNCLASSIFIED', distribution };
  };

  return {
    root,
    trust,
    now,
    sender,
    senderSigning: { secretKey: aliceLaptop.signingSecretKey, publicKey: aliceLaptop.signingKey },
    recipients,
    sealInput,
  };
}
