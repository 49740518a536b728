/**
 * The commands as functions, in this process, against a real relay on 127.0.0.1 (SQLite in a
 * temporary folder): administration, enrolment, sending to people, offices and devices,
 * exactly-once receipt, rejected and held deliveries, offices, safety numbers, revocation.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromHex, toHex } from '@valise/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RelayClient } from '../src/client.js';
import type { CommandContext } from '../src/context.js';
import { CliError, ExitCode } from '../src/errors.js';
import { Home } from '../src/home.js';
import { directoryImport, inbox, read, register, type StoredItem, safetyNumberCmd, send, status } from '../src/messaging.js';
import { deviceEnrol, officeAdd, officeAssign, officeExport, orgInit, personAdd, revoke } from '../src/org.js';
import { fixedPassphrases } from '../src/passphrase.js';
import { relayServe } from '../src/relay-serve.js';

const FAST = { logN: 10, r: 8, p: 1 };
const folder = mkdtempSync(join(tmpdir(), 'valise-cli-commands-'));
let offset = 0;
const ctx = (name: string): CommandContext => ({
  home: join(folder, name),
  passphrases: fixedPassphrases(`passphrase of ${name}`, 'bundle passphrase'),
  kdf: FAST,
  now: () => Math.floor(Date.now() / 1000) + offset,
});
const admin = ctx('hq');
const paris = ctx('paris');
const nairobi = ctx('nairobi');
const body = (s: string) => new TextEncoder().encode(s);
const QUIET = { quietMs: 250 };

let relay: Awaited<ReturnType<typeof relayServe>>;
const ids = { registrar: '', paris: '', nairobi: '', office: '', parisDevice: '', nairobiDevice: '' };

async function rejects(p: Promise<unknown>): Promise<CliError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(CliError);
    return err as CliError;
  }
  throw new Error('expected a failure');
}

beforeAll(async () => {
  const org = await orgInit(admin);
  relay = await relayServe({ data: join(folder, 'relay'), orgRoot: org.rootFile, logLevel: 'silent', revocation: org.revocationFile });
  const registrar = await personAdd(admin, { name: 'Amina Diallo', title: 'Head of Registry', unit: 'Headquarters' });
  const p = await personAdd(admin, { name: 'Claire Dubois', title: 'Ambassador', unit: 'Embassy in Paris' });
  const n = await personAdd(admin, { name: 'Wanjiru Kamau', title: 'Ambassador', unit: 'Embassy in Nairobi' });
  ids.registrar = registrar.personId;
  ids.paris = p.personId;
  ids.nairobi = n.personId;
  const office = await officeAdd(admin, { title: 'Head of Mission', unit: 'Embassy in Paris' });
  ids.office = office.officeId;
  await officeAssign(admin, { office: office.officeId, person: p.personId });
  const d0 = await deviceEnrol(admin, { person: registrar.personId, label: 'registry' });
  const d1 = await deviceEnrol(admin, { person: p.personId, label: 'paris laptop' });
  const d2 = await deviceEnrol(admin, { person: n.personId, label: 'nairobi laptop', kem: 'x25519' });
  ids.parisDevice = d1.certId;
  ids.nairobiDevice = d2.certId;
  await register(admin, { bundle: d0.bundle, relay: relay.url });
  await register(paris, { bundle: d1.bundle, relay: relay.url });
  await register(nairobi, { bundle: d2.bundle, relay: relay.url.replace('http://', '') });
}, 60_000);

afterAll(async () => {
  await relay?.close();
  rmSync(folder, { recursive: true, force: true });
});

describe('valise commands against a relay', { timeout: 60_000 }, () => {
  it('sends to a person by name, an office by title and a device by id; each device gets one copy', async () => {
    const sent = await send(admin, {
      to: ['Wanjiru Kamau', 'Head of Mission, Embassy in Paris', ids.nairobiDevice],
      subject: 'Circular 1',
      classification: 'CONFIDENTIAL',
      body: body('First circular.\n'),
    });
    expect(sent.recipients.map((r) => r.kind)).toEqual(['person', 'office', 'device']);
    // X-Wing (Paris) and X25519 (Nairobi) devices: one envelope per KEM; Nairobi named twice gets one entry.
    expect(sent.envelopes).toHaveLength(2);
    expect(sent.devices).toBe(2);
    const p = await inbox(paris, QUIET);
    expect(p.fetched).toEqual({ new: 1, duplicates: 0, rejected: 0, held: 0 });
    const n = await inbox(nairobi, QUIET);
    expect(n.fetched?.new).toBe(1);
    const item = await read(paris, { id: '1' });
    expect(new TextDecoder().decode(item.body)).toBe('First circular.\n');
    expect(item.item.sender.name).toBe('Amina Diallo');
    expect(item.item.classification).toBe('CONFIDENTIAL');
    expect(item.item.distribution.map((d) => d.name)).toContain('Head of Mission, Embassy in Paris');
    // Seen exactly once, however often the inbox is fetched.
    const again = await inbox(paris, QUIET);
    expect(again.fetched?.new).toBe(0);
    expect(again.items).toHaveLength(1);
    expect(again.items[0]?.read).toBe(true);
  });

  it('a resent envelope (new relay message, same envelope and sender) is kept once', async () => {
    const home = await Home.open({ dir: paris.home, passphrases: paris.passphrases });
    const stored = home.readItem<StoredItem>(1);
    home.close();
    const hq = await Home.open({ dir: admin.home, passphrases: admin.passphrases });
    const dev = hq.state.device;
    hq.close();
    if (dev === undefined) throw new Error('no device');
    const client = await RelayClient.connect(relay.url, {
      personCert: fromHex(dev.personCert),
      deviceCert: fromHex(dev.deviceCert),
      signingSecretKey: fromHex(dev.signingSecretKey),
    });
    const slice = new Uint8Array(Buffer.from(stored.envelope, 'base64'));
    const r = await client.send(slice, [{ entryIndex: 0, mailbox: fromHex(ids.parisDevice) }]);
    expect(toHex(r.messageId)).not.toBe(stored.messageId);
    // A damaged copy: the relay cannot tell (it never reads past the prelude); the recipient can.
    const damaged = slice.slice();
    damaged[damaged.length - 10] = (damaged[damaged.length - 10] as number) ^ 1;
    await client.send(damaged, [{ entryIndex: 0, mailbox: fromHex(ids.parisDevice) }]);
    await client.close();
    const box = await inbox(paris, QUIET);
    expect(box.fetched).toEqual({ new: 0, duplicates: 1, rejected: 1, held: 0 });
    expect(box.items).toHaveLength(1);
    expect(box.rejected.map((x) => x.reason)).toEqual(['cannot-open']);
    // Both were acknowledged: nothing comes back.
    expect((await inbox(paris, QUIET)).fetched).toEqual({ new: 0, duplicates: 0, rejected: 0, held: 0 });
  });

  it('an item that cannot be checked yet (stale revocation list) stays on the relay until it can', async () => {
    await send(admin, { to: [ids.paris], subject: 'Later', body: body('checked later') });
    offset = 40 * 24 * 3600; // past the revocation list's nextUpdate
    try {
      const held = await inbox(paris, QUIET);
      expect(held.fetched).toEqual({ new: 0, duplicates: 0, rejected: 0, held: 1 });
      expect(held.warnings.join(' ')).toMatch(/stale-revocation-list/);
    } finally {
      offset = 0;
    }
    const box = await inbox(paris, QUIET);
    expect(box.fetched?.new).toBe(1);
    expect(box.items.at(-1)?.subject).toBe('Later');
  });

  it('writes as an office; the recipient sees the office', async () => {
    // Nairobi's bundle carried the Paris office; an office created later comes with the directory file.
    const consul = await officeAdd(admin, { title: 'Consul', unit: 'Embassy in Nairobi' });
    await officeAssign(admin, { office: consul.officeId, person: ids.nairobi });
    const exported = await officeExport(admin, { out: join(folder, 'directory.json') });
    expect(exported).toMatchObject({ offices: 2, holders: 2 });
    expect(await directoryImport(nairobi, { file: exported.file })).toEqual({ offices: 1, holders: 1 });
    expect(await directoryImport(nairobi, { file: exported.file })).toEqual({ offices: 0, holders: 0 });
    await send(paris, { to: ['Amina Diallo'], subject: 'Report from Paris', body: body('All well.'), asOffice: ids.office });
    const box = await inbox(admin, QUIET);
    expect(box.items.at(-1)?.office).toBe('Head of Mission, Embassy in Paris');
    const e = await rejects(send(nairobi, { to: ['Amina Diallo'], subject: 'x', body: body('x'), asOffice: ids.office }));
    expect(e.code).toBe('not-office-holder');
  });

  it('safety numbers agree on both sides', async () => {
    const a = await safetyNumberCmd(paris, { with: 'Amina Diallo' });
    const b = await safetyNumberCmd(admin, { with: ids.paris });
    expect(a.safetyNumber).toMatch(/^\d{60}$/);
    expect(a.safetyNumber).toBe(b.safetyNumber);
    expect(a.qrPayload).toBe(b.qrPayload);
  });

  it('unknown and ambiguous recipients give actionable errors', async () => {
    const e = await rejects(send(admin, { to: ['Nobody Here'], subject: 'x', body: body('x') }));
    expect(e.exitCode).toBe(ExitCode.NotFound);
    for (const unit of ['Lima', 'Quito']) {
      const p = await personAdd(admin, { name: 'Jean Martin', title: 'Counsellor', unit: `Embassy in ${unit}` });
      const d = await deviceEnrol(admin, { person: p.personId, label: 'x' });
      await register(ctx(unit), { bundle: d.bundle, relay: relay.url });
    }
    const ambiguous = await rejects(send(admin, { to: ['Jean Martin'], subject: 'x', body: body('x') }));
    expect(ambiguous).toMatchObject({ code: 'ambiguous-recipient', exitCode: ExitCode.Usage });
    expect(ambiguous.message).toMatch(/Embassy in Lima.*Embassy in Quito|Embassy in Quito.*Embassy in Lima/);
    // A unit with one person names that person.
    const byUnit = await send(admin, { to: ['Embassy in Quito'], subject: 'x', body: body('x') });
    expect(byUnit.recipients[0]?.name).toBe('Jean Martin');
  });

  it('registration refuses another bundle, and a wrong bundle passphrase', async () => {
    const d = await deviceEnrol(admin, { person: ids.paris, label: 'second laptop' });
    const other = await rejects(register(paris, { bundle: d.bundle, relay: relay.url }));
    expect(other).toMatchObject({ code: 'already-registered', exitCode: ExitCode.Conflict });
    const wrong = await rejects(
      register({ ...ctx('x'), passphrases: fixedPassphrases('home passphrase', 'not it') }, { bundle: d.bundle, relay: relay.url }),
    );
    expect(wrong).toMatchObject({ code: 'wrong-passphrase', exitCode: ExitCode.Passphrase });
    // A second device of the same person receives items addressed to the person.
    await register(ctx('paris2'), { bundle: d.bundle, relay: relay.url });
    const sent = await send(admin, { to: ['Claire Dubois'], subject: 'Both devices', body: body('x') });
    expect(sent.devices).toBe(2);
    expect((await inbox(ctx('paris2'), QUIET)).fetched?.new).toBe(1);
  });

  it('a registration that cannot reach the relay leaves no home behind', async () => {
    const d = await deviceEnrol(admin, { person: ids.nairobi, label: 'spare' });
    const fresh = ctx('never-registered');
    const e = await rejects(register(fresh, { bundle: d.bundle, relay: 'http://127.0.0.1:9' }));
    expect(e).toMatchObject({ code: 'relay-unreachable', exitCode: ExitCode.Relay });
    expect(existsSync(fresh.home)).toBe(false);
    // A folder that existed keeps everything but the state file this call created.
    mkdirSync(join(folder, 'existing'));
    writeFileSync(join(folder, 'existing', 'notes.txt'), 'mine');
    await rejects(register(ctx('existing'), { bundle: d.bundle, relay: 'http://127.0.0.1:9' }));
    expect(readdirSync(join(folder, 'existing'))).toEqual(['notes.txt']);
  });

  it('revocation: senders refuse the revoked device, and so does the relay', async () => {
    const r = await revoke(admin, { certs: [ids.nairobiDevice], relay: relay.url });
    expect(r).toMatchObject({ sequence: 2, published: true, total: 1 });
    const e = await rejects(send(admin, { to: [ids.nairobi], subject: 'x', body: body('x') }));
    expect(e).toMatchObject({ code: 'verify-revoked', exitCode: ExitCode.Verify });
    const refused = await rejects(inbox(nairobi, QUIET));
    expect(refused).toMatchObject({ code: 'relay-auth-revoked', exitCode: ExitCode.Relay });
    // Everyone else picks up list 2 from the relay on their next connection.
    await inbox(paris, QUIET);
    expect((await status(paris)).revocation?.sequence).toBe(2);
  });
});
