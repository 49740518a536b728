/**
 * The client commands: `register`, `send`, `inbox`, `read`, `safety-number`, `status`,
 * `directory import|search|offices`. They run in a device's home (spec/cli.md) and talk to the
 * relay through client.ts.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  type CapacityReport,
  type ChannelId,
  type DeliverFrame,
  type DistributionEntry,
  DistributionKind,
  decodeDeviceCert,
  decodeOfficeCert,
  decodeOfficeHolderCert,
  decodePersonCert,
  decodeRevocationList,
  ErrorCode,
  encodeSafetyNumberPayload,
  equalBytes,
  fingerprintDocument,
  formatSafetyNumber,
  fromHex,
  getProvider,
  Label,
  labelled,
  MAX_PERSONAL_SIZE,
  open,
  orgIdOf,
  type PersonCert,
  type RevocationList,
  readPreludeFrame,
  type SenderChain,
  safetyNumber,
  seal,
  systemRandom,
  type TracingRecord,
  type TrustStore,
  toHex,
  ValiseError,
  type VerifiedDevice,
  VerifyError,
  VerifyReason,
  verifyDeviceChain,
  verifyPersonCert,
  verifyRevocationList,
} from '@valise/protocol';
import { readDeviceBundle } from './bundles.js';
import { normaliseRelayUrl, RelayClient } from './client.js';
import { type CommandContext, homeOptions, isHexId, parseId } from './context.js';
import { CliError, ExitCode, notFound, toCliError, usageError } from './errors.js';
import { type DeviceState, Home, type HomeState, type ItemIndexEntry, STATE_FILE, withHome } from './home.js';
import { DIRECTORY_FORMAT } from './org.js';
import {
  decodeTracingDocument,
  encodeTracingDocument,
  findRecordsOffice,
  fingerprintContentType,
  isFingerprinted,
  type RecordsOfficeChoice,
  TRACING_RECORD_CONTENT_TYPE,
  textForFingerprinting,
} from './tracing.js';

// ---------------------------------------------------------------------------------------------
// Shared helpers

export function requireDevice(home: Home): DeviceState {
  const dev = home.state.device;
  if (dev === undefined) {
    throw notFound(
      'no-device',
      `the home ${home.dir} has no registered device`,
      'run `valise register --bundle FILE --relay URL` first (or pass --home DIR)',
    );
  }
  return dev;
}

const credsOf = (dev: DeviceState) => ({
  personCert: fromHex(dev.personCert),
  deviceCert: fromHex(dev.deviceCert),
  signingSecretKey: fromHex(dev.signingSecretKey),
});

async function connect(ctx: CommandContext, home: Home, relayOverride?: string): Promise<RelayClient> {
  const dev = requireDevice(home);
  const relay = relayOverride ?? dev.relayUrl;
  if (relay === undefined) throw usageError('no relay is known for this home', 'pass --relay URL');
  return RelayClient.connect(relay, credsOf(dev), ctx.timeoutMs === undefined ? {} : { timeoutMs: ctx.timeoutMs });
}

const heldList = (state: HomeState): RevocationList | undefined =>
  state.revocationList === undefined ? undefined : decodeRevocationList(fromHex(state.revocationList));

/** The trust store of this home: the organisation root and the newest revocation list held. */
export function trustOf(state: HomeState, rootPublicKey: Uint8Array): TrustStore {
  const list = heldList(state);
  return list === undefined ? { rootPublicKey } : { rootPublicKey, revocationList: list };
}

/**
 * Brings the revocation list up to date with the relay: adopts the relay's list if it is newer
 * and verifies (signed by our root, fresh, not older than ours), and gives the relay ours if it
 * holds an older one or none. Returns warnings.
 */
async function syncRevocation(client: RelayClient, home: Home, rootPublicKey: Uint8Array, now: number): Promise<string[]> {
  const warnings: string[] = [];
  const held = heldList(home.state);
  const relayBytes = await client.getRevocationList();
  let relaySeq: number | undefined;
  if (relayBytes !== undefined) {
    try {
      const r = decodeRevocationList(relayBytes);
      relaySeq = r.sequence;
      if (held === undefined || r.sequence > held.sequence) {
        const list = verifyRevocationList(relayBytes, rootPublicKey, now, held === undefined ? undefined : { minSequence: held.sequence });
        // Saved by the caller with the rest of its changes.
        home.state.revocationList = toHex(list.bytes);
        return warnings;
      }
    } catch (err) {
      warnings.push(`the relay's revocation list was not adopted: ${(err as Error).message}`);
    }
  }
  if (held !== undefined && (relaySeq === undefined || relaySeq < held.sequence)) {
    try {
      await client.publishRevocationList(held.bytes);
    } catch {
      // the relay refuses a stale list; the administrator must reissue it
    }
  }
  return warnings;
}

function addContact(state: HomeState, person: PersonCert, deviceCert: Uint8Array | undefined, now: number): void {
  const id = toHex(person.personId);
  const c = state.contacts[id];
  const dev = deviceCert === undefined ? [] : [toHex(deviceCert)];
  if (c === undefined || decodePersonCert(fromHex(c.personCert)).validFrom <= person.validFrom) {
    state.contacts[id] = { personCert: toHex(person.bytes), devices: [...new Set([...(c?.devices ?? []), ...dev])], seenAt: now };
  } else {
    c.devices = [...new Set([...c.devices, ...dev])];
    c.seenAt = now;
  }
}

/**
 * Checks a root signature on an office or office-holder certificate without a device chain: the
 * signed bytes are the encoding without key 31 (spec/identity.md §3.6).
 */
function rootSigned(
  bytes: Uint8Array,
  label: typeof Label.SigOfficeCert | typeof Label.SigOfficeHolderCert,
  root: Uint8Array,
  signature: Uint8Array,
): boolean {
  const head = bytes[0] as number;
  // The encoding ends with key 31 and the signature: 18 1f 58 40 || signature (68 bytes).
  if (head < 0xa1 || head > 0xb7 || bytes.length < 69) return false;
  const tbs = new Uint8Array(bytes.length - 68);
  tbs[0] = head - 1;
  tbs.set(bytes.subarray(1, bytes.length - 68), 1);
  return getProvider().ed25519Verify(signature, labelled(label, tbs), root);
}

