/** A test organisation: a root, people and devices, all from one deterministic seed. */
import type { RecipientCredentials, SenderCredentials } from '../../src/envelope.js';
import { KemId } from '../../src/hpke.js';
import {
  type DeviceCert,
  generateOrgRoot,
  generatePersonIdentity,
  issueDeviceCert,
  issuePersonCert,
  type OrgRoot,
  type PersonCert,
  type PersonIdentity,
  type TrustStore,
  type VerifiedDevice,
  verifyDeviceChain,
} from '../../src/identity.js';
import { getProvider } from '../../src/provider.js';
import { deterministicRandomForTesting, type RandomSource } from '../../src/random.js';
import { xwingKeyPairFromSeed } from '../../src/xwing.js';

export const NOW = 1_800_000_000; // 2027-01-15
export const YEAR = 365 * 24 * 3600;

export interface TestDevice {
  person: PersonCert;
  identity: PersonIdentity;
  device: DeviceCert;
  signingSecretKey: Uint8Array;
  encryptionSecretKey: Uint8Array;
  verified: VerifiedDevice;
  sender: SenderCredentials;
  recipient: RecipientCredentials;
}

export interface TestOrg {
  root: OrgRoot;
  trust: TrustStore;
  random: RandomSource;
  addDevice(
    name: string,
    unit: string,
    options?: { kem?: number; validFrom?: number; validUntil?: number; person?: TestDevice },
  ): TestDevice;
}

export function encryptionKeyPair(kem: number, random: RandomSource): { publicKey: Uint8Array; secretKey: Uint8Array } {
  if (kem === KemId.XWing) return xwingKeyPairFromSeed(random(32));
  const secretKey = random(32);
  return { secretKey, publicKey: getProvider().x25519PublicKey(secretKey) };
}

export function makeOrg(seed: string): TestOrg {
  const random = deterministicRandomForTesting(seed);
  const opts = { randomForTesting: random };
  const root = generateOrgRoot(opts);
  const trust: TrustStore = { rootPublicKey: root.publicKey };
  return {
    root,
    trust,
    random,
    addDevice(name, unit, o = {}) {
      const validFrom = o.validFrom ?? NOW - YEAR;
      const validUntil = o.validUntil ?? NOW + YEAR;
      let identity: PersonIdentity;
      let person: PersonCert;
      if (o.person) {
        identity = o.person.identity;
        person = o.person.person;
      } else {
        identity = generatePersonIdentity(opts);
        person = issuePersonCert(root, { identityKey: identity.publicKey, name, title: 'Counsellor', unit, validFrom, validUntil }, opts);
      }
      const signingSecretKey = random(32);
      const kem = o.kem ?? KemId.XWing;
      const enc = encryptionKeyPair(kem, random);
      const device = issueDeviceCert(
        identity,
        person,
        {
          signingKey: getProvider().ed25519PublicKey(signingSecretKey),
          encryption: { kem, publicKey: enc.publicKey },
          label: 'laptop',
          validFrom,
          validUntil,
        },
        opts,
      );
      const chain = { person: person.bytes, device: device.bytes };
      const verified = verifyDeviceChain(chain, trust, NOW);
      return {
        person,
        identity,
        device,
        signingSecretKey,
        encryptionSecretKey: enc.secretKey,
        verified,
        sender: { chain, signingSecretKey },
        recipient: { device, encryptionSecretKey: enc.secretKey },
      };
    },
  };
}
