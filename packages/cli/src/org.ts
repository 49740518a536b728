/**
 * Organisation administration: `org init`, `person add|list`, `office add|assign|list|export`,
 * `device enrol`, `revoke`. These run in the administrator's home, which holds the organisation
 * root secret key (spec/cli.md). The root never holds a person's identity key: `person add`
 * writes it into the person's enrolment bundle, and `device enrol` reads it back from there.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  type DeviceCert,
  decodeDeviceCert,
  decodeOfficeCert,
  decodeOfficeHolderCert,
  decodePersonCert,
  decodeRevocationList,
  equalBytes,
  fromHex,
  generateOrgRoot,
  generatePersonIdentity,
  getProvider,
  issueDeviceCert,
  issueOfficeCert,
  issueOfficeHolderCert,
  issuePersonCert,
  issueRevocationList,
  KemId,
  type OfficeCert,
  type OfficeHolderCert,
  type OrgRoot,
  orgRootFromSecretKey,
  type PersonCert,
  personIdentityFromSecretKey,
  systemRandom,
  toHex,
  verifyDeviceChain,
  verifyRevocationList,
  xwingKeyPairFromSeed,
} from '@valise/protocol';
import { BUNDLE_VERSION, DEVICE_BUNDLE_FORMAT, PERSON_BUNDLE_FORMAT, readPersonBundle, writeBundle } from './bundles.js';
import { RelayClient } from './client.js';
import { CLOCK_SKEW, type CommandContext, DAY, homeOptions, parseDays, parseId } from './context.js';
import { CliError, ExitCode, notFound, toCliError, usageError } from './errors.js';
import { BUNDLES_DIR, type Home, ORG_ROOT_FILE, type OrgState, REVOCATION_DIR, withHome } from './home.js';
import { FilePurpose, readFileBytes, writeFileAtomic } from './secure-file.js';

export const DEFAULTS = {
  personDays: 730,
  deviceDays: 365,
  officeDays: 1825,
  holderDays: 730,
  revocationDays: 30,
} as const;

export function requireOrg(home: Home): OrgState {
  const org = home.state.org;
  if (org === undefined) {
    throw notFound(
      'no-org',
      `the home ${home.dir} holds no organisation`,
      'run `valise org init` first, or pass the administrator home with --home DIR',
    );
  }
  return org;
}

export const rootOf = (org: OrgState): OrgRoot => orgRootFromSecretKey(fromHex(org.rootSecretKey));

function writeText(path: string, text: string): void {
  writeFileAtomic(path, new TextEncoder().encode(text), {}, 0o644);
}

// ---------------------------------------------------------------------------------------------
// org init

export interface OrgInitOptions {
  /** Where to write the root public key (default <home>/org-root.pub). */
  out?: string;
  force?: boolean;
  revocationDays?: number;
}

export interface OrgInitResult {
  orgId: string;
  rootPublicKey: string;
  rootFile: string;
  revocationSequence: number;
  revocationFile: string;
  home: string;
}

export async function orgInit(ctx: CommandContext, opts: OrgInitOptions = {}): Promise<OrgInitResult> {
  const days = parseDays(opts.revocationDays, DEFAULTS.revocationDays, '--revocation-days');
  return withHome(homeOptions(ctx), { create: true }, (home) => {
    if (home.state.org !== undefined) {
      throw new CliError(
        'org-exists',
        `the home ${home.dir} already holds organisation ${home.state.org.orgId}`,
        ExitCode.Conflict,
        'use another --home for a new organisation',
      );
    }
    const rootFile = resolve(opts.out ?? join(home.dir, ORG_ROOT_FILE));
    if (existsSync(rootFile) && !opts.force) {
      throw new CliError(
        'file-exists',
        `${rootFile} exists already`,
        ExitCode.Conflict,
        'choose another --out, or pass --force to overwrite it',
      );
    }
    const now = ctx.now();
    const root = generateOrgRoot();
    const list = issueRevocationList(root, { sequence: 1, issuedAt: now - CLOCK_SKEW, nextUpdate: now + days * DAY, revoked: [] });
    home.state.org = {
      rootSecretKey: toHex(root.secretKey),
      rootPublicKey: toHex(root.publicKey),
      orgId: toHex(root.orgId),
      createdAt: now,
      people: [],
      offices: [],
      holders: [],
      devices: [],
      revocation: { sequence: 1, revoked: [], list: toHex(list.bytes) },
    };
    home.state.revocationList = toHex(list.bytes);
    const revocationFile = join(home.subdir(REVOCATION_DIR), '1.crl');
    writeFileAtomic(revocationFile, list.bytes, {}, 0o644);
    home.save();
    writeText(rootFile, `${toHex(root.publicKey)}\n`);
    return {
      orgId: toHex(root.orgId),
      rootPublicKey: toHex(root.publicKey),
      rootFile,
      revocationSequence: 1,
      revocationFile,
      home: home.dir,
    };
  });
}

