/**
 * Organisation identities: the org root, person, device, office and office-holder certificates,
 * revocation lists, and verification of a sender's certificate chain. Implements spec/identity.md.
 *
 * Trust runs root -> person -> device. The root (Ed25519) signs person, office and office-holder
 * certificates and revocation lists; a device certificate is signed by its person's identity key,
 * never by the root, so the root cannot add a device to someone's account without also replacing
 * that person's identity key, which changes their safety number (safety-number.ts).
 *
 * Every structure is a deterministic CBOR map (cbor.ts): key 0 version, key 1 type, fields from
 * key 2, the 64-byte signature at key 31. The signature covers
 * `labelled(Sig<Type>, encoding of the same map without key 31)`; verifiers re-encode.
 */
import { abytes, compareBytes, concat, equalBytes, isBytes, toHex, u32be } from './bytes.js';
import { type CborValue, decodeCbor, decodeStructure, encodeStructure, isWellFormedText, type MapReader, StructType } from './cbor.js';
import { ArgumentError, DecodeError, ErrorCode, ValiseError, VerifyError, VerifyReason } from './errors.js';
import { Label, labelled } from './labels.js';
import { getProvider } from './provider.js';
import { type RandomSource, randomFrom } from './random.js';

// ---------------------------------------------------------------------------------------------
// Constants

/** Length of org, person, device, office and certificate ids. */
export const IDENTITY_ID_LENGTH = 16;
/** Key of the signature in every signed structure. */
export const CERT_SIGNATURE_KEY = 31;
/** Largest accepted encoding of one certificate. */
export const CERT_MAX_SIZE = 4096;
/** Longest name, title, unit or label, in UTF-16 code units (JavaScript string length). */
export const CERT_TEXT_MAX_LENGTH = 256;
/** Most certificate ids one revocation list may carry. */
export const REVOCATION_LIST_MAX_ENTRIES = 65536;
/** Largest accepted encoding of a revocation list (1 MiB + 64 KiB: room for the maximum entries). */
export const REVOCATION_LIST_MAX_SIZE = (1 << 20) + (1 << 16);

/** HPKE KEM ids a device's encryption key may use (RFC 9180 §7.1 code points). */
export const DeviceKem = {
  /** X-Wing (ML-KEM-768 + X25519), public key 1216 bytes. */
  XWing: 0x647a,
  /** DHKEM(X25519, HKDF-SHA256), public key 32 bytes. */
  DhkemX25519: 0x0020,
} as const;
export type DeviceKem = (typeof DeviceKem)[keyof typeof DeviceKem];

/** Public key length of each accepted device KEM. */
export const DEVICE_KEM_PUBLIC_KEY_LENGTH: Readonly<Record<DeviceKem, number>> = {
  [DeviceKem.XWing]: 1216,
  [DeviceKem.DhkemX25519]: 32,
};

const KEY = 32;
const SIG = 64;
const ID = IDENTITY_ID_LENGTH;

// ---------------------------------------------------------------------------------------------
// Types

/** Options of the operations that draw randomness (ids, keys). */
type RandomOptions = { randomForTesting?: RandomSource };

export interface OrgRoot {
  /** Ed25519 secret key (32-byte seed). */
  secretKey: Uint8Array;
  publicKey: Uint8Array;
  orgId: Uint8Array;
}

/** A person's Ed25519 identity key pair. */
export interface PersonIdentity {
  secretKey: Uint8Array;
  publicKey: Uint8Array;
}

/** Common to every decoded certificate. */
export interface CertificateBase {
  /** The full encoded certificate, signature included. */
  bytes: Uint8Array;
  /** First 16 bytes of SHA-256(labelled("valise/v1/cert-id", bytes)). */
  certId: Uint8Array;
  orgId: Uint8Array;
  validFrom: number;
  validUntil: number;
  signature: Uint8Array;
}

export interface PersonCert extends CertificateBase {
  personId: Uint8Array;
  identityKey: Uint8Array;
  name: string;
  title: string;
  /** Department or mission, e.g. "Embassy in Paris". */
  unit: string;
}

export interface DeviceEncryptionKey {
  /** HPKE KEM id ({@link DeviceKem}). */
  kem: number;
  publicKey: Uint8Array;
}

export interface DeviceCert extends CertificateBase {
  personId: Uint8Array;
  deviceId: Uint8Array;
  /** Ed25519 key the device signs items and receipts with. */
  signingKey: Uint8Array;
  encryption: DeviceEncryptionKey;
  /** e.g. "laptop". */
  label: string;
}

export interface OfficeCert extends CertificateBase {
  officeId: Uint8Array;
  /** e.g. "Head of Mission". */
  title: string;
  /** e.g. "Embassy in Paris". */
  unit: string;
}

export interface OfficeHolderCert extends CertificateBase {
  officeId: Uint8Array;
  personId: Uint8Array;
  /** The holder's identity key at the time of appointment. */
  identityKey: Uint8Array;
}

export interface RevocationList {
  bytes: Uint8Array;
  orgId: Uint8Array;
  sequence: number;
  issuedAt: number;
  nextUpdate: number;
  /** Certificate ids, sorted ascending (bytewise), no duplicates. */
  revoked: Uint8Array[];
  signature: Uint8Array;
}