function mergeDirectory(
  state: HomeState,
  offices: string[],
  holders: string[],
  root: Uint8Array,
  recordsOffice?: unknown,
): { offices: number; holders: number } {
  const orgId = orgIdOf(root);
  let o = 0;
  let h = 0;
  for (const hexCert of offices) {
    const c = decodeOfficeCert(fromHex(hexCert));
    if (!equalBytes(c.orgId, orgId) || !rootSigned(c.bytes, Label.SigOfficeCert, root, c.signature))
      throw new CliError(
        'verify-bad-signature',
        `office certificate ${toHex(c.certId)} is not signed by this organisation`,
        ExitCode.Verify,
      );
    if (!state.directory.offices.includes(hexCert)) {
      state.directory.offices.push(hexCert);
      o++;
    }
  }
  for (const hexCert of holders) {
    const c = decodeOfficeHolderCert(fromHex(hexCert));
    if (!equalBytes(c.orgId, orgId) || !rootSigned(c.bytes, Label.SigOfficeHolderCert, root, c.signature))
      throw new CliError(
        'verify-bad-signature',
        `office holder certificate ${toHex(c.certId)} is not signed by this organisation`,
        ExitCode.Verify,
      );
    if (!state.directory.holders.includes(hexCert)) {
      state.directory.holders.push(hexCert);
      h++;
    }
  }
  // The designated records office: accepted only as one of the organisation's certified offices.
  if (recordsOffice !== undefined) {
    if (typeof recordsOffice !== 'string' || !isHexId(recordsOffice))
      throw new CliError('bad-directory', 'the records office designation is not an office id', ExitCode.Damaged);
    const id = recordsOffice.toLowerCase();
    if (!officesOf(state).some((c) => toHex(c.officeId) === id))
      throw new CliError('bad-directory', `the designated records office ${id} is not in the directory`, ExitCode.Damaged);
    state.directory.recordsOffice = id;
  }
  return { offices: o, holders: h };
}

const isTransient = (err: unknown) =>
  err instanceof VerifyError && (err.reason === VerifyReason.StaleRevocationList || err.reason === VerifyReason.NotYetValid);

// ---------------------------------------------------------------------------------------------
// register

export interface RegisterResult {
  orgId: string;
  personId: string;
  name: string;
  title: string;
  unit: string;
  deviceId: string;
  deviceCertId: string;
  label: string;
  relay: string;
  revocationSequence?: number;
  warnings: string[];
}

export async function register(ctx: CommandContext, opts: { bundle: string; relay: string }): Promise<RegisterResult> {
  const relay = normaliseRelayUrl(opts.relay);
  const b = readDeviceBundle(opts.bundle, await ctx.passphrases.get('bundle', `the device bundle ${opts.bundle}`));
  const now = ctx.now();
  const warnings: string[] = [];
  let list: RevocationList | undefined;
  if (b.doc.revocationList !== undefined) {
    try {
      list = verifyRevocationList(fromHex(b.doc.revocationList), b.rootPublicKey, now);
    } catch (err) {
      if (!(err instanceof VerifyError && err.reason === VerifyReason.StaleRevocationList)) throw err;
      warnings.push("the bundle's revocation list is out of date; the relay's will be used");
    }
  }
  verifyDeviceChain(
    { person: b.person.bytes, device: b.device.bytes },
    list === undefined ? { rootPublicKey: b.rootPublicKey } : { rootPublicKey: b.rootPublicKey, revocationList: list },
    now,
  );
  // A home created by a registration that then fails is removed again: nothing half-made is left.
  // Only what this call created is removed: the folder if it did not exist, else the state file.
  const dir = resolve(ctx.home);
  const dirExisted = existsSync(dir);
  const created = !Home.exists(dir);
  try {
    return await registerInto(ctx, b, relay, list, now, warnings);
  } catch (err) {
    if (created && !dirExisted) rmSync(dir, { recursive: true, force: true });
    else if (created) rmSync(join(dir, STATE_FILE), { force: true });
    throw err;
  }
}

async function registerInto(
  ctx: CommandContext,
  b: ReturnType<typeof readDeviceBundle>,
  relay: string,
  list: RevocationList | undefined,
  now: number,
  warnings: string[],
): Promise<RegisterResult> {
  return withHome(homeOptions(ctx), { create: true }, async (home) => {
    const s = home.state;
    const orgId = toHex(orgIdOf(b.rootPublicKey));
    if (s.org !== undefined && s.org.orgId !== orgId) {
      throw new CliError(
        'wrong-org',
        `this home administers organisation ${s.org.orgId}; the bundle belongs to ${orgId}`,
        ExitCode.Conflict,
        'register the device in its own --home',
      );
    }
    if (s.device !== undefined && s.device.deviceCert !== toHex(b.device.bytes)) {
      const other = decodeDeviceCert(fromHex(s.device.deviceCert));
      throw new CliError(
        'already-registered',
        `this home is already registered as device ${toHex(other.certId)} ("${other.label}")`,
        ExitCode.Conflict,
        'use another --home for another device',
      );
    }
    if (list !== undefined) {
      const held = heldList(s);
      if (held === undefined || held.sequence < list.sequence) s.revocationList = toHex(list.bytes);
    }
    mergeDirectory(s, b.doc.directory.offices, b.doc.directory.holders, b.rootPublicKey, b.doc.directory.recordsOffice);
    s.device = {
      orgRootPublicKey: b.doc.orgRootPublicKey,
      personCert: b.doc.personCert,
      deviceCert: b.doc.deviceCert,
      signingSecretKey: b.doc.signingSecretKey,
      encryptionSecretKey: b.doc.encryptionSecretKey,
      relayUrl: relay,
      registeredAt: now,
    };
    addContact(s, b.person, b.device.bytes, now);
    const client = await connect(ctx, home, relay);
    try {
      warnings.push(...(await syncRevocation(client, home, b.rootPublicKey, now)));
      await client.publishDirectory(b.person.bytes, b.device.bytes);
    } finally {
      await client.close();
    }
    // Saved only once the relay has the certificates: a failed register leaves no half-registered device.
    home.save();
    const held = heldList(home.state);
    const r: RegisterResult = {
      orgId,
      personId: toHex(b.person.personId),
      name: b.person.name,
      title: b.person.title,
      unit: b.person.unit,
      deviceId: toHex(b.device.deviceId),
      deviceCertId: toHex(b.device.certId),
      label: b.device.label,
      relay,
      warnings,
    };
    if (held !== undefined) r.revocationSequence = held.sequence;
    return r;
  });
}

// ---------------------------------------------------------------------------------------------
// Recipients

export interface ResolvedTarget {
  kind: 'person' | 'office' | 'device';
  id: string;
  name: string;
  devices: string[];
}

interface Resolution {
  targets: ResolvedTarget[];
  devices: VerifiedDevice[];
  distribution: DistributionEntry[];
  warnings: string[];
}

const norm = (s: string) => s.trim().replace(/\s+/g, ' ').toLowerCase();

