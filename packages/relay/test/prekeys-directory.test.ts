/**
 * Prekeys (each one-time prekey handed out at most once, even to concurrent fetchers; PrekeysLow;
 * limits), the key directory (verified chains only; lookups), and backups that never bring a
 * one-time prekey back.
 */
import { join } from 'node:path';
import { decodeDeviceCert, decodePersonCert, RelayErrorCode, type RelayFrame, RelayFrameType, toHex } from '@valise/protocol';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupRelay, restoreRelay } from '../src/index.js';
import { RelayTestClient } from './client.js';
import { type InProcessRelay, makeOrg, removeDir, routesFor, sealFor, startTestRelay, tempDir } from './helpers.js';

const org = makeOrg();
const alice = org.enrol('Alice Martin', 'Embassy in Paris');
const bob = org.enrol('Bob Okafor', 'Embassy in Nairobi');
const carol = org.enrol('Carol Tan', 'Embassy in Jakarta');
const prekeyBytes = (id: number) => new Uint8Array(200).fill(id & 0xff);

let relay: InProcessRelay;
const dirs: string[] = [];
beforeAll(async () => {
  relay = await startTestRelay(org, { limits: { maxPrekeysPerMailbox: 60, prekeysLowThreshold: 10 } });
  dirs.push(relay.dataDir);
});
afterAll(async () => {
  await relay.close();
  for (const d of dirs) removeDir(d);
});