export interface TrustStore {
  rootPublicKey: Uint8Array;
  /**
   * The organisation's current revocation list. Its signature, organisation and freshness are
   * checked by every verification (signature checks are cached per object and bytes).
   */
  revocationList?: RevocationList;
}

/** A sender's certificates, as carried in an envelope (encoded bytes). */
export interface SenderChain {
  person: Uint8Array;
  device: Uint8Array;
  office?: Uint8Array;
  officeHolder?: Uint8Array;
}

export interface VerifiedDevice {
  readonly verified: true;
  person: PersonCert;
  device: DeviceCert;
  office?: OfficeCert;
  officeHolder?: OfficeHolderCert;
}

export interface PersonCertFields {
  /** 16 bytes; random if omitted. */
  personId?: Uint8Array;
  identityKey: Uint8Array;
  name: string;
  title: string;
  unit: string;
  validFrom: number;
  validUntil: number;
}

export interface DeviceCertFields {
  /** 16 bytes; random if omitted. */
  deviceId?: Uint8Array;
  signingKey: Uint8Array;
  encryption: DeviceEncryptionKey;
  label: string;
  validFrom: number;
  validUntil: number;
}

export interface OfficeCertFields {
  /** 16 bytes; random if omitted. */
  officeId?: Uint8Array;
  title: string;
  unit: string;
  validFrom: number;
  validUntil: number;
}

export interface OfficeHolderCertFields {
  validFrom: number;
  validUntil: number;
}

export interface RevocationListFields {
  sequence: number;
  issuedAt: number;
  nextUpdate: number;
  /** Certificate ids (16 bytes each), in any order; duplicates are dropped. */
  revoked: Uint8Array[];
}

// ---------------------------------------------------------------------------------------------
// Keys and ids

/** orgId = first 16 bytes of SHA-256(labelled("valise/v1/org-id", rootPublicKey)). */
export function orgIdOf(rootPublicKey: Uint8Array): Uint8Array {
  abytes(rootPublicKey, 'rootPublicKey', KEY);
  return getProvider().sha256(labelled(Label.OrgId, rootPublicKey)).slice(0, ID);
}

/** certId = first 16 bytes of SHA-256(labelled("valise/v1/cert-id", encoded signed certificate)). */
export function certIdOf(certBytes: Uint8Array): Uint8Array {
  abytes(certBytes, 'certBytes');
  return getProvider().sha256(labelled(Label.CertId, certBytes)).slice(0, ID);
}

export function generateOrgRoot(options?: RandomOptions): OrgRoot {
  return orgRootFromSecretKey(randomFrom(options)(KEY));
}

/** Rebuilds an org root from its stored 32-byte secret key. */
export function orgRootFromSecretKey(secretKey: Uint8Array): OrgRoot {
  abytes(secretKey, 'secretKey', KEY);
  const sk = Uint8Array.from(secretKey);
  const publicKey = getProvider().ed25519PublicKey(sk);
  return { secretKey: sk, publicKey, orgId: orgIdOf(publicKey) };
}

export function generatePersonIdentity(options?: RandomOptions): PersonIdentity {
  return personIdentityFromSecretKey(randomFrom(options)(KEY));
}

/** Rebuilds a person identity from its stored 32-byte secret key. */
export function personIdentityFromSecretKey(secretKey: Uint8Array): PersonIdentity {
  abytes(secretKey, 'secretKey', KEY);
  const sk = Uint8Array.from(secretKey);
  return { secretKey: sk, publicKey: getProvider().ed25519PublicKey(sk) };
}

// ---------------------------------------------------------------------------------------------
// Field layouts: one function per structure gives the map entries without the signature, used
// both to issue (then sign) and to rebuild the signed bytes when verifying.

type Entries = [number, CborValue][];

function personEntries(c: Omit<PersonCert, 'bytes' | 'certId' | 'signature'>): Entries {
  return [
    [2, c.orgId],
    [3, c.personId],
    [4, c.identityKey],
    [5, c.name],
    [6, c.title],
    [7, c.unit],
    [8, c.validFrom],
    [9, c.validUntil],
  ];
}

/** The device encryption key is a nested map {0: kem, 1: publicKey}. */
function deviceEntries(c: Omit<DeviceCert, 'bytes' | 'certId' | 'signature'>): Entries {
  const enc = new Map<number, CborValue>([
    [0, c.encryption.kem],
    [1, c.encryption.publicKey],
  ]);
  return [
    [2, c.orgId],
    [3, c.personId],
    [4, c.deviceId],
    [5, c.signingKey],
    [6, enc],
    [7, c.label],
    [8, c.validFrom],
    [9, c.validUntil],
  ];
}

function officeEntries(c: Omit<OfficeCert, 'bytes' | 'certId' | 'signature'>): Entries {
  return [
    [2, c.orgId],
    [3, c.officeId],
    [4, c.title],
    [5, c.unit],
    [6, c.validFrom],
    [7, c.validUntil],
  ];
}

function officeHolderEntries(c: Omit<OfficeHolderCert, 'bytes' | 'certId' | 'signature'>): Entries {
  return [
    [2, c.orgId],
    [3, c.officeId],
    [4, c.personId],
    [5, c.identityKey],
    [6, c.validFrom],
    [7, c.validUntil],
  ];
}