function officesOf(state: HomeState) {
  return state.directory.offices.map((h) => decodeOfficeCert(fromHex(h)));
}

async function resolveRecipients(client: RelayClient, home: Home, specs: string[], trust: TrustStore, now: number): Promise<Resolution> {
  const out: Resolution = { targets: [], devices: [], distribution: [], warnings: [] };
  const seen = new Set<string>();
  const offices = officesOf(home.state);
  const holders = home.state.directory.holders.map((h) => decodeOfficeHolderCert(fromHex(h)));

  const take = (spec: string, kind: ResolvedTarget['kind'], id: Uint8Array, name: string, chains: SenderChain[]) => {
    const target: ResolvedTarget = { kind, id: toHex(id), name, devices: [] };
    let firstError: unknown;
    for (const chain of chains) {
      let v: VerifiedDevice;
      try {
        v = verifyDeviceChain(chain, trust, now);
      } catch (err) {
        firstError ??= err;
        const reason = err instanceof VerifyError ? err.reason : (err as Error).message;
        out.warnings.push(`${name}: a device was skipped (${reason})`);
        continue;
      }
      addContact(home.state, v.person, v.device.bytes, now);
      const key = toHex(v.device.certId);
      target.devices.push(key);
      if (seen.has(key)) continue;
      seen.add(key);
      out.devices.push(v);
    }
    if (target.devices.length === 0) {
      if (firstError !== undefined) {
        const e = toCliError(firstError);
        throw new CliError(e.code, `no device of "${spec}" can receive: ${e.message}`, e.exitCode, e.hint);
      }
      throw notFound('no-device-for-recipient', `"${spec}" has no registered device`, 'the recipient must run `valise register` first');
    }
    out.targets.push(target);
    const kindCode = kind === 'person' ? DistributionKind.Person : kind === 'office' ? DistributionKind.Office : DistributionKind.Device;
    out.distribution.push({ kind: kindCode, id, name: name.slice(0, 256) });
  };

  /**
   * The relay's directory leaves out revoked certificates; when it has nothing for a person, the
   * chains this home has seen before say why (revoked, expired) instead of a bare "not found".
   */
  const personChains = async (personId: Uint8Array) => {
    const found = (await client.lookup({ personId })).map((e) => ({ person: e.personCert, device: e.deviceCert }) as SenderChain);
    if (found.length > 0) return found;
    const c = home.state.contacts[toHex(personId)];
    return c === undefined ? [] : c.devices.map((d) => ({ person: fromHex(c.personCert), device: fromHex(d) }) as SenderChain);
  };

  const officeTarget = async (spec: string, office: (typeof offices)[number]) => {
    const chains: SenderChain[] = [];
    for (const h of holders.filter((x) => equalBytes(x.officeId, office.officeId))) {
      for (const c of await personChains(h.personId)) chains.push({ ...c, office: office.bytes, officeHolder: h.bytes });
    }
    if (chains.length === 0)
      throw notFound(
        'office-vacant',
        `nobody with a registered device holds the office "${office.title}, ${office.unit}"`,
        'ask the administrator (valise office assign), then import the directory again',
      );
    take(spec, 'office', office.officeId, `${office.title}, ${office.unit}`, chains);
  };

  for (const spec of specs) {
    if (isHexId(spec)) {
      const id = parseId(spec, '--to');
      const office = offices.find((o) => equalBytes(o.officeId, id));
      if (office !== undefined) {
        await officeTarget(spec, office);
        continue;
      }
      const byPerson = await personChains(id);
      if (byPerson.length > 0) {
        const p = decodePersonCert(byPerson[0]?.person as Uint8Array);
        take(spec, 'person', id, p.name, byPerson);
        continue;
      }
      const byDevice = await client.lookup({ deviceCertId: id });
      if (byDevice.length > 0) {
        const e = byDevice[0] as { personCert: Uint8Array; deviceCert: Uint8Array };
        const d = decodeDeviceCert(e.deviceCert);
        const p = decodePersonCert(e.personCert);
        take(spec, 'device', d.deviceId, `${p.name} (${d.label})`, [{ person: e.personCert, device: e.deviceCert }]);
        continue;
      }
      throw notFound(
        'no-such-recipient',
        `no person, office or device ${spec.toLowerCase()} in the directory`,
        'check the id (valise directory search TEXT); the recipient must have registered',
      );
    }
    const want = norm(spec);
    const office = offices.filter((o) => norm(`${o.title}, ${o.unit}`) === want);
    if (office.length === 1) {
      await officeTarget(spec, office[0] as (typeof offices)[number]);
      continue;
    }
    const entries = await client.lookup({ text: spec.trim().slice(0, 256) });
    const people = new Map<string, PersonCert>();
    for (const e of entries) {
      try {
        const p = decodePersonCert(e.personCert);
        people.set(toHex(p.personId), p);
      } catch {
        // an undecodable entry: skipped
      }
    }
    let matches = [...people.values()].filter((p) => norm(p.name) === want);
    if (matches.length === 0) matches = [...people.values()].filter((p) => norm(p.unit) === want);
    if (matches.length === 0) {
      // Not in the relay's directory (which leaves out revoked certificates): people this home has met.
      const known = Object.values(home.state.contacts).map((c) => decodePersonCert(fromHex(c.personCert)));
      matches = known.filter((p) => norm(p.name) === want);
      if (matches.length === 0) matches = known.filter((p) => norm(p.unit) === want);
    }
    if (matches.length === 0) {
      const near = [...people.values()].slice(0, 5).map((p) => `${p.name} (${p.unit}) ${toHex(p.personId)}`);
      throw notFound(
        'no-such-recipient',
        `nobody called "${spec}" in the directory`,
        near.length > 0
          ? `did you mean: ${near.join('; ')}? (names must match exactly, or give an id)`
          : 'check the spelling, or search with `valise directory search TEXT`',
      );
    }
    if (matches.length > 1) {
      throw new CliError(
        'ambiguous-recipient',
        `"${spec}" names ${matches.length} people: ${matches.map((p) => `${p.name}, ${p.title}, ${p.unit} (${toHex(p.personId)})`).join('; ')}`,
        ExitCode.Usage,
        'give the person id instead',
      );
    }
    const p = matches[0] as PersonCert;
    take(spec, 'person', p.personId, p.name, await personChains(p.personId));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// send

export interface FingerprintSendOptions {
  /** Design coalition size (default 3). */
  coalition?: number;
  /** Total false-accusation probability over all recipients (default 1e-6). */
  epsilon?: number;
  /** Below the target coalition: 'warn' (default) sends with a warning, 'refuse' sends nothing. */
  policy?: 'warn' | 'refuse';
  /** Marking channels (default: all). */
  channels?: ChannelId[];
  /** The records office: an office id, "Title, Unit" or a title; "none" for none; default: found (tracing.ts). */
  recordsOffice?: string;
}

export interface SendOptions {
  to: string[];
  subject: string;
  classification?: string;
  contentType?: string;
  body: Uint8Array;
  /** Write as this office (its id): the sender chain carries the office and holder certificates. */
  asOffice?: string;
  relay?: string;
  /** Give each recipient person its own marked copy of the (text) body, and seal the tracing record (spec/cli.md §13). */
  fingerprint?: FingerprintSendOptions;
}

export interface SendFingerprintResult {
  /** The tracing item id (`valise trace --item`). */
  itemId: string;
  contentType: string;
  report: CapacityReport;
  /** The tracing recipients: one per person, whatever their number of devices. */
  recipients: { personId: string; name: string; devices: number }[];
  record: {
    /** The sender's home keeps the record (records/<itemId>.valise). */
    keptInHome: true;
    recordsOffice?: { officeId: string; title: string; unit: string; how: 'option' | 'designated' | 'title' };
    /** Devices the record envelope was sealed for: the records office holders' and the sender's other devices. */
    devices: number;
    envelopes: SendResult['envelopes'];
  };
}

export interface SendResult {
  envelopes: { envelopeId: string; messageId: string; bytes: number; devices: number }[];
  recipients: ResolvedTarget[];
  devices: number;
  subject: string;
  classification: string;
  warnings: string[];
  fingerprint?: SendFingerprintResult;
}

export const DEFAULT_CLASSIFICATION = 'UNCLASSIFIED';

function groupByKem(devices: VerifiedDevice[]): VerifiedDevice[][] {
  const byKem = new Map<number, VerifiedDevice[]>();
  for (const d of devices) byKem.set(d.device.encryption.kem, [...(byKem.get(d.device.encryption.kem) ?? []), d]);
  return [...byKem.values()];
}

interface Sealed {
  envelope: Uint8Array;
  envelopeId: string;
  group: VerifiedDevice[];
}

/** What `send --fingerprint` prepared before anything is sealed. */
interface Fingerprinting {
  itemId: Uint8Array;
  contentType: string;
  record: TracingRecord;
  report: CapacityReport;
  /** Person id (hex) -> UTF-8 of that person's copy. */
  copies: Map<string, Uint8Array>;
  people: { personId: string; name: string; devices: number }[];
  recordsOffice: RecordsOfficeChoice;
  /** Devices the record is sealed for (this device excluded: its home keeps the record). */
  recordDevices: VerifiedDevice[];
  recordDistribution: DistributionEntry[];
}

async function prepareFingerprint(
  client: RelayClient,
  home: Home,
  text: string,
  contentType: string,
  fo: FingerprintSendOptions,
  r: Resolution,
  me: PersonCert,
  trust: TrustStore,
  now: number,
  warnings: string[],
): Promise<Fingerprinting> {
  // The tracing recipients are people: every device of one person gets that person's copy.
  const people = new Map<string, { person: PersonCert; devices: number }>();
  for (const d of r.devices) {
    const id = toHex(d.person.personId);
    const p = people.get(id);
    if (p === undefined) people.set(id, { person: d.person, devices: 1 });
    else p.devices++;
  }
  const list = [...people.values()];
  const itemId = systemRandom(16);
  const tracingKey = systemRandom(32);
  const fp = fingerprintDocument(text, {
    tracingKey,
    itemId,
    recipients: list.map((p) => ({ id: p.person.personId, name: `${p.person.name}, ${p.person.unit}`.slice(0, 256) })),
    ...(fo.coalition === undefined ? {} : { c: fo.coalition }),
    ...(fo.epsilon === undefined ? {} : { epsilon: fo.epsilon }),
    ...(fo.channels === undefined ? {} : { channels: fo.channels }),
    policy: 'warn',
  });
  tracingKey.fill(0);
  if (fo.policy === 'refuse' && !fp.report.meetsTarget) {
    throw new CliError(
      'below-target',
      `refused to send: ${fp.report.warnings[0] ?? `the text cannot trace coalitions of ${fp.report.c}`}`,
      ExitCode.Usage,
      'send a longer text, lower --coalition, raise --epsilon, or accept the lower capacity with --policy warn',
    );
  }
  warnings.push(...fp.report.warnings.map((w) => `fingerprint: ${w}`));
  const copies = new Map<string, Uint8Array>();
  list.forEach((p, i) => {
    const bytes = new TextEncoder().encode(fp.copies[i] as string);
    if (bytes.length > MAX_PERSONAL_SIZE)
      throw usageError(
        `a marked copy is ${bytes.length} bytes, above the ${MAX_PERSONAL_SIZE}-byte limit of a personal copy`,
        'send a shorter text',
      );
    copies.set(toHex(p.person.personId), bytes);
  });

  // The record goes to the sender's own devices and to the records office's holders.
  const recordsOffice = findRecordsOffice(home.state, fo.recordsOffice);
  if (recordsOffice.office === undefined && fo.recordsOffice === undefined)
    warnings.push(
      'no records office is designated: the tracing record is kept by the sender only (designate one with `valise office add --records-office`, or pass --records-office)',
    );
  const specs = [toHex(me.personId), ...(recordsOffice.office === undefined ? [] : [toHex(recordsOffice.office.officeId)])];
  let rr: Resolution;
  try {
    rr = await resolveRecipients(client, home, specs, trust, now);
  } catch (err) {
    const e = toCliError(err);
    throw new CliError(
      e.code,
      `the tracing record cannot be sealed for the records office: ${e.message}`,
      e.exitCode,
      `${e.hint ?? ''}${e.hint ? '; or ' : ''}choose another with --records-office, or keep the record in this home only with --records-office none`,
    );
  }
  warnings.push(...rr.warnings);
  const myDevice = decodeDeviceCert(fromHex(requireDevice(home).deviceCert));
  return {
    itemId,
    contentType,
    record: fp.record,
    report: fp.report,
    copies,
    people: list.map((p) => ({ personId: toHex(p.person.personId), name: `${p.person.name}, ${p.person.unit}`, devices: p.devices })),
    recordsOffice,
    recordDevices: rr.devices.filter((d) => !equalBytes(d.device.certId, myDevice.certId)),
    recordDistribution: rr.distribution,
  };
}

export async function send(ctx: CommandContext, opts: SendOptions): Promise<SendResult> {
  if (opts.to.length === 0) throw usageError('no recipient', 'give at least one --to NAME|ID');
  if (opts.subject.length > 1024) throw usageError('--subject: at most 1024 characters');
  const classification = opts.classification ?? DEFAULT_CLASSIFICATION;
  if (classification.length > 64) throw usageError('--classification: at most 64 characters');
  if (opts.asOffice !== undefined) parseId(opts.asOffice, '--as-office', 'see `valise directory search TEXT`');
  for (const t of opts.to) if (t.trim() === '') throw usageError('--to: empty recipient');
  // A fingerprinted body must be text: checked before the home is opened or the relay contacted.
  const text = opts.fingerprint === undefined ? undefined : textForFingerprinting(opts.body);
  const contentType =
    opts.fingerprint === undefined ? (opts.contentType ?? 'text/plain; charset=utf-8') : fingerprintContentType(opts.contentType);
  return withHome(homeOptions(ctx), {}, async (home) => {
    const dev = requireDevice(home);
    const root = fromHex(dev.orgRootPublicKey);
    const client = await connect(ctx, home, opts.relay);
    try {
      const now = ctx.now();
      const warnings = await syncRevocation(client, home, root, now);
      const trust = trustOf(home.state, root);
      const chain: SenderChain = { person: fromHex(dev.personCert), device: fromHex(dev.deviceCert) };
      const me = decodePersonCert(chain.person);
      if (opts.asOffice !== undefined) {
        const officeId = parseId(opts.asOffice, '--as-office');
        const office = officesOf(home.state).find((o) => equalBytes(o.officeId, officeId));
        const holder = home.state.directory.holders
          .map((h) => decodeOfficeHolderCert(fromHex(h)))
          .filter(
            (h) => equalBytes(h.officeId, officeId) && equalBytes(h.personId, me.personId) && equalBytes(h.identityKey, me.identityKey),
          )
          .sort((a, b) => b.validFrom - a.validFrom)[0];
        if (office === undefined || holder === undefined) {
          throw notFound(
            'not-office-holder',
            `you do not hold office ${toHex(officeId)} according to this home's directory`,
            'ask the administrator to assign it (valise office assign) and import the directory (valise directory import FILE)',
          );
        }
        chain.office = office.bytes;
        chain.officeHolder = holder.bytes;
      }
      // Our own chain first: if it does not verify, recipients would refuse the item.
      try {
        verifyDeviceChain(chain, trust, now);
      } catch (err) {
        const e = toCliError(err);
        throw new CliError(e.code, `this device's own certificates do not verify: ${e.message}`, e.exitCode, e.hint);
      }
      const r = await resolveRecipients(client, home, opts.to, trust, now);
      warnings.push(...r.warnings);
      const fp =
        opts.fingerprint === undefined || text === undefined
          ? undefined
          : await prepareFingerprint(client, home, text, contentType, opts.fingerprint, r, me, trust, now, warnings);
      const sender = { chain, signingSecretKey: fromHex(dev.signingSecretKey) };

      // Seal everything first, so that the tracing record (which names the envelopes) is kept
      // in this home before any copy leaves it.
      const items: Sealed[] = groupByKem(r.devices).map((group) => {
        const envelope = seal(
          {
            subject: opts.subject,
            classification,
            contentType,
            distribution: r.distribution,
            createdAt: now,
            ...(fp === undefined
              ? {}
              : { personal: (_i: number, d: VerifiedDevice) => fp.copies.get(toHex(d.person.personId)) as Uint8Array }),
          },
          fp === undefined ? opts.body : new Uint8Array(0),
          sender,
          group,
        );
        return { envelope, envelopeId: toHex(readPreludeFrame(envelope).prelude.envelopeId), group };
      });
      let records: Sealed[] = [];
      if (fp !== undefined) {
        const document = encodeTracingDocument({
          record: fp.record,
          source: text as string,
          subject: opts.subject,
          classification,
          contentType,
          createdAt: now,
          envelopes: items.map((x) => fromHex(x.envelopeId)),
          sender: { personId: me.personId, name: me.name, unit: me.unit },
        });
        const itemId = toHex(fp.itemId);
        home.writeRecord(itemId, document);
        home.state.records = [
          ...(home.state.records ?? []),
          {
            itemId,
            subject: opts.subject,
            classification,
            createdAt: now,
            envelopes: items.map((x) => x.envelopeId),
            recipients: fp.people.length,
          },
        ];
        home.save();
        records = groupByKem(fp.recordDevices).map((group) => {
          const envelope = seal(
            {
              subject: `Tracing record: ${opts.subject}`.slice(0, 1024),
              classification,
              contentType: TRACING_RECORD_CONTENT_TYPE,
              distribution: fp.recordDistribution,
              createdAt: now,
            },
            document,
            sender,
            group,
          );
          return { envelope, envelopeId: toHex(readPreludeFrame(envelope).prelude.envelopeId), group };
        });
      }

      const deliver = async (x: Sealed, to: string[], tracingItemId?: string) => {
        const stored = await client.send(
          x.envelope,
          x.group.map((d, i) => ({ entryIndex: i, mailbox: d.device.certId })),
        );
        home.state.sent.push({
          envelopeId: x.envelopeId,
          messageId: toHex(stored.messageId),
          subject: opts.subject,
          classification,
          to,
          devices: x.group.length,
          at: now,
          ...(tracingItemId === undefined ? {} : { tracingItemId }),
        });
        return { envelopeId: x.envelopeId, messageId: toHex(stored.messageId), bytes: x.envelope.length, devices: x.group.length };
      };
      const envelopes: SendResult['envelopes'] = [];
      const tracingItemId = fp === undefined ? undefined : toHex(fp.itemId);
      for (const x of items)
        envelopes.push(
          await deliver(
            x,
            r.targets.map((t) => t.name),
            tracingItemId,
          ),
        );
      const recordEnvelopes: SendResult['envelopes'] = [];
      for (const x of records) recordEnvelopes.push(await deliver(x, fp?.recordDistribution.map((d) => d.name) ?? [], tracingItemId));
      home.save();
      const result: SendResult = {
        envelopes,
        recipients: r.targets,
        devices: r.devices.length,
        subject: opts.subject,
        classification,
        warnings,
      };
      if (fp !== undefined) {
        const office = fp.recordsOffice.office;
        result.fingerprint = {
          itemId: toHex(fp.itemId),
          contentType,
          report: fp.report,
          recipients: fp.people,
          record: {
            keptInHome: true,
            ...(office === undefined || fp.recordsOffice.how === 'none'
              ? {}
              : {
                  recordsOffice: { officeId: toHex(office.officeId), title: office.title, unit: office.unit, how: fp.recordsOffice.how },
                }),
            devices: fp.recordDevices.length,
            envelopes: recordEnvelopes,
          },
        };
      }
      return result;
    } finally {
      await client.close();
    }
  });
}

// ---------------------------------------------------------------------------------------------
// inbox

/** A received item as stored in items/<n>.valise. */
export interface StoredItem {
  version: 1;
  n: number;
  messageId: string;
  envelopeId: string;
  storedAt: number;
  receivedAt: number;
  createdAt: number;
  subject: string;
  classification: string;
  contentType: string;
  distribution: { kind: number; id: string; name: string }[];
  sender: {
    personId: string;
    name: string;
    title: string;
    unit: string;
    deviceCertId: string;
    deviceLabel: string;
    office?: { officeId: string; title: string; unit: string };
    personCert: string;
    deviceCert: string;
  };
  recipients: string[];
  recipientIndex: number;
  /** base64 */
  body: string;
  personal?: string;
  evidence: {
    preludeDigest: string;
    header: string;
    bodyDigest: string;
    signature: string;
    personal?: { recipientIndex: number; salt: string };
  };
  /** The delivered envelope as received (base64), for the archive and for evidence. */
  envelope: string;
}

export interface InboxOptions {
  /** Contact the relay (default true); false lists what the home holds. */
  fetch?: boolean;
  /**
   * The inbox stops when the relay says its backlog is pushed (BacklogEnd); only if it never
   * does, after this long without a delivery, ms. Default 10000.
   */
  quietMs?: number;
  relay?: string;
  /** List only unread items. */
  unread?: boolean;
}

export interface InboxResult {
  fetched: { new: number; duplicates: number; rejected: number; held: number } | null;
  items: ItemIndexEntry[];
  rejected: { messageId: string; reason: string }[];
  warnings: string[];
}

const b64 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');

function acceptDelivery(home: Home, dev: DeviceState, f: DeliverFrame, trust: TrustStore, now: number): 'new' | 'duplicate' {
  const s = home.state;
  const device = decodeDeviceCert(fromHex(dev.deviceCert));
  const o = open(f.envelope, { device, encryptionSecretKey: fromHex(dev.encryptionSecretKey) }, trust, { now });
  const messageId = toHex(f.messageId);
  const senderDevice = toHex(o.sender.device.certId);
  const key = `${toHex(o.envelopeId)}:${senderDevice}`;
  const existing = s.envelopes[key];
  if (existing !== undefined) {
    s.seen[messageId] = existing;
    return 'duplicate';
  }
  const n = s.nextItem++;
  const sender: StoredItem['sender'] = {
    personId: toHex(o.sender.person.personId),
    name: o.sender.person.name,
    title: o.sender.person.title,
    unit: o.sender.person.unit,
    deviceCertId: senderDevice,
    deviceLabel: o.sender.device.label,
    personCert: toHex(o.sender.person.bytes),
    deviceCert: toHex(o.sender.device.bytes),
  };
  if (o.sender.office !== undefined)
    sender.office = { officeId: toHex(o.sender.office.officeId), title: o.sender.office.title, unit: o.sender.office.unit };
  const item: StoredItem = {
    version: 1,
    n,
    messageId,
    envelopeId: toHex(o.envelopeId),
    storedAt: f.storedAt,
    receivedAt: now,
    createdAt: o.createdAt,
    subject: o.subject,
    classification: o.classification,
    contentType: o.contentType,
    distribution: o.distribution.map((d) => ({ kind: d.kind, id: toHex(d.id), name: d.name })),
    sender,
    recipients: o.recipients.map(toHex),
    recipientIndex: o.recipientIndex,
    body: b64(o.body),
    evidence: {
      preludeDigest: toHex(o.evidence.preludeDigest),
      header: b64(o.evidence.header),
      bodyDigest: toHex(o.evidence.bodyDigest),
      signature: toHex(o.evidence.signature),
      ...(o.evidence.personal === undefined
        ? {}
        : { personal: { recipientIndex: o.evidence.personal.recipientIndex, salt: toHex(o.evidence.personal.salt) } }),
    },
    envelope: b64(f.envelope),
  };
  if (o.personal !== undefined) item.personal = b64(o.personal);
  home.writeItem(n, item);
  const fingerprinted = isFingerprinted(o.contentType) && o.personal !== undefined;
  const entry: ItemIndexEntry = {
    n,
    messageId,
    envelopeId: item.envelopeId,
    senderDevice,
    senderPerson: sender.personId,
    from: sender.name,
    fromUnit: sender.unit,
    subject: o.subject,
    classification: o.classification,
    createdAt: o.createdAt,
    receivedAt: now,
    bodyLength: fingerprinted ? (o.personal as Uint8Array).length : o.body.length,
    read: false,
  };
  // A tracing record (this home is the records office, or another device of the sender): indexed
  // for `valise trace` if it decodes and names its own signer as the sender.
  if (o.contentType === TRACING_RECORD_CONTENT_TYPE) {
    try {
      const doc = decodeTracingDocument(o.body);
      if (equalBytes(doc.sender.personId, o.sender.person.personId))
        entry.tracing = {
          itemId: toHex(doc.record.itemId),
          envelopes: doc.envelopes.map(toHex),
          recipients: doc.record.recipients.length,
        };
    } catch {
      // kept as an ordinary item; `valise trace` will not offer it
    }
  }
  if (sender.office !== undefined) entry.office = `${sender.office.title}, ${sender.office.unit}`;
  s.items.push(entry);
  s.seen[messageId] = n;
  s.envelopes[key] = n;
  addContact(s, o.sender.person, o.sender.device.bytes, now);
  return 'new';
}

function rejectionReason(err: unknown): string {
  if (err instanceof VerifyError) return `verify-${err.reason}`;
  if (ValiseError.is(err, ErrorCode.Open)) return 'cannot-open';
  if (ValiseError.is(err, ErrorCode.Decode)) return 'malformed';
  return 'error';
}

export async function inbox(ctx: CommandContext, opts: InboxOptions = {}): Promise<InboxResult> {
  return withHome(homeOptions(ctx), {}, async (home) => {
    const dev = requireDevice(home);
    const warnings: string[] = [];
    let fetched: InboxResult['fetched'] = null;
    if (opts.fetch !== false) {
      const counts = { new: 0, duplicates: 0, rejected: 0, held: 0 };
      const root = fromHex(dev.orgRootPublicKey);
      const client = await connect(ctx, home, opts.relay);
      try {
        warnings.push(...(await syncRevocation(client, home, root, ctx.now())));
        home.save();
        const trust = trustOf(home.state, root);
        const queue: DeliverFrame[] = [];
        let lastDelivery = Date.now();
        let backlogEnded = false;
        let wake: (() => void) | undefined;
        client.onDeliver((f) => {
          queue.push(f);
          lastDelivery = Date.now();
          wake?.();
        });
        // The relay says when it has pushed everything that waited; the deliveries before that
        // are in the queue by then (one socket keeps the order).
        client.onBacklogEnd(() => {
          backlogEnded = true;
          wake?.();
        });
        // Only for a relay that never says so: give up after this long without a delivery.
        const quiet = opts.quietMs ?? 10_000;
        const heldReasons = new Set<string>();
        for (;;) {
          if (queue.length === 0) {
            if (backlogEnded) break;
            const idle = Date.now() - lastDelivery;
            if (idle >= quiet) break;
            await new Promise<void>((resolve) => {
              const t = setTimeout(resolve, Math.min(quiet - idle, 100));
              wake = () => {
                clearTimeout(t);
                resolve();
              };
            });
            wake = undefined;
            continue;
          }
          const batch = queue.splice(0);
          const toAck: Uint8Array[] = [];
          const now = ctx.now();
          for (const f of batch) {
            const id = toHex(f.messageId);
            if (home.state.seen[id] !== undefined) {
              counts.duplicates++;
              toAck.push(f.messageId);
              continue;
            }
            try {
              const r = acceptDelivery(home, dev, f, trust, now);
              if (r === 'new') counts.new++;
              else counts.duplicates++;
              toAck.push(f.messageId);
            } catch (err) {
              if (isTransient(err)) {
                // Not acknowledged: the relay keeps it, and the next inbox tries again.
                counts.held++;
                heldReasons.add((err as VerifyError).reason);
                continue;
              }
              counts.rejected++;
              home.state.seen[id] = 0;
              home.state.rejected.push({ messageId: id, reason: rejectionReason(err), at: now });
              toAck.push(f.messageId);
            }
          }
          // Durable in the home before the relay may delete anything.
          home.save();
          if (toAck.length > 0) await client.ack(toAck);
        }
        for (const r of heldReasons) {
          const e = toCliError(new VerifyError(r as VerifyReason, r));
          warnings.push(`items left on the relay (${r}): ${e.hint ?? ''}`);
        }
      } finally {
        await client.close();
      }
      fetched = counts;
    }
    const items = opts.unread ? home.state.items.filter((i) => !i.read) : home.state.items;
    return { fetched, items, rejected: home.state.rejected.map((r) => ({ messageId: r.messageId, reason: r.reason })), warnings };
  });
}

// ---------------------------------------------------------------------------------------------
// read

export interface ReadResult {
  item: Omit<StoredItem, 'body' | 'envelope' | 'personal' | 'evidence'> & { evidence: StoredItem['evidence'] };
  /** The item's text: for a fingerprinted item, this recipient's personal copy. */
  body: Uint8Array;
  /** The body is this recipient's own marked copy (`valise-fingerprinted=1`). */
  fingerprinted: boolean;
}

function checkItemId(id: string): string {
  const s = id.trim().toLowerCase();
  if (!/^[0-9]+$/.test(s) && !/^[0-9a-f]{4,32}$/.test(s)) {
    throw usageError(
      `not an item number or id: "${id}"`,
      'give the number shown by `valise inbox`, or an envelope id (at least 4 hex digits)',
    );
  }
  return s;
}

function findItem(home: Home, id: string): ItemIndexEntry {
  const s = checkItemId(id);
  let hit: ItemIndexEntry | undefined;
  if (/^[0-9]+$/.test(s)) hit = home.state.items.find((i) => i.n === Number(s));
  else {
    const m = home.state.items.filter((i) => i.envelopeId.startsWith(s) || i.messageId.startsWith(s));
    if (m.length > 1) throw usageError(`"${id}" matches ${m.length} items`, 'give more digits, or the item number');
    hit = m[0];
  }
  if (hit === undefined) throw notFound('no-such-item', `no item ${id} in this home`, 'run `valise inbox` to fetch and list items');
  return hit;
}

export async function read(ctx: CommandContext, opts: { id: string; keepUnread?: boolean }): Promise<ReadResult> {
  checkItemId(opts.id);
  return withHome(homeOptions(ctx), {}, (home) => {
    requireDevice(home);
    const entry = findItem(home, opts.id);
    const stored = home.readItem<StoredItem>(entry.n);
    if (!opts.keepUnread && !entry.read) {
      entry.read = true;
      home.save();
    }
    const { body, envelope: _e, personal, ...rest } = stored;
    // A fingerprinted item's text is the personal payload; the shared body is empty.
    const fingerprinted = isFingerprinted(stored.contentType) && personal !== undefined;
    return { item: rest, body: new Uint8Array(Buffer.from(fingerprinted ? personal : body, 'base64')), fingerprinted };
  });
}

// ---------------------------------------------------------------------------------------------
// safety number

export interface SafetyNumberResult {
  with: { personId: string; name: string; title: string; unit: string };
  me: { personId: string; name: string };
  safetyNumber: string;
  formatted: string;
  qrPayload: string;
}

export async function safetyNumberCmd(ctx: CommandContext, opts: { with: string; relay?: string }): Promise<SafetyNumberResult> {
  return withHome(homeOptions(ctx), {}, async (home) => {
    const dev = requireDevice(home);
    const root = fromHex(dev.orgRootPublicKey);
    const me = decodePersonCert(fromHex(dev.personCert));
    const spec = opts.with.trim();
    const contacts = Object.values(home.state.contacts).map((c) => decodePersonCert(fromHex(c.personCert)));
    let candidates: PersonCert[];
    if (isHexId(spec)) {
      const id = parseId(spec, '--with');
      candidates = contacts.filter((p) => equalBytes(p.personId, id));
    } else {
      candidates = contacts.filter((p) => norm(p.name) === norm(spec));
    }
    if (candidates.length === 0) {
      // Not met yet: ask the relay directory.
      const client = await connect(ctx, home, opts.relay);
      try {
        await syncRevocation(client, home, root, ctx.now());
        const entries = await client.lookup(isHexId(spec) ? { personId: parseId(spec, '--with') } : { text: spec.slice(0, 256) });
        const people = new Map<string, PersonCert>();
        for (const e of entries) {
          const p = decodePersonCert(e.personCert);
          if (isHexId(spec) || norm(p.name) === norm(spec)) people.set(toHex(p.certId), p);
        }
        candidates = [...people.values()];
        for (const [i, p] of candidates.entries()) addContact(home.state, p, entries[i]?.deviceCert, ctx.now());
      } finally {
        await client.close();
      }
    }
    const ids = new Set(candidates.map((p) => toHex(p.personId)));
    if (ids.size === 0) throw notFound('no-such-person', `nobody called "${spec}" is known`, 'check the name, or give the person id');
    if (ids.size > 1)
      throw new CliError('ambiguous-person', `"${spec}" names ${ids.size} people`, ExitCode.Usage, 'give the person id instead');
    // The newest certificate of that person, verified now against the root and the revocation list.
    const them = candidates.sort((a, b) => b.validFrom - a.validFrom)[0] as PersonCert;
    verifyPersonCert(them.bytes, trustOf(home.state, root), ctx.now());
    home.save();
    const number = safetyNumber(me, them);
    return {
      with: { personId: toHex(them.personId), name: them.name, title: them.title, unit: them.unit },
      me: { personId: toHex(me.personId), name: me.name },
      safetyNumber: number,
      formatted: formatSafetyNumber(number),
      qrPayload: toHex(encodeSafetyNumberPayload(me, them)),
    };
  });
}

// ---------------------------------------------------------------------------------------------
// status

export interface StatusResult {
  home: string;
  org?: { orgId: string; people: number; offices: number; devices: number; revocationSequence: number };
  device?: {
    personId: string;
    name: string;
    title: string;
    unit: string;
    deviceCertId: string;
    label: string;
    validUntil: number;
    relay?: string;
  };
  revocation?: { sequence: number; nextUpdate: number; stale: boolean; revoked: number };
  items: { total: number; unread: number; rejected: number };
  sent: number;
  offices: number;
}

export async function status(ctx: CommandContext): Promise<StatusResult> {
  return withHome(homeOptions(ctx), {}, (home) => {
    const s = home.state;
    const r: StatusResult = {
      home: home.dir,
      items: { total: s.items.length, unread: s.items.filter((i) => !i.read).length, rejected: s.rejected.length },
      sent: s.sent.length,
      offices: s.directory.offices.length,
    };
    if (s.org !== undefined) {
      r.org = {
        orgId: s.org.orgId,
        people: s.org.people.length,
        offices: s.org.offices.length,
        devices: s.org.devices.length,
        revocationSequence: s.org.revocation.sequence,
      };
    }
    if (s.device !== undefined) {
      const p = decodePersonCert(fromHex(s.device.personCert));
      const d = decodeDeviceCert(fromHex(s.device.deviceCert));
      r.device = {
        personId: toHex(p.personId),
        name: p.name,
        title: p.title,
        unit: p.unit,
        deviceCertId: toHex(d.certId),
        label: d.label,
        validUntil: d.validUntil,
      };
      if (s.device.relayUrl !== undefined) r.device.relay = s.device.relayUrl;
    }
    const list = heldList(s);
    if (list !== undefined)
      r.revocation = {
        sequence: list.sequence,
        nextUpdate: list.nextUpdate,
        stale: ctx.now() > list.nextUpdate,
        revoked: list.revoked.length,
      };
    return r;
  });
}

// ---------------------------------------------------------------------------------------------
// directory

export async function directoryImport(ctx: CommandContext, opts: { file: string }): Promise<{ offices: number; holders: number }> {
  let doc: { format?: unknown; version?: unknown; orgId?: unknown; offices?: unknown; holders?: unknown; recordsOffice?: unknown };
  try {
    doc = JSON.parse(readFileSync(opts.file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notFound('file-not-found', `${opts.file} does not exist`);
    throw new CliError(
      'bad-directory',
      `${opts.file} is not a directory file`,
      ExitCode.Damaged,
      'use the file written by `valise office export`',
    );
  }
  if (doc.format !== DIRECTORY_FORMAT || doc.version !== 1 || !Array.isArray(doc.offices) || !Array.isArray(doc.holders)) {
    throw new CliError(
      'bad-directory',
      `${opts.file} is not a directory file`,
      ExitCode.Damaged,
      'use the file written by `valise office export`',
    );
  }
  return withHome(homeOptions(ctx), {}, (home) => {
    const dev = requireDevice(home);
    const root = fromHex(dev.orgRootPublicKey);
    if (doc.orgId !== toHex(orgIdOf(root)))
      throw new CliError(
        'wrong-org',
        `${opts.file} belongs to another organisation`,
        ExitCode.Conflict,
        'import the directory file of your own organisation',
      );
    const added = mergeDirectory(home.state, doc.offices as string[], doc.holders as string[], root, doc.recordsOffice);
    home.save();
    return added;
  });
}

export interface DirectoryEntryView {
  personId: string;
  name: string;
  title: string;
  unit: string;
  devices: { certId: string; label: string; valid: boolean; problem?: string }[];
}

export async function directorySearch(
  ctx: CommandContext,
  opts: { text: string; relay?: string },
): Promise<{ people: DirectoryEntryView[]; offices: { officeId: string; title: string; unit: string; holders: string[] }[] }> {
  if (!opts.text.trim()) throw usageError('give some text to search for');
  return withHome(homeOptions(ctx), {}, async (home) => {
    const dev = requireDevice(home);
    const root = fromHex(dev.orgRootPublicKey);
    const client = await connect(ctx, home, opts.relay);
    try {
      const now = ctx.now();
      await syncRevocation(client, home, root, now);
      const trust = trustOf(home.state, root);
      const entries = await client.lookup({ text: opts.text.trim().slice(0, 256) });
      const people = new Map<string, DirectoryEntryView>();
      for (const e of entries) {
        const p = decodePersonCert(e.personCert);
        const d = decodeDeviceCert(e.deviceCert);
        const view = people.get(toHex(p.personId)) ?? {
          personId: toHex(p.personId),
          name: p.name,
          title: p.title,
          unit: p.unit,
          devices: [],
        };
        let problem: string | undefined;
        try {
          verifyDeviceChain({ person: e.personCert, device: e.deviceCert }, trust, now);
        } catch (err) {
          problem = err instanceof VerifyError ? err.reason : 'invalid';
        }
        view.devices.push({
          certId: toHex(d.certId),
          label: d.label,
          valid: problem === undefined,
          ...(problem === undefined ? {} : { problem }),
        });
        people.set(view.personId, view);
      }
      const want = norm(opts.text);
      const holders = home.state.directory.holders.map((h) => decodeOfficeHolderCert(fromHex(h)));
      const offices = officesOf(home.state)
        .filter((o) => norm(`${o.title}, ${o.unit}`).includes(want))
        .map((o) => ({
          officeId: toHex(o.officeId),
          title: o.title,
          unit: o.unit,
          holders: holders.filter((h) => equalBytes(h.officeId, o.officeId)).map((h) => toHex(h.personId)),
        }));
      home.save();
      return { people: [...people.values()], offices };
    } finally {
      await client.close();
    }
  });
}
