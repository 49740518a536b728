/**
 * Bundles (spec/cli.md, "Bundles"): the files an administrator hands to a person or a device.
 * Each is a JSON document inside the encrypted file format of secure-file.ts, protected by a
 * passphrase the administrator gives the recipient separately.
 *
 * - A person enrolment bundle (`person add`) carries the person's identity secret key and
 *   certificate: whoever holds it can certify devices for that person (`device enrol`).
 * - A device bundle (`device enrol`) carries one device's signing and encryption secret keys and
 *   its certificate chain, with the organisation root, the current revocation list and the
 *   office directory: everything `register` needs.
 */
import {
  type DeviceCert,
  decodeDeviceCert,
  decodeOfficeCert,
  decodeOfficeHolderCert,
  decodePersonCert,
  equalBytes,
  fromHex,
  getProvider,
  KemId,
  orgIdOf,
  type PersonCert,
  toHex,
  xwingPublicKey,
} from '@valise/protocol';
import { CliError, ExitCode } from './errors.js';
import {
  FilePurpose,
  newScryptKey,
  openWithPassphrase,
  readFileBytes,
  type ScryptParams,
  sealFile,
  writeFileAtomic,
} from './secure-file.js';

export const PERSON_BUNDLE_FORMAT = 'valise-person-bundle';
export const DEVICE_BUNDLE_FORMAT = 'valise-device-bundle';
export const BUNDLE_VERSION = 1;

export interface PersonBundle {
  format: typeof PERSON_BUNDLE_FORMAT;
  version: typeof BUNDLE_VERSION;
  orgRootPublicKey: string;
  personCert: string;
  identitySecretKey: string;
  createdAt: number;
}

export interface DeviceBundle {
  format: typeof DEVICE_BUNDLE_FORMAT;
  version: typeof BUNDLE_VERSION;
  orgRootPublicKey: string;
  personCert: string;
  deviceCert: string;
  signingSecretKey: string;
  encryptionSecretKey: string;
  revocationList?: string;
  /** `recordsOffice`: the office id of the designated records office, if any (one of `offices`). */
  directory: { offices: string[]; holders: string[]; recordsOffice?: string };
  createdAt: number;
}

const badBundle = (path: string, why: string) =>
  new CliError('bad-bundle', `${path}: not a valid bundle (${why})`, ExitCode.Damaged, 'ask the administrator to issue the bundle again');

function hex(v: unknown, what: string, path: string, len?: number): Uint8Array {
  if (typeof v !== 'string' || !/^([0-9a-f]{2})*$/.test(v)) throw badBundle(path, `${what} is not hex`);
  const b = fromHex(v);
  if (len !== undefined && b.length !== len) throw badBundle(path, `${what} is not ${len} bytes`);
  return b;
}

export function writeBundle(
  path: string,
  purpose: FilePurpose,
  doc: PersonBundle | DeviceBundle,
  passphrase: string,
  kdf?: ScryptParams,
): void {
  const file = sealFile(purpose, newScryptKey(passphrase, kdf), new TextEncoder().encode(JSON.stringify(doc)));
  writeFileAtomic(path, file);
}

function readDoc(path: string, purpose: FilePurpose, passphrase: string): Record<string, unknown> {
  const { plaintext } = openWithPassphrase(readFileBytes(path), purpose, passphrase);
  try {
    const doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(plaintext)) as Record<string, unknown>;
    if (typeof doc !== 'object' || doc === null) throw new Error('not an object');
    return doc;
  } catch {
    throw badBundle(path, 'does not parse');
  }
}

export interface OpenedPersonBundle {
  doc: PersonBundle;
  rootPublicKey: Uint8Array;
  person: PersonCert;
  identitySecretKey: Uint8Array;
}