function revocationEntries(c: Omit<RevocationList, 'bytes' | 'signature'>): Entries {
  return [
    [2, c.orgId],
    [3, c.sequence],
    [4, c.issuedAt],
    [5, c.nextUpdate],
    [6, c.revoked],
  ];
}

const SIG_LABEL = {
  [StructType.PersonCert]: Label.SigPersonCert,
  [StructType.DeviceCert]: Label.SigDeviceCert,
  [StructType.OfficeCert]: Label.SigOfficeCert,
  [StructType.OfficeHolderCert]: Label.SigOfficeHolderCert,
  [StructType.RevocationList]: Label.SigRevocationList,
} as const;
type SignedType = keyof typeof SIG_LABEL;

/** labelled(Sig<Type>, canonical encoding of the map without key 31). */
function signedMessage(type: SignedType, entries: Entries): Uint8Array {
  return labelled(SIG_LABEL[type], encodeStructure(type, entries));
}

function signStructure(type: SignedType, entries: Entries, secretKey: Uint8Array): Uint8Array {
  const signature = getProvider().ed25519Sign(signedMessage(type, entries), secretKey);
  return encodeStructure(type, [...entries, [CERT_SIGNATURE_KEY, signature]]);
}

/**
 * Positive signature checks are remembered (bounded, oldest first out): a client verifies the
 * same few chains over and over, and an Ed25519 verification costs 30-100x the SHA-256 that
 * identifies it. The key hashes the public key, the signature and the signed message, so a hit
 * is exactly the same check; validity windows and revocation are never cached.
 */
const VERIFIED_CACHE_SIZE = 4096;
const verifiedSignatures = new Map<string, true>();