// ---------------------------------------------------------------------------------------------
// people

export interface PersonAddOptions {
  name: string;
  title: string;
  unit: string;
  validDays?: number;
  out?: string;
}

export interface PersonSummary {
  personId: string;
  certId: string;
  name: string;
  title: string;
  unit: string;
  validUntil: number;
  revoked: boolean;
  bundle?: string;
}

function personSummary(org: OrgState, p: OrgState['people'][number]): PersonSummary {
  const cert = decodePersonCert(fromHex(p.personCert));
  const s: PersonSummary = {
    personId: p.personId,
    certId: toHex(cert.certId),
    name: cert.name,
    title: cert.title,
    unit: cert.unit,
    validUntil: cert.validUntil,
    revoked: org.revocation.revoked.includes(toHex(cert.certId)),
  };
  if (p.bundle !== undefined) s.bundle = p.bundle;
  return s;
}

export async function personAdd(ctx: CommandContext, opts: PersonAddOptions): Promise<PersonSummary> {
  const days = parseDays(opts.validDays, DEFAULTS.personDays, '--valid-days');
  for (const [k, v] of [
    ['--name', opts.name],
    ['--title', opts.title],
    ['--unit', opts.unit],
  ] as const) {
    if (typeof v !== 'string' || v.trim() === '') throw usageError(`${k}: must not be empty`);
  }
  return withHome(homeOptions(ctx), {}, async (home) => {
    const org = requireOrg(home);
    const root = rootOf(org);
    const now = ctx.now();
    const identity = generatePersonIdentity();
    const person = issuePersonCert(root, {
      identityKey: identity.publicKey,
      name: opts.name.trim(),
      title: opts.title.trim(),
      unit: opts.unit.trim(),
      validFrom: now - CLOCK_SKEW,
      validUntil: now + days * DAY,
    });
    const personId = toHex(person.personId);
    const bundle = resolve(opts.out ?? join(home.subdir(BUNDLES_DIR), `person-${personId}.valise`));
    const passphrase = await ctx.passphrases.get('new-bundle', `the enrolment bundle of ${person.name}`);
    writeBundle(
      bundle,
      FilePurpose.PersonBundle,
      {
        format: PERSON_BUNDLE_FORMAT,
        version: BUNDLE_VERSION,
        orgRootPublicKey: org.rootPublicKey,
        personCert: toHex(person.bytes),
        identitySecretKey: toHex(identity.secretKey),
        createdAt: now,
      },
      passphrase,
      ctx.kdf,
    );
    identity.secretKey.fill(0);
    const entry = { personId, personCert: toHex(person.bytes), bundle };
    org.people.push(entry);
    home.save();
    return personSummary(org, entry);
  });
}

export async function personList(ctx: CommandContext): Promise<{ people: PersonSummary[] }> {
  return withHome(homeOptions(ctx), {}, (home) => {
    const org = requireOrg(home);
    return { people: org.people.map((p) => personSummary(org, p)) };
  });
}

function findPerson(org: OrgState, id: string): { entry: OrgState['people'][number]; cert: PersonCert } {
  const want = toHex(parseId(id, '--person', 'see `valise person list`'));
  // The newest certificate of that person id (re-keying issues a new one with the same id).
  const matches = org.people.filter((p) => p.personId === want);
  const entry = matches[matches.length - 1];
  if (entry === undefined) throw notFound('no-such-person', `no person ${want} in this organisation`, 'see `valise person list`');
  return { entry, cert: decodePersonCert(fromHex(entry.personCert)) };
}