describe('prekeys', { timeout: 60_000 }, () => {
  it('hands out each one-time prekey at most once under concurrent fetches, and warns the owner when low', async () => {
    const a = await RelayTestClient.connect(relay.url, alice.creds);
    const up = await a.request({
      type: RelayFrameType.PrekeyUpload,
      prekeys: Array.from({ length: 50 }, (_, i) => ({ id: i + 1, bytes: prekeyBytes(i + 1) })),
      signedPrekey: { id: 900, bytes: new Uint8Array(100).fill(9) },
    });
    expect(up.type).toBe(RelayFrameType.Ok);
    expect(await a.request({ type: RelayFrameType.PrekeyCount })).toMatchObject({ count: 50, hasSigned: true });
    const b = await RelayTestClient.connect(relay.url, bob.creds);
    const c = await RelayTestClient.connect(relay.url, carol.creds);
    const fetches: Promise<RelayFrame>[] = [];
    for (let i = 0; i < 30; i++) {
      fetches.push(b.request({ type: RelayFrameType.PrekeyFetch, mailbox: alice.mailbox }));
      fetches.push(c.request({ type: RelayFrameType.PrekeyFetch, mailbox: alice.mailbox }));
    }
    const results = await Promise.all(fetches);
    const ids: number[] = [];
    for (const r of results) {
      if (r.type !== RelayFrameType.Prekeys) throw new Error(`unexpected ${JSON.stringify(r)}`);
      expect(r.signed?.id).toBe(900);
      if (r.oneTime !== undefined) {
        expect(toHex(r.oneTime.bytes)).toBe(toHex(prekeyBytes(r.oneTime.id)));
        ids.push(r.oneTime.id);
      }
    }
    expect(ids).toHaveLength(50);
    expect(new Set(ids).size).toBe(50);
    expect(await a.request({ type: RelayFrameType.PrekeyCount })).toMatchObject({ count: 0, hasSigned: true });
    expect(a.prekeysLow.length).toBeGreaterThan(0);
    expect(a.prekeysLow.at(-1)?.remaining).toBe(0);
    // Unknown mailbox: nothing to hand out.
    const none = await b.request({ type: RelayFrameType.PrekeyFetch, mailbox: new Uint8Array(16) });
    expect(none).toEqual({
      type: RelayFrameType.Prekeys,
      requestId: (none as { requestId: number }).requestId,
      mailbox: new Uint8Array(16),
    });
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  it('refuses uploads above the per-mailbox limit, and reminds a device with few prekeys on connect', async () => {
    const b = await RelayTestClient.connect(relay.url, bob.creds);
    const ok = await b.request({
      type: RelayFrameType.PrekeyUpload,
      prekeys: Array.from({ length: 55 }, (_, i) => ({ id: i, bytes: prekeyBytes(i) })),
      signedPrekey: { id: 1, bytes: new Uint8Array(10) },
    });
    expect(ok.type).toBe(RelayFrameType.Ok);
    const over = await b.request({
      type: RelayFrameType.PrekeyUpload,
      prekeys: Array.from({ length: 6 }, (_, i) => ({ id: 100 + i, bytes: prekeyBytes(i) })),
    });
    expect(over).toMatchObject({ type: RelayFrameType.Error, code: RelayErrorCode.PrekeyLimit });
    // Replacing existing ids does not count twice.
    const same = await b.request({ type: RelayFrameType.PrekeyUpload, prekeys: [{ id: 3, bytes: prekeyBytes(3) }] });
    expect(same.type).toBe(RelayFrameType.Ok);
    await b.close();
    const a = await RelayTestClient.connect(relay.url, alice.creds);
    await new Promise((r) => setTimeout(r, 200));
    expect(a.prekeysLow).toEqual([{ type: RelayFrameType.PrekeysLow, remaining: 0 }]);
    await a.close();
  });

  it('keeps one-time prekeys out of backups, and wipes them on restore', async () => {
    const c = await RelayTestClient.connect(relay.url, carol.creds);
    await c.request({
      type: RelayFrameType.PrekeyUpload,
      prekeys: Array.from({ length: 20 }, (_, i) => ({ id: i, bytes: prekeyBytes(i) })),
      signedPrekey: { id: 7, bytes: new Uint8Array(10).fill(7) },
    });
    const a = await RelayTestClient.connect(relay.url, alice.creds);
    const stored = await a.send(sealFor(alice, [carol], 'kept in the backup'), routesFor([carol]));
    expect(stored.type).toBe(RelayFrameType.Stored);
    await Promise.all([a.close(), c.close()]);

    // A backup taken while the relay runs.
    const out = join(tempDir(), 'relay-backup.db');
    dirs.push(join(out, '..'));
    const r = await backupRelay(relay.dataDir, out);
    expect(r.prekeysRemoved).toBeGreaterThanOrEqual(20);
    const copy = new Database(out, { readonly: true });
    expect(copy.prepare('SELECT count(*) FROM prekeys').pluck().get()).toBe(0);
    expect(copy.prepare('SELECT count(*) FROM signed_prekeys').pluck().get()).toBeGreaterThan(0);
    copy.close();

    // Restored, a relay still delivers the message and hands out no one-time prekey.
    const restoredDir = tempDir();
    dirs.push(restoredDir);
    restoreRelay(out, restoredDir);
    const restored = await startTestRelay(org, { dataDir: restoredDir });
    try {
      const c2 = await RelayTestClient.connect(restored.url, carol.creds);
      const [d] = await c2.waitForDeliveries(1);
      expect(d).toBeDefined();
      const b = await RelayTestClient.connect(restored.url, bob.creds);
      const p = await b.request({ type: RelayFrameType.PrekeyFetch, mailbox: carol.mailbox });
      expect(p).toMatchObject({ type: RelayFrameType.Prekeys, signed: { id: 7 } });
      expect((p as { oneTime?: unknown }).oneTime).toBeUndefined();
      await Promise.all([b.close(), c2.close()]);
    } finally {
      await restored.close();
    }

    // A raw copy (taken by other means, prekeys included) is wiped by restore.
    const rawDir = tempDir();
    dirs.push(rawDir);
    const raw = join(rawDir, 'raw.db');
    const src = new Database(join(relay.dataDir, 'relay.db'), { readonly: true });
    await src.backup(raw);
    src.close();
    const check = new Database(raw, { readonly: true });
    expect(check.prepare('SELECT count(*) FROM prekeys').pluck().get()).toBeGreaterThan(0);
    check.close();
    const target = join(rawDir, 'data');
    expect(restoreRelay(raw, target).prekeysRemoved).toBeGreaterThan(0);
    expect(() => restoreRelay(raw, target)).toThrow(/already/);
  });
});

describe('directory', { timeout: 60_000 }, () => {
  it('stores only chains that verify, and finds them by person, device and text', async () => {
    const a = await RelayTestClient.connect(relay.url, alice.creds);
    for (const d of [alice, bob, carol]) {
      const r = await a.request({ type: RelayFrameType.DirectoryPublish, personCert: d.person.bytes, deviceCert: d.device.bytes });
      expect(r.type).toBe(RelayFrameType.Ok);
    }
    const foreign = makeOrg().enrol('Spy', 'Embassy in Paris');
    const bad = await a.request({
      type: RelayFrameType.DirectoryPublish,
      personCert: foreign.person.bytes,
      deviceCert: foreign.device.bytes,
    });
    expect(bad).toMatchObject({ type: RelayFrameType.Error, code: RelayErrorCode.DirectoryInvalid });
    const mixed = await a.request({ type: RelayFrameType.DirectoryPublish, personCert: alice.person.bytes, deviceCert: bob.device.bytes });
    expect(mixed).toMatchObject({ type: RelayFrameType.Error, code: RelayErrorCode.DirectoryInvalid });

    const names = async (query: Parameters<typeof a.request>[0] & { type: typeof RelayFrameType.DirectoryLookup }) => {
      const r = await a.request(query);
      if (r.type !== RelayFrameType.DirectoryResult) throw new Error(JSON.stringify(r));
      return r.entries.map((e) => {
        expect(toHex(decodeDeviceCert(e.deviceCert).personId)).toBe(toHex(decodePersonCert(e.personCert).personId));
        return decodePersonCert(e.personCert).name;
      });
    };
    expect(await names({ type: RelayFrameType.DirectoryLookup, query: { personId: bob.person.personId } })).toEqual(['Bob Okafor']);
    expect(await names({ type: RelayFrameType.DirectoryLookup, query: { deviceCertId: carol.device.certId } })).toEqual(['Carol Tan']);
    expect(await names({ type: RelayFrameType.DirectoryLookup, query: { text: 'EMBASSY IN' } })).toHaveLength(3);
    expect(await names({ type: RelayFrameType.DirectoryLookup, query: { text: 'nairobi' } })).toEqual(['Bob Okafor']);
    expect(await names({ type: RelayFrameType.DirectoryLookup, query: { text: '%' } })).toEqual([]);
    await a.close();
  });
});