function signatureValid(type: SignedType, entries: Entries, signature: Uint8Array, publicKey: Uint8Array): boolean {
  const p = getProvider();
  const message = signedMessage(type, entries);
  const key = toHex(p.sha256(concat(publicKey, signature, message)));
  if (verifiedSignatures.has(key)) return true;
  if (!p.ed25519Verify(signature, message, publicKey)) return false;
  if (verifiedSignatures.size >= VERIFIED_CACHE_SIZE) verifiedSignatures.delete(verifiedSignatures.keys().next().value as string);
  verifiedSignatures.set(key, true);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Argument checks for issuers (ArgumentError: these are the caller's mistakes, not bad input)

function checkTime(value: unknown, title: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new ArgumentError(`${title}: expected whole seconds since the epoch (a non-negative safe integer), got ${String(value)}`);
  }
  return value;
}

function checkWindow(validFrom: number, validUntil: number): void {
  checkTime(validFrom, 'validFrom');
  checkTime(validUntil, 'validUntil');
  if (validFrom >= validUntil) throw new ArgumentError(`validFrom (${validFrom}) must be before validUntil (${validUntil})`);
}

function checkText(value: unknown, title: string): string {
  if (typeof value !== 'string') throw new ArgumentError(`${title}: expected a string, got ${typeof value}`);
  if (value.length > CERT_TEXT_MAX_LENGTH) {
    throw new ArgumentError(`${title}: longer than ${CERT_TEXT_MAX_LENGTH} characters (${value.length})`);
  }
  if (!isWellFormedText(value)) throw new ArgumentError(`${title}: not well-formed Unicode (lone surrogate)`);
  return value;
}

function checkEncryptionKey(enc: DeviceEncryptionKey): void {
  const len = DEVICE_KEM_PUBLIC_KEY_LENGTH[enc?.kem as DeviceKem];
  if (len === undefined) throw new ArgumentError(`encryption.kem: unsupported KEM ${String(enc?.kem)}`);
  abytes(enc.publicKey, 'encryption.publicKey', len);
}

function checkRoot(root: OrgRoot): void {
  abytes(root?.secretKey, 'root.secretKey', KEY);
  abytes(root.publicKey, 'root.publicKey', KEY);
  abytes(root.orgId, 'root.orgId', ID);
  // A mismatched pair would sign certificates nobody can verify: refuse it here, where it is cheap to explain.
  if (!equalBytes(getProvider().ed25519PublicKey(root.secretKey), root.publicKey)) {
    throw new ArgumentError('root.publicKey does not match root.secretKey');
  }
  if (!equalBytes(orgIdOf(root.publicKey), root.orgId)) throw new ArgumentError('root.orgId does not match root.publicKey');
}

function idOrRandom(id: Uint8Array | undefined, title: string, options?: RandomOptions): Uint8Array {
  return id === undefined ? randomFrom(options)(ID).slice() : Uint8Array.from(abytes(id, title, ID));
}

// ---------------------------------------------------------------------------------------------
// Issuing

/** The root certifies a person's identity key. */
export function issuePersonCert(root: OrgRoot, fields: PersonCertFields, options?: RandomOptions): PersonCert {
  checkRoot(root);
  abytes(fields.identityKey, 'identityKey', KEY);
  checkText(fields.name, 'name');
  checkText(fields.title, 'title');
  checkText(fields.unit, 'unit');
  checkWindow(fields.validFrom, fields.validUntil);
  const personId = idOrRandom(fields.personId, 'personId', options);
  const entries = personEntries({
    orgId: root.orgId,
    personId,
    identityKey: fields.identityKey,
    name: fields.name,
    title: fields.title,
    unit: fields.unit,
    validFrom: fields.validFrom,
    validUntil: fields.validUntil,
  });
  return decodePersonCert(signStructure(StructType.PersonCert, entries, root.secretKey));
}

/** A person certifies one of their devices with their identity key. */
export function issueDeviceCert(
  identity: PersonIdentity,
  person: PersonCert,
  fields: DeviceCertFields,
  options?: RandomOptions,
): DeviceCert {
  abytes(identity?.secretKey, 'identity.secretKey', KEY);
  abytes(identity.publicKey, 'identity.publicKey', KEY);
  if (!equalBytes(getProvider().ed25519PublicKey(identity.secretKey), identity.publicKey)) {
    throw new ArgumentError('identity.publicKey does not match identity.secretKey');
  }
  if (!equalBytes(identity.publicKey, abytes(person?.identityKey, 'person.identityKey', KEY))) {
    throw new ArgumentError("identity is not the person certificate's identity key");
  }
  abytes(person.orgId, 'person.orgId', ID);
  abytes(person.personId, 'person.personId', ID);
  abytes(fields.signingKey, 'signingKey', KEY);
  checkEncryptionKey(fields.encryption);
  checkText(fields.label, 'label');
  checkWindow(fields.validFrom, fields.validUntil);
  const deviceId = idOrRandom(fields.deviceId, 'deviceId', options);
  const entries = deviceEntries({
    orgId: person.orgId,
    personId: person.personId,
    deviceId,
    signingKey: fields.signingKey,
    encryption: { kem: fields.encryption.kem, publicKey: fields.encryption.publicKey },
    label: fields.label,
    validFrom: fields.validFrom,
    validUntil: fields.validUntil,
  });
  return decodeDeviceCert(signStructure(StructType.DeviceCert, entries, identity.secretKey));
}

/** The root creates an office ("Head of Mission", "Embassy in Paris"). */
export function issueOfficeCert(root: OrgRoot, fields: OfficeCertFields, options?: RandomOptions): OfficeCert {
  checkRoot(root);
  checkText(fields.title, 'title');
  checkText(fields.unit, 'unit');
  checkWindow(fields.validFrom, fields.validUntil);
  const officeId = idOrRandom(fields.officeId, 'officeId', options);
  const entries = officeEntries({
    orgId: root.orgId,
    officeId,
    title: fields.title,
    unit: fields.unit,
    validFrom: fields.validFrom,
    validUntil: fields.validUntil,
  });
  return decodeOfficeCert(signStructure(StructType.OfficeCert, entries, root.secretKey));
}

/** The root appoints a person (by their current identity key) to an office. */
export function issueOfficeHolderCert(
  root: OrgRoot,
  office: OfficeCert,
  person: PersonCert,
  fields: OfficeHolderCertFields,
): OfficeHolderCert {
  checkRoot(root);
  if (!equalBytes(abytes(office?.orgId, 'office.orgId', ID), root.orgId)) throw new ArgumentError('office belongs to another organisation');
  if (!equalBytes(abytes(person?.orgId, 'person.orgId', ID), root.orgId)) throw new ArgumentError('person belongs to another organisation');
  abytes(office.officeId, 'office.officeId', ID);
  abytes(person.personId, 'person.personId', ID);
  abytes(person.identityKey, 'person.identityKey', KEY);
  checkWindow(fields.validFrom, fields.validUntil);
  const entries = officeHolderEntries({
    orgId: root.orgId,
    officeId: office.officeId,
    personId: person.personId,
    identityKey: person.identityKey,
    validFrom: fields.validFrom,
    validUntil: fields.validUntil,
  });
  return decodeOfficeHolderCert(signStructure(StructType.OfficeHolderCert, entries, root.secretKey));
}

/** The root publishes the ids of revoked certificates. The ids are sorted and deduplicated here. */
export function issueRevocationList(root: OrgRoot, fields: RevocationListFields): RevocationList {
  checkRoot(root);
  checkTime(fields.sequence, 'sequence');
  checkTime(fields.issuedAt, 'issuedAt');
  checkTime(fields.nextUpdate, 'nextUpdate');
  if (fields.issuedAt >= fields.nextUpdate) {
    throw new ArgumentError(`issuedAt (${fields.issuedAt}) must be before nextUpdate (${fields.nextUpdate})`);
  }
  if (!Array.isArray(fields.revoked)) throw new ArgumentError('revoked: expected an array of certificate ids');
  const ids = fields.revoked.map((id, i) => Uint8Array.from(abytes(id, `revoked[${i}]`, ID))).sort(compareBytes);
  const revoked = ids.filter((id, i) => i === 0 || compareBytes(ids[i - 1] as Uint8Array, id) !== 0);
  if (revoked.length > REVOCATION_LIST_MAX_ENTRIES) {
    throw new ArgumentError(`revoked: more than ${REVOCATION_LIST_MAX_ENTRIES} certificate ids (${revoked.length})`);
  }
  const entries = revocationEntries({
    orgId: root.orgId,
    sequence: fields.sequence,
    issuedAt: fields.issuedAt,
    nextUpdate: fields.nextUpdate,
    revoked,
  });
  return decodeRevocationList(signStructure(StructType.RevocationList, entries, root.secretKey));
}

// ---------------------------------------------------------------------------------------------
// Encoding from fields (the signature is taken as it is: these rebuild, they do not sign)

/** Re-encodes a certificate from its fields; for a decoded certificate this gives back `cert.bytes`. */
export function encodePersonCert(cert: PersonCert): Uint8Array {
  return encodeStructure(StructType.PersonCert, [...personEntries(cert), [CERT_SIGNATURE_KEY, cert.signature]]);
}

export function encodeDeviceCert(cert: DeviceCert): Uint8Array {
  return encodeStructure(StructType.DeviceCert, [...deviceEntries(cert), [CERT_SIGNATURE_KEY, cert.signature]]);
}

export function encodeOfficeCert(cert: OfficeCert): Uint8Array {
  return encodeStructure(StructType.OfficeCert, [...officeEntries(cert), [CERT_SIGNATURE_KEY, cert.signature]]);
}

export function encodeOfficeHolderCert(cert: OfficeHolderCert): Uint8Array {
  return encodeStructure(StructType.OfficeHolderCert, [...officeHolderEntries(cert), [CERT_SIGNATURE_KEY, cert.signature]]);
}

export function encodeRevocationList(list: RevocationList): Uint8Array {
  return encodeStructure(StructType.RevocationList, [...revocationEntries(list), [CERT_SIGNATURE_KEY, list.signature]]);
}

// ---------------------------------------------------------------------------------------------
// Decoding (strict; no signature check)

function readWindow(r: MapReader, fromKey: number, untilKey: number): { validFrom: number; validUntil: number } {
  const validFrom = r.uint(fromKey, 'validFrom');
  const validUntil = r.uint(untilKey, 'validUntil');
  if (validFrom >= validUntil) throw new DecodeError(`${r.what}: validFrom (${validFrom}) is not before validUntil (${validUntil})`);
  return { validFrom, validUntil };
}

function readText(r: MapReader, key: number, field: string): string {
  const s = r.text(key, field, CERT_TEXT_MAX_LENGTH);
  // cbor-x replaces invalid UTF-8 and the canonical re-encoding check rejects it; this is a second net.
  if (!isWellFormedText(s)) throw new DecodeError(`${r.what}.${field}: not well-formed Unicode`);
  return s;
}

function signedParts(r: MapReader, bytes: Uint8Array): { bytes: Uint8Array; certId: Uint8Array; signature: Uint8Array } {
  const signature = r.bytes(CERT_SIGNATURE_KEY, 'signature', { len: SIG });
  r.done();
  const copy = Uint8Array.from(bytes);
  return { bytes: copy, certId: certIdOf(copy), signature };
}

export function decodePersonCert(bytes: Uint8Array): PersonCert {
  const r = decodeStructure(bytes, StructType.PersonCert, CERT_MAX_SIZE, 'person certificate');
  const orgId = r.bytes(2, 'orgId', { len: ID });
  const personId = r.bytes(3, 'personId', { len: ID });
  const identityKey = r.bytes(4, 'identityKey', { len: KEY });
  const name = readText(r, 5, 'name');
  const title = readText(r, 6, 'title');
  const unit = readText(r, 7, 'unit');
  const { validFrom, validUntil } = readWindow(r, 8, 9);
  const s = signedParts(r, bytes);
  return {
    bytes: s.bytes,
    certId: s.certId,
    orgId,
    personId,
    identityKey,
    name,
    title,
    unit,
    validFrom,
    validUntil,
    signature: s.signature,
  };
}

export function decodeDeviceCert(bytes: Uint8Array): DeviceCert {
  const r = decodeStructure(bytes, StructType.DeviceCert, CERT_MAX_SIZE, 'device certificate');
  const orgId = r.bytes(2, 'orgId', { len: ID });
  const personId = r.bytes(3, 'personId', { len: ID });
  const deviceId = r.bytes(4, 'deviceId', { len: ID });
  const signingKey = r.bytes(5, 'signingKey', { len: KEY });
  const e = r.mapAt(6, 'encryption');
  const kem = e.uint(0, 'kem', 0xffff);
  const len = DEVICE_KEM_PUBLIC_KEY_LENGTH[kem as DeviceKem];
  if (len === undefined) throw new DecodeError(`${e.what}.kem: unsupported KEM 0x${kem.toString(16).padStart(4, '0')}`);
  const publicKey = e.bytes(1, 'publicKey', { len });
  e.done();
  const label = readText(r, 7, 'label');
  const { validFrom, validUntil } = readWindow(r, 8, 9);
  const s = signedParts(r, bytes);
  return {
    bytes: s.bytes,
    certId: s.certId,
    orgId,
    personId,
    deviceId,
    signingKey,
    encryption: { kem, publicKey },
    label,
    validFrom,
    validUntil,
    signature: s.signature,
  };
}

export function decodeOfficeCert(bytes: Uint8Array): OfficeCert {
  const r = decodeStructure(bytes, StructType.OfficeCert, CERT_MAX_SIZE, 'office certificate');
  const orgId = r.bytes(2, 'orgId', { len: ID });
  const officeId = r.bytes(3, 'officeId', { len: ID });
  const title = readText(r, 4, 'title');
  const unit = readText(r, 5, 'unit');
  const { validFrom, validUntil } = readWindow(r, 6, 7);
  const s = signedParts(r, bytes);
  return { bytes: s.bytes, certId: s.certId, orgId, officeId, title, unit, validFrom, validUntil, signature: s.signature };
}

export function decodeOfficeHolderCert(bytes: Uint8Array): OfficeHolderCert {
  const r = decodeStructure(bytes, StructType.OfficeHolderCert, CERT_MAX_SIZE, 'office holder certificate');
  const orgId = r.bytes(2, 'orgId', { len: ID });
  const officeId = r.bytes(3, 'officeId', { len: ID });
  const personId = r.bytes(4, 'personId', { len: ID });
  const identityKey = r.bytes(5, 'identityKey', { len: KEY });
  const { validFrom, validUntil } = readWindow(r, 6, 7);
  const s = signedParts(r, bytes);
  return { bytes: s.bytes, certId: s.certId, orgId, officeId, personId, identityKey, validFrom, validUntil, signature: s.signature };
}

export function decodeRevocationList(bytes: Uint8Array): RevocationList {
  const what = 'revocation list';
  const r = decodeStructure(bytes, StructType.RevocationList, REVOCATION_LIST_MAX_SIZE, what);
  const orgId = r.bytes(2, 'orgId', { len: ID });
  const sequence = r.uint(3, 'sequence');
  const issuedAt = r.uint(4, 'issuedAt');
  const nextUpdate = r.uint(5, 'nextUpdate');
  if (issuedAt >= nextUpdate) throw new DecodeError(`${what}: issuedAt (${issuedAt}) is not before nextUpdate (${nextUpdate})`);
  const revoked = r.array(6, 'revoked', REVOCATION_LIST_MAX_ENTRIES).map((x, i) => {
    if (!(x instanceof Uint8Array) || x.length !== ID) throw new DecodeError(`${what}.revoked[${i}]: expected ${ID} bytes`);
    return x;
  });
  for (let i = 1; i < revoked.length; i++) {
    if (compareBytes(revoked[i - 1] as Uint8Array, revoked[i] as Uint8Array) >= 0) {
      throw new DecodeError(`${what}.revoked: not sorted ascending without duplicates at index ${i}`);
    }
  }
  const signature = r.bytes(CERT_SIGNATURE_KEY, 'signature', { len: SIG });
  r.done();
  return { bytes: Uint8Array.from(bytes), orgId, sequence, issuedAt, nextUpdate, revoked, signature };
}

// ---------------------------------------------------------------------------------------------
// Verification

function fail(reason: VerifyReason, message: string): never {
  throw new VerifyError(reason, message);
}

/** Binary search in a list sorted by {@link compareBytes}. Ids are public: no need for constant time. */
function containsSorted(sorted: readonly Uint8Array[], id: Uint8Array): boolean {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareBytes(sorted[mid] as Uint8Array, id);
    if (c === 0) return equalBytes(sorted[mid] as Uint8Array, id);
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}

/** Steps 1–3 of spec/identity.md §5 (decode, organisation, signature); freshness is checked apart. */
function authenticateRevocationList(bytes: Uint8Array, rootPublicKey: Uint8Array): RevocationList {
  const list = decodeRevocationList(bytes);
  if (!equalBytes(list.orgId, orgIdOf(rootPublicKey))) fail(VerifyReason.WrongIssuer, 'revocation list of another organisation');
  if (!signatureValid(StructType.RevocationList, revocationEntries(list), list.signature, rootPublicKey)) {
    fail(VerifyReason.BadSignature, 'revocation list: bad root signature');
  }
  return list;
}

function checkFresh(list: RevocationList, now: number): void {
  if (now > list.nextUpdate) {
    fail(VerifyReason.StaleRevocationList, `revocation list ${list.sequence} is stale (nextUpdate ${list.nextUpdate}, now ${now})`);
  }
}

/**
 * Lists whose signature was checked, keyed by the caller's object. The entry keeps private copies
 * of the bytes and root key, and a private decoded list: a hit requires the caller's object to
 * still hold the very same bytes, and only the private list is ever consulted.
 */
const authenticatedLists = new WeakMap<RevocationList, { bytes: Uint8Array; root: Uint8Array; list: RevocationList }>();

function remember(obj: RevocationList, rootPublicKey: Uint8Array, list: RevocationList): void {
  authenticatedLists.set(obj, { bytes: list.bytes, root: Uint8Array.from(rootPublicKey), list });
}

function trustedRevocationList(obj: RevocationList, rootPublicKey: Uint8Array, now: number): RevocationList {
  if (typeof obj !== 'object' || obj === null) throw new ArgumentError('trust.revocationList: expected a revocation list');
  const hit = authenticatedLists.get(obj);
  let list: RevocationList;
  if (hit !== undefined && isBytes(obj.bytes) && equalBytes(hit.bytes, obj.bytes) && equalBytes(hit.root, rootPublicKey)) {
    list = hit.list;
  } else {
    list = authenticateRevocationList(obj.bytes, rootPublicKey);
    remember(obj, rootPublicKey, list);
  }
  checkFresh(list, now);
  return list;
}

function checkNow(now: number): void {
  if (typeof now !== 'number' || !Number.isSafeInteger(now) || now < 0) {
    throw new ArgumentError(`now: expected whole seconds since the epoch, got ${String(now)}`);
  }
}

/**
 * Decodes a revocation list and checks that it is this organisation's (WrongIssuer), signed by
 * its root (BadSignature) and fresh: `now <= nextUpdate`, and `sequence >= options.minSequence`
 * when given, so that a stored list is never replaced by an older one (StaleRevocationList).
 */
export function verifyRevocationList(
  bytes: Uint8Array,
  rootPublicKey: Uint8Array,
  now: number,
  options?: { minSequence?: number },
): RevocationList {
  abytes(rootPublicKey, 'rootPublicKey', KEY);
  checkNow(now);
  const minSequence = options?.minSequence;
  if (minSequence !== undefined) checkTime(minSequence, 'minSequence');
  const list = authenticateRevocationList(bytes, rootPublicKey);
  checkFresh(list, now);
  if (minSequence !== undefined && list.sequence < minSequence) {
    fail(VerifyReason.StaleRevocationList, `revocation list ${list.sequence} is older than the one held (${minSequence})`);
  }
  // The caller gets its own decoded copy; the cache keeps the private one.
  const out = decodeRevocationList(list.bytes);
  remember(out, rootPublicKey, list);
  return out;
}

type CertDecoder<T> = (bytes: Uint8Array) => T;

const CERT_TYPES: readonly number[] = [StructType.PersonCert, StructType.DeviceCert, StructType.OfficeCert, StructType.OfficeHolderCert];

/**
 * Decodes one slot of a chain. A well-formed certificate of another type in the slot is a
 * VerifyError(WrongType); anything else undecodable stays a DecodeError.
 */
function decodeSlot<T>(bytes: Uint8Array, expected: SignedType, decode: CertDecoder<T>, slot: string): T {
  try {
    return decode(bytes);
  } catch (err) {
    if (!ValiseError.is(err, ErrorCode.Decode)) throw err;
    let actual: number | undefined;
    try {
      const v = decodeCbor(bytes, CERT_MAX_SIZE, slot);
      const t = v instanceof Map ? v.get(1) : undefined;
      if (typeof t === 'number' && t !== expected && CERT_TYPES.includes(t)) actual = t;
    } catch {
      // not CBOR at all: the original DecodeError stands
    }
    if (actual !== undefined) fail(VerifyReason.WrongType, `${slot}: a certificate of type ${actual} where type ${expected} belongs`);
    throw err;
  }
}

function checkValidity(cert: CertificateBase, what: string, now: number): void {
  if (now < cert.validFrom) fail(VerifyReason.NotYetValid, `${what} is not valid before ${cert.validFrom} (now ${now})`);
  if (now > cert.validUntil) fail(VerifyReason.Expired, `${what} expired at ${cert.validUntil} (now ${now})`);
}

/**
 * Verifies a sender's certificate chain against the organisation root, at time `now`.
 * The checks run in the order of spec/identity.md §6 (numbered below); the first failure
 * throws a {@link VerifyError} with its reason (a {@link DecodeError} for undecodable bytes).
 */
export function verifyDeviceChain(chain: SenderChain, trust: TrustStore, now: number): VerifiedDevice {
  const root = abytes(trust?.rootPublicKey, 'trust.rootPublicKey', KEY);
  checkNow(now);
  if (typeof chain !== 'object' || chain === null) throw new ArgumentError('chain: expected a sender chain');
  const { person, device, office, holder } = authenticChain(chain, root);

  // 8. Validity windows, in chain order.
  checkValidity(person, 'person certificate', now);
  checkValidity(device, 'device certificate', now);
  if (office !== undefined && holder !== undefined) {
    checkValidity(office, 'office certificate', now);
    checkValidity(holder, 'office holder certificate', now);
  }

  // 9–10. The revocation list (authentic and fresh), then every certificate id in chain order.
  if (trust.revocationList !== undefined) {
    const list = trustedRevocationList(trust.revocationList, root, now);
    const certs: [CertificateBase, string][] = [
      [person, 'person certificate'],
      [device, 'device certificate'],
    ];
    if (office !== undefined && holder !== undefined) certs.push([office, 'office certificate'], [holder, 'office holder certificate']);
    for (const [cert, what] of certs) {
      if (containsSorted(list.revoked, cert.certId)) fail(VerifyReason.Revoked, `${what} is revoked (list ${list.sequence})`);
    }
  }

  // Shallow copies: the cached decoded certificates are shared between calls.
  const out: VerifiedDevice = { verified: true, person: { ...person }, device: { ...device } };
  if (office !== undefined && holder !== undefined) {
    out.office = { ...office };
    out.officeHolder = { ...holder };
  }
  return out;
}

interface AuthenticChain {
  person: PersonCert;
  device: DeviceCert;
  office?: OfficeCert;
  holder?: OfficeHolderCert;
}

/**
 * Steps 1–7 depend only on the certificate bytes and the root key, not on the time or the
 * revocation list, so their successful outcome is remembered (bounded, oldest out): a client
 * opens item after item from the same few senders. Keyed by SHA-256 over the root key and the
 * length-prefixed certificates, so a hit is exactly the same chain.
 */
const CHAIN_CACHE_SIZE = 1024;
const authenticChains = new Map<string, AuthenticChain>();

function authenticChain(chain: SenderChain, root: Uint8Array): AuthenticChain {
  const parts = [chain.person, chain.device, chain.office, chain.officeHolder].map((b) => (isBytes(b) ? b : new Uint8Array(0)));
  const key = toHex(getProvider().sha256(concat(root, ...parts.flatMap((b) => [u32be(b.length), b]))));
  const hit = authenticChains.get(key);
  if (hit !== undefined) return hit;
  const fresh = checkChain(chain, root);
  if (authenticChains.size >= CHAIN_CACHE_SIZE) authenticChains.delete(authenticChains.keys().next().value as string);
  authenticChains.set(key, fresh);
  return fresh;
}

/** Steps 1–7 of spec/identity.md §6: decoding, issuers, signatures and links. */
function checkChain(chain: SenderChain, root: Uint8Array): AuthenticChain {
  // 1. Decode every certificate.
  const person = decodeSlot(chain.person, StructType.PersonCert, decodePersonCert, 'chain.person');
  const device = decodeSlot(chain.device, StructType.DeviceCert, decodeDeviceCert, 'chain.device');
  const hasOffice = chain.office !== undefined;
  if (hasOffice !== (chain.officeHolder !== undefined)) {
    fail(VerifyReason.BrokenChain, 'an office certificate and its holder certificate must be given together');
  }
  const office = hasOffice ? decodeSlot(chain.office as Uint8Array, StructType.OfficeCert, decodeOfficeCert, 'chain.office') : undefined;
  const holder = hasOffice
    ? decodeSlot(chain.officeHolder as Uint8Array, StructType.OfficeHolderCert, decodeOfficeHolderCert, 'chain.officeHolder')
    : undefined;
  const orgId = orgIdOf(root);

  // 2–3. The person certificate: this organisation's, signed by its root.
  if (!equalBytes(person.orgId, orgId)) fail(VerifyReason.WrongIssuer, 'person certificate of another organisation');
  if (!signatureValid(StructType.PersonCert, personEntries(person), person.signature, root)) {
    fail(VerifyReason.BadSignature, 'person certificate: bad root signature');
  }

  // 4–5. The device certificate: the same organisation and person, signed by the person's identity key.
  if (!equalBytes(device.orgId, person.orgId)) fail(VerifyReason.BrokenChain, 'device certificate of another organisation');
  if (!equalBytes(device.personId, person.personId)) fail(VerifyReason.BrokenChain, 'device certificate of another person');
  if (!signatureValid(StructType.DeviceCert, deviceEntries(device), device.signature, person.identityKey)) {
    fail(VerifyReason.BadSignature, "device certificate: bad signature by the person's identity key");
  }

  // 6–7. The office and its holder: this organisation's, signed by the root, naming this person and key.
  if (office !== undefined && holder !== undefined) {
    if (!equalBytes(office.orgId, orgId)) fail(VerifyReason.WrongIssuer, 'office certificate of another organisation');
    if (!signatureValid(StructType.OfficeCert, officeEntries(office), office.signature, root)) {
      fail(VerifyReason.BadSignature, 'office certificate: bad root signature');
    }
    if (!equalBytes(holder.orgId, orgId)) fail(VerifyReason.WrongIssuer, 'office holder certificate of another organisation');
    if (!signatureValid(StructType.OfficeHolderCert, officeHolderEntries(holder), holder.signature, root)) {
      fail(VerifyReason.BadSignature, 'office holder certificate: bad root signature');
    }
    if (!equalBytes(holder.officeId, office.officeId)) fail(VerifyReason.BrokenChain, 'office holder certificate names another office');
    if (!equalBytes(holder.personId, person.personId)) fail(VerifyReason.BrokenChain, 'office holder certificate names another person');
    if (!equalBytes(holder.identityKey, person.identityKey)) {
      fail(VerifyReason.BrokenChain, "office holder certificate names another of the person's identity keys");
    }
  }

  const out: AuthenticChain = { person, device };
  if (office !== undefined && holder !== undefined) {
    out.office = office;
    out.holder = holder;
  }
  return out;
}

/**
 * Verifies a person certificate alone (steps 1, 2, 3, 8, 9 and 10 of spec/identity.md §6), for
 * directories and safety-number screens that show a person without a device.
 */
export function verifyPersonCert(bytes: Uint8Array, trust: TrustStore, now: number): PersonCert {
  const root = abytes(trust?.rootPublicKey, 'trust.rootPublicKey', KEY);
  checkNow(now);
  const person = decodeSlot(bytes, StructType.PersonCert, decodePersonCert, 'person');
  if (!equalBytes(person.orgId, orgIdOf(root))) fail(VerifyReason.WrongIssuer, 'person certificate of another organisation');
  if (!signatureValid(StructType.PersonCert, personEntries(person), person.signature, root)) {
    fail(VerifyReason.BadSignature, 'person certificate: bad root signature');
  }
  checkValidity(person, 'person certificate', now);
  if (trust.revocationList !== undefined) {
    const list = trustedRevocationList(trust.revocationList, root, now);
    if (containsSorted(list.revoked, person.certId)) fail(VerifyReason.Revoked, `person certificate is revoked (list ${list.sequence})`);
  }
  return person;
}