// ---------------------------------------------------------------------------------------------
// offices

export interface OfficeSummary {
  officeId: string;
  certId: string;
  title: string;
  unit: string;
  validUntil: number;
  holders: { personId: string; name: string; certId: string; validUntil: number }[];
  /** The organisation's designated records office (it receives the tracing records of fingerprinted items). */
  recordsOffice: boolean;
}

function officeSummaries(org: OrgState): OfficeSummary[] {
  const people = new Map(org.people.map((p) => [p.personId, decodePersonCert(fromHex(p.personCert))]));
  const holders = org.holders.map((h) => decodeOfficeHolderCert(fromHex(h.holderCert)));
  return org.offices.map((o) => {
    const cert = decodeOfficeCert(fromHex(o.officeCert));
    return {
      officeId: o.officeId,
      certId: toHex(cert.certId),
      title: cert.title,
      unit: cert.unit,
      validUntil: cert.validUntil,
      recordsOffice: org.recordsOfficeId === o.officeId,
      holders: holders
        .filter((h) => toHex(h.officeId) === o.officeId && !org.revocation.revoked.includes(toHex(h.certId)))
        .map((h) => ({
          personId: toHex(h.personId),
          name: people.get(toHex(h.personId))?.name ?? '?',
          certId: toHex(h.certId),
          validUntil: h.validUntil,
        })),
    };
  });
}

export async function officeAdd(
  ctx: CommandContext,
  opts: { title: string; unit: string; validDays?: number; recordsOffice?: boolean },
): Promise<OfficeSummary> {
  const days = parseDays(opts.validDays, DEFAULTS.officeDays, '--valid-days');
  if (!opts.title?.trim() || !opts.unit?.trim()) throw usageError('--title and --unit must not be empty');
  return withHome(homeOptions(ctx), {}, (home) => {
    const org = requireOrg(home);
    const now = ctx.now();
    const office = issueOfficeCert(rootOf(org), {
      title: opts.title.trim(),
      unit: opts.unit.trim(),
      validFrom: now - CLOCK_SKEW,
      validUntil: now + days * DAY,
    });
    org.offices.push({ officeId: toHex(office.officeId), officeCert: toHex(office.bytes) });
    // The designation travels in device bundles and directory files (spec/cli.md §13.2).
    if (opts.recordsOffice) org.recordsOfficeId = toHex(office.officeId);
    home.save();
    return officeSummaries(org).find((o) => o.officeId === toHex(office.officeId)) as OfficeSummary;
  });
}

export async function officeAssign(
  ctx: CommandContext,
  opts: { office: string; person: string; validDays?: number },
): Promise<{ officeId: string; personId: string; certId: string; title: string; unit: string; name: string; validUntil: number }> {
  const days = parseDays(opts.validDays, DEFAULTS.holderDays, '--valid-days');
  const officeId = toHex(parseId(opts.office, '--office', 'see `valise office list`'));
  parseId(opts.person, '--person', 'see `valise person list`');
  return withHome(homeOptions(ctx), {}, (home) => {
    const org = requireOrg(home);
    const o = org.offices.find((x) => x.officeId === officeId);
    if (o === undefined) throw notFound('no-such-office', `no office ${officeId} in this organisation`, 'see `valise office list`');
    const office = decodeOfficeCert(fromHex(o.officeCert));
    const { cert: person } = findPerson(org, opts.person);
    const now = ctx.now();
    const holder = issueOfficeHolderCert(rootOf(org), office, person, { validFrom: now - CLOCK_SKEW, validUntil: now + days * DAY });
    org.holders.push({ holderCert: toHex(holder.bytes) });
    home.save();
    return {
      officeId,
      personId: toHex(person.personId),
      certId: toHex(holder.certId),
      title: office.title,
      unit: office.unit,
      name: person.name,
      validUntil: holder.validUntil,
    };
  });
}

export async function officeList(ctx: CommandContext): Promise<{ offices: OfficeSummary[] }> {
  return withHome(homeOptions(ctx), {}, (home) => ({ offices: officeSummaries(requireOrg(home)) }));
}

export const DIRECTORY_FORMAT = 'valise-directory';