export function readPersonBundle(path: string, passphrase: string): OpenedPersonBundle {
  const doc = readDoc(path, FilePurpose.PersonBundle, passphrase);
  if (doc.format !== PERSON_BUNDLE_FORMAT || doc.version !== BUNDLE_VERSION) throw badBundle(path, 'unknown format or version');
  const rootPublicKey = hex(doc.orgRootPublicKey, 'orgRootPublicKey', path, 32);
  const person = decodePersonCert(hex(doc.personCert, 'personCert', path));
  const identitySecretKey = hex(doc.identitySecretKey, 'identitySecretKey', path, 32);
  if (!equalBytes(person.orgId, orgIdOf(rootPublicKey))) throw badBundle(path, 'the person certificate belongs to another organisation');
  if (!equalBytes(getProvider().ed25519PublicKey(identitySecretKey), person.identityKey)) {
    throw badBundle(path, 'the identity key does not match the person certificate');
  }
  return { doc: doc as unknown as PersonBundle, rootPublicKey, person, identitySecretKey };
}

export interface OpenedDeviceBundle {
  doc: DeviceBundle;
  rootPublicKey: Uint8Array;
  person: PersonCert;
  device: DeviceCert;
  signingSecretKey: Uint8Array;
  encryptionSecretKey: Uint8Array;
}

/** The public key of a device's KEM secret key. */
export function kemPublicKey(kem: number, secretKey: Uint8Array): Uint8Array {
  if (kem === KemId.XWing) return xwingPublicKey(secretKey);
  if (kem === KemId.DhkemX25519HkdfSha256) return getProvider().x25519PublicKey(secretKey);
  throw new CliError('unsupported-kem', `unsupported KEM 0x${kem.toString(16)}`, ExitCode.Damaged);
}

export function readDeviceBundle(path: string, passphrase: string): OpenedDeviceBundle {
  const doc = readDoc(path, FilePurpose.DeviceBundle, passphrase);
  if (doc.format !== DEVICE_BUNDLE_FORMAT || doc.version !== BUNDLE_VERSION) throw badBundle(path, 'unknown format or version');
  const rootPublicKey = hex(doc.orgRootPublicKey, 'orgRootPublicKey', path, 32);
  const person = decodePersonCert(hex(doc.personCert, 'personCert', path));
  const device = decodeDeviceCert(hex(doc.deviceCert, 'deviceCert', path));
  const signingSecretKey = hex(doc.signingSecretKey, 'signingSecretKey', path, 32);
  const encryptionSecretKey = hex(doc.encryptionSecretKey, 'encryptionSecretKey', path, 32);
  if (doc.revocationList !== undefined) hex(doc.revocationList, 'revocationList', path);
  const dir = doc.directory as DeviceBundle['directory'] | undefined;
  if (typeof dir !== 'object' || dir === null || !Array.isArray(dir.offices) || !Array.isArray(dir.holders))
    throw badBundle(path, 'no directory');
  for (const o of dir.offices) decodeOfficeCert(hex(o, 'office', path));
  for (const h of dir.holders) decodeOfficeHolderCert(hex(h, 'holder', path));
  if (dir.recordsOffice !== undefined) {
    const id = hex(dir.recordsOffice, 'recordsOffice', path, 16);
    if (!dir.offices.some((o) => equalBytes(decodeOfficeCert(fromHex(o)).officeId, id))) throw badBundle(path, 'unknown records office');
  }
  if (!equalBytes(person.orgId, orgIdOf(rootPublicKey))) throw badBundle(path, 'the person certificate belongs to another organisation');
  if (!equalBytes(getProvider().ed25519PublicKey(signingSecretKey), device.signingKey)) {
    throw badBundle(path, 'the signing key does not match the device certificate');
  }
  if (!equalBytes(kemPublicKey(device.encryption.kem, encryptionSecretKey), device.encryption.publicKey)) {
    throw badBundle(path, 'the encryption key does not match the device certificate');
  }
  return { doc: doc as unknown as DeviceBundle, rootPublicKey, person, device, signingSecretKey, encryptionSecretKey };
}

export const hexOf = toHex;