/** The public office directory: office and holder certificates (root-signed), for `directory import`. */
export async function officeExport(
  ctx: CommandContext,
  opts: { out: string },
): Promise<{ file: string; offices: number; holders: number }> {
  return withHome(homeOptions(ctx), {}, (home) => {
    const org = requireOrg(home);
    const doc = {
      format: DIRECTORY_FORMAT,
      version: 1,
      orgId: org.orgId,
      ...(org.recordsOfficeId === undefined ? {} : { recordsOffice: org.recordsOfficeId }),
      offices: org.offices.map((o) => o.officeCert),
      holders: org.holders
        .filter((h) => !org.revocation.revoked.includes(toHex(decodeOfficeHolderCert(fromHex(h.holderCert)).certId)))
        .map((h) => h.holderCert),
    };
    const file = resolve(opts.out);
    writeText(file, `${JSON.stringify(doc, null, 2)}\n`);
    return { file, offices: doc.offices.length, holders: doc.holders.length };
  });
}

// ---------------------------------------------------------------------------------------------
// device enrol

export interface DeviceEnrolOptions {
  person: string;
  label: string;
  /** The person's enrolment bundle (default: the one `person add` wrote). */
  identity?: string;
  kem?: 'xwing' | 'x25519';
  validDays?: number;
  out?: string;
}

export interface DeviceEnrolResult {
  personId: string;
  name: string;
  deviceId: string;
  certId: string;
  label: string;
  kem: string;
  validUntil: number;
  bundle: string;
}

export async function deviceEnrol(ctx: CommandContext, opts: DeviceEnrolOptions): Promise<DeviceEnrolResult> {
  const days = parseDays(opts.validDays, DEFAULTS.deviceDays, '--valid-days');
  if (!opts.label?.trim()) throw usageError('--label must not be empty', 'e.g. --label "registry workstation"');
  const kemName = opts.kem ?? 'xwing';
  if (kemName !== 'xwing' && kemName !== 'x25519') throw usageError(`--kem: expected xwing or x25519, got ${String(opts.kem)}`);
  parseId(opts.person, '--person', 'see `valise person list`');
  return withHome(homeOptions(ctx), {}, async (home) => {
    const org = requireOrg(home);
    const { entry } = findPerson(org, opts.person);
    const identityPath = opts.identity ?? entry.bundle;
    if (identityPath === undefined || !existsSync(identityPath)) {
      throw notFound(
        'no-identity-bundle',
        `the enrolment bundle of person ${entry.personId} is not at ${identityPath ?? '(unknown)'}`,
        'pass the person enrolment bundle written by `valise person add` with --identity FILE',
      );
    }
    const pb = readPersonBundle(identityPath, await ctx.passphrases.get('bundle', `the enrolment bundle ${identityPath}`));
    if (!equalBytes(pb.rootPublicKey, fromHex(org.rootPublicKey)) || toHex(pb.person.personId) !== entry.personId) {
      throw new CliError(
        'wrong-bundle',
        `${identityPath} is the bundle of another person or organisation`,
        ExitCode.Usage,
        'check --identity and --person',
      );
    }
    const identity = personIdentityFromSecretKey(pb.identitySecretKey);
    const now = ctx.now();
    const signingSecretKey = systemRandom(32);
    let encryptionSecretKey: Uint8Array;
    let encryption: { kem: number; publicKey: Uint8Array };
    if (kemName === 'x25519') {
      encryptionSecretKey = systemRandom(32);
      encryption = { kem: KemId.DhkemX25519HkdfSha256, publicKey: getProvider().x25519PublicKey(encryptionSecretKey) };
    } else {
      const kp = xwingKeyPairFromSeed(systemRandom(32));
      encryptionSecretKey = kp.secretKey;
      encryption = { kem: KemId.XWing, publicKey: kp.publicKey };
    }
    const device: DeviceCert = issueDeviceCert(identity, pb.person, {
      signingKey: getProvider().ed25519PublicKey(signingSecretKey),
      encryption,
      label: opts.label.trim(),
      validFrom: now - CLOCK_SKEW,
      validUntil: now + days * DAY,
    });
    // The chain must verify now, against the root and the current list, before it is handed out.
    const list = org.revocation.list === undefined ? undefined : verifyRevocationList(fromHex(org.revocation.list), pb.rootPublicKey, now);
    verifyDeviceChain(
      { person: pb.person.bytes, device: device.bytes },
      list === undefined ? { rootPublicKey: pb.rootPublicKey } : { rootPublicKey: pb.rootPublicKey, revocationList: list },
      now,
    );
    const certId = toHex(device.certId);
    const bundle = resolve(opts.out ?? join(home.subdir(BUNDLES_DIR), `device-${certId}.valise`));
    const passphrase = await ctx.passphrases.get('new-bundle', `the device bundle of ${pb.person.name} (${opts.label})`);
    writeBundle(
      bundle,
      FilePurpose.DeviceBundle,
      {
        format: DEVICE_BUNDLE_FORMAT,
        version: BUNDLE_VERSION,
        orgRootPublicKey: org.rootPublicKey,
        personCert: toHex(pb.person.bytes),
        deviceCert: toHex(device.bytes),
        signingSecretKey: toHex(signingSecretKey),
        encryptionSecretKey: toHex(encryptionSecretKey),
        ...(org.revocation.list === undefined ? {} : { revocationList: org.revocation.list }),
        directory: {
          offices: org.offices.map((o) => o.officeCert),
          holders: org.holders.map((h) => h.holderCert),
          ...(org.recordsOfficeId === undefined ? {} : { recordsOffice: org.recordsOfficeId }),
        },
        createdAt: now,
      },
      passphrase,
      ctx.kdf,
    );
    signingSecretKey.fill(0);
    identity.secretKey.fill(0);
    org.devices.push({ personId: entry.personId, deviceCert: toHex(device.bytes), label: device.label, bundle });
    home.save();
    return {
      personId: entry.personId,
      name: pb.person.name,
      deviceId: toHex(device.deviceId),
      certId,
      label: device.label,
      kem: kemName,
      validUntil: device.validUntil,
      bundle,
    };
  });
}

// ---------------------------------------------------------------------------------------------
// revoke

export interface RevokeOptions {
  certs: string[];
  relay?: string;
  validDays?: number;
}

export interface RevokeResult {
  sequence: number;
  nextUpdate: number;
  revoked: { certId: string; what: string }[];
  total: number;
  file: string;
  published: boolean;
  relay?: string;
}

/** What a 16-byte id names in this organisation's records: a certificate id, or the id of a person, office or device. */
function resolveRevocationTarget(org: OrgState, id: string): { certId: string; what: string } {
  const want = toHex(parseId(id, '--cert', 'give a certificate id, person id, office id or device id'));
  const people = org.people.map((p) => decodePersonCert(fromHex(p.personCert)));
  const offices = org.offices.map((o) => decodeOfficeCert(fromHex(o.officeCert)));
  const holders = org.holders.map((h) => decodeOfficeHolderCert(fromHex(h.holderCert)));
  const devices = org.devices.map((d) => decodeDeviceCert(fromHex(d.deviceCert)));
  const name = (personId: Uint8Array) => people.find((p) => equalBytes(p.personId, personId))?.name ?? '?';
  const byCert: [PersonCert | OfficeCert | OfficeHolderCert | DeviceCert, string][] = [
    ...people.map((p) => [p, `person ${p.name} (${p.unit})`] as [PersonCert, string]),
    ...devices.map((d) => [d, `device "${d.label}" of ${name(d.personId)}`] as [DeviceCert, string]),
    ...offices.map((o) => [o, `office ${o.title}, ${o.unit}`] as [OfficeCert, string]),
    ...holders.map((h) => [h, `appointment of ${name(h.personId)} to office ${toHex(h.officeId)}`] as [OfficeHolderCert, string]),
  ];
  const hit = byCert.find(([c]) => toHex(c.certId) === want);
  if (hit !== undefined) return { certId: want, what: hit[1] };
  // A person, office or device id: its newest certificate.
  const person = people.filter((p) => toHex(p.personId) === want).pop();
  if (person !== undefined) return { certId: toHex(person.certId), what: `person ${person.name} (${person.unit})` };
  const office = offices.filter((o) => toHex(o.officeId) === want).pop();
  if (office !== undefined) return { certId: toHex(office.certId), what: `office ${office.title}, ${office.unit}` };
  const device = devices.filter((d) => toHex(d.deviceId) === want).pop();
  if (device !== undefined) return { certId: toHex(device.certId), what: `device "${device.label}" of ${name(device.personId)}` };
  // Not in this home's records (say, a device enrolled elsewhere): revoke the certificate id as given.
  return { certId: want, what: 'certificate (not in this home’s records)' };
}

export async function revoke(ctx: CommandContext, opts: RevokeOptions): Promise<RevokeResult> {
  const days = parseDays(opts.validDays, DEFAULTS.revocationDays, '--valid-days');
  for (const c of opts.certs) parseId(c, '--cert', 'give a certificate id, person id, office id or device id');
  return withHome(homeOptions(ctx), {}, async (home) => {
    const org = requireOrg(home);
    if (opts.relay !== undefined && home.state.device === undefined) {
      throw new CliError(
        'no-device',
        'this home has no registered device to publish the revocation list with',
        ExitCode.NotFound,
        'register a device of yours in this home (valise register), or run without --relay and publish the file from a client: valise revocation publish FILE',
      );
    }
    const targets = opts.certs.map((c) => resolveRevocationTarget(org, c));
    const now = ctx.now();
    const revoked = [...new Set([...org.revocation.revoked, ...targets.map((t) => t.certId)])].sort();
    const sequence = org.revocation.sequence + 1;
    const list = issueRevocationList(rootOf(org), {
      sequence,
      issuedAt: now - CLOCK_SKEW,
      nextUpdate: now + days * DAY,
      revoked: revoked.map((h) => fromHex(h)),
    });
    const file = join(home.subdir(REVOCATION_DIR), `${sequence}.crl`);
    writeFileAtomic(file, list.bytes, {}, 0o644);
    org.revocation = { sequence, revoked, list: toHex(list.bytes) };
    home.state.revocationList = toHex(list.bytes);
    home.save();
    const result: RevokeResult = { sequence, nextUpdate: list.nextUpdate, revoked: targets, total: revoked.length, file, published: false };
    if (opts.relay !== undefined) {
      try {
        await publishList(ctx, home.state.device as NonNullable<Home['state']['device']>, opts.relay, list.bytes);
      } catch (err) {
        const e = toCliError(err);
        throw new CliError(
          e.code,
          `revocation list ${sequence} was issued (${file}) but not published: ${e.message}`,
          e.exitCode,
          `${e.hint ?? 'retry'}; then: valise revocation publish ${file}`,
        );
      }
      result.published = true;
      result.relay = opts.relay;
    }
    return result;
  });
}

async function publishList(ctx: CommandContext, dev: NonNullable<Home['state']['device']>, relay: string, list: Uint8Array): Promise<void> {
  const client = await RelayClient.connect(
    relay,
    { personCert: fromHex(dev.personCert), deviceCert: fromHex(dev.deviceCert), signingSecretKey: fromHex(dev.signingSecretKey) },
    ctx.timeoutMs === undefined ? {} : { timeoutMs: ctx.timeoutMs },
  );
  try {
    await client.publishRevocationList(list);
  } finally {
    await client.close();
  }
}

/** `revocation publish FILE`: publishes a revocation list file through this home's device. */
export async function revocationPublish(
  ctx: CommandContext,
  opts: { file: string; relay?: string },
): Promise<{ sequence: number; relay: string }> {
  return withHome(homeOptions(ctx), {}, async (home) => {
    const dev = home.state.device;
    if (dev === undefined)
      throw notFound('no-device', `the home ${home.dir} has no registered device`, 'run `valise register --bundle FILE --relay URL` first');
    const bytes = readFileBytes(opts.file);
    const now = ctx.now();
    const list = verifyRevocationList(bytes, fromHex(dev.orgRootPublicKey), now);
    const relay = opts.relay ?? dev.relayUrl;
    if (relay === undefined) throw usageError('no relay known for this home', 'pass --relay URL');
    await publishList(ctx, dev, relay, list.bytes);
    const held = home.state.revocationList === undefined ? undefined : decodeRevocationList(fromHex(home.state.revocationList));
    if (held === undefined || held.sequence < list.sequence) {
      home.state.revocationList = toHex(list.bytes);
      home.save();
    }
    return { sequence: list.sequence, relay };
  });
}
