/**
 * A relay in a child process (`relay serve` through tsx): three devices exchange sealed items,
 * the relay restarts between send and receive, and nothing is lost. Then the crash test: the
 * relay is killed with SIGKILL while 1,000 items are in flight; after a restart every item whose
 * Stored the sender received reaches its recipient, exactly once at the application (by message
 * id), and retried Sends are not stored twice.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { type DeliverFrame, open, type RelayFrame, RelayFrameType, toHex } from '@valise/protocol';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { RelayTestClient } from './client.js';
import { type ChildRelay, makeOrg, removeDir, routesFor, sealFor, spawnRelay, type TestDevice, tempDir } from './helpers.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) removeDir(d);
});

const text = (b: Uint8Array) => new TextDecoder().decode(b);

function newDataDir(): string {
  const parent = tempDir();
  dirs.push(parent);
  return join(parent, 'data');
}

async function stop(relay: ChildRelay): Promise<void> {
  relay.child.kill('SIGTERM');
  const { code } = await relay.exited;
  expect(code).toBe(0);
}

describe('restarts', { timeout: 120_000 }, () => {
  it('loses nothing when the relay restarts between send and receive', async () => {
    const org = makeOrg();
    const hq = org.enrol('Head of Registry', 'Headquarters');
    const paris = org.enrol('Ambassador to Paris', 'Embassy in Paris');
    const nairobi = org.enrol('Ambassador to Nairobi', 'Embassy in Nairobi');
    const dataDir = newDataDir();

    let relay = await spawnRelay(dataDir, org);
    const a = await RelayTestClient.connect(relay.url, hq.creds);
    const circular = await a.send(sealFor(hq, [paris, nairobi], 'Circular 9: all missions'), routesFor([paris, nairobi]));
    const letter = await a.send(sealFor(hq, [paris], 'Letter to Paris only'), routesFor([paris]));
    const n = await RelayTestClient.connect(relay.url, nairobi.creds);
    const reply = await n.send(sealFor(nairobi, [hq], 'Receipt of circular 8'), routesFor([hq]));
    for (const r of [circular, letter, reply]) expect(r.type).toBe(RelayFrameType.Stored);
    await stop(relay);
    expect((await a.closed).code).toBe(1001);

    relay = await spawnRelay(dataDir, org);
    const p = await RelayTestClient.connect(relay.url, paris.creds);
    const n2 = await RelayTestClient.connect(relay.url, nairobi.creds);
    const h = await RelayTestClient.connect(relay.url, hq.creds);
    const openFor = (d: TestDevice, env: Uint8Array) =>
      text(open(env, { device: d.device, encryptionSecretKey: d.encryptionSecretKey }, org.trust).body);
    const pd = await p.waitForDeliveries(2);
    expect(pd.map((d) => openFor(paris, d.envelope))).toEqual(['Circular 9: all missions', 'Letter to Paris only']);
    const nd = await n2.waitForDeliveries(1);
    expect(nd.map((d) => openFor(nairobi, d.envelope))).toEqual(['Circular 9: all missions']);
    const hd = await h.waitForDeliveries(1);
    expect(hd.map((d) => openFor(hq, d.envelope))).toEqual(['Receipt of circular 8']);
    for (const [c, ds] of [
      [p, pd],
      [n2, nd],
      [h, hd],
    ] as const) {
      expect((await c.ack(ds.map((d) => d.messageId))).type).toBe(RelayFrameType.Ok);
    }
    await stop(relay);

    // Acknowledged means gone, including the shared records of the circular.
    const db = new Database(join(dataDir, 'relay.db'), { readonly: true });
    expect(db.prepare('SELECT (SELECT count(*) FROM messages) + (SELECT count(*) FROM acked)').pluck().get()).toBe(0);
    // Only the ids remain, until the dedupe window ends.
    expect(db.prepare('SELECT count(*) FROM seen').pluck().get()).toBeGreaterThan(0);
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();
  });

  it('delivers every acknowledged item exactly once after a kill -9 with 1,000 items in flight', async () => {
    const org = makeOrg();
    const senders = Array.from({ length: 4 }, (_, i) => org.enrol(`Sender ${i}`, 'Headquarters', { kem: 'x25519' }));
    const recipients = Array.from({ length: 4 }, (_, i) => org.enrol(`Recipient ${i}`, 'Embassy', { kem: 'x25519' }));
    const dataDir = newDataDir();
    const limits = ['--limit', 'messagesPerSecond=100000', '--limit', 'burst=100000'];
    const TOTAL = 1000;
    const PER_SENDER = TOTAL / senders.length;

    // Items: sender s, number k, to recipient (s + k) % 4, each with its own client message id.
    interface Item {
      sender: number;
      recipient: number;
      body: string;
      clientMessageId: Uint8Array;
      envelope: Uint8Array;
    }
    const items: Item[][] = senders.map((s, si) =>
      Array.from({ length: PER_SENDER }, (_, k) => {
        const recipient = (si + k) % recipients.length;
        const body = `item ${si}/${k}`;
        return {
          sender: si,
          recipient,
          body,
          clientMessageId: new Uint8Array(randomBytes(16)),
          envelope: sealFor(s, [recipients[recipient] as TestDevice], body),
        };
      }),
    );

    let relay = await spawnRelay(dataDir, org, limits);
    // What the application at each recipient has received, deduplicated by message id.
    const received = recipients.map(() => new Map<string, string>());
    const duplicates = { count: 0 };
    // Deliveries that arrived before the listener (the backlog is pushed as soon as a client connects) count too.
    const attach = (c: RelayTestClient, r: number) => {
      const handle = (d: DeliverFrame) => {
        const key = toHex(d.messageId);
        if (received[r]?.has(key)) duplicates.count++;
        const body = text(
          open(d.envelope, { device: recipients[r]!.device, encryptionSecretKey: recipients[r]!.encryptionSecretKey }, org.trust).body,
        );
        received[r]?.set(key, body);
        void c.ack([d.messageId]).catch(() => {});
      };
      for (const d of c.deliveries) handle(d);
      c.onDeliver(handle);
    };
    const receivers = await Promise.all(recipients.map((d) => RelayTestClient.connect(relay.url, d.creds)));
    receivers.forEach((c, r) => {
      attach(c, r);
    });

    // Senders keep a window of sends outstanding; the relay is killed mid-stream.
    const acked = new Map<string, { messageId: string; item: Item }>();
    let killed = false;
    const clients = await Promise.all(senders.map((d) => RelayTestClient.connect(relay.url, d.creds)));
    const run = clients.map(async (c, si) => {
      const mine = items[si] as Item[];
      let next = 0;
      const worker = async () => {
        while (next < mine.length && !killed) {
          const item = mine[next++] as Item;
          let r: RelayFrame;
          try {
            r = await c.send(item.envelope, routesFor([recipients[item.recipient] as TestDevice]), item.clientMessageId);
          } catch {
            return; // the socket died with the relay
          }
          if (r.type === RelayFrameType.Stored) acked.set(toHex(item.clientMessageId), { messageId: toHex(r.messageId), item });
        }
      };
      await Promise.all(Array.from({ length: 32 }, worker));
    });
    // Kill once a third of the items are acknowledged: the rest are queued, committing or unsent.
    while (acked.size < TOTAL / 3) await new Promise((r) => setTimeout(r, 2));
    relay.child.kill('SIGKILL');
    killed = true;
    expect((await relay.exited).signal).toBe('SIGKILL');
    await Promise.all(run);
    const ackedBeforeCrash = new Map(acked);
    expect(ackedBeforeCrash.size).toBeLessThan(TOTAL);

    // Restart. Receivers reconnect; senders retry everything not acknowledged, with the same ids.
    relay = await spawnRelay(dataDir, org, limits);
    const receivers2 = await Promise.all(recipients.map((d) => RelayTestClient.connect(relay.url, d.creds)));
    receivers2.forEach((c, r) => {
      attach(c, r);
    });
    const clients2 = await Promise.all(senders.map((d) => RelayTestClient.connect(relay.url, d.creds)));
    let retriedSeen = 0;
    await Promise.all(
      clients2.map(async (c, si) => {
        for (const item of items[si] as Item[]) {
          const key = toHex(item.clientMessageId);
          const before = ackedBeforeCrash.get(key);
          if (before !== undefined && si % 2 === 0) continue; // half the senders also retry what was acked: must be idempotent
          const r = await c.send(item.envelope, routesFor([recipients[item.recipient] as TestDevice]), item.clientMessageId);
          if (r.type !== RelayFrameType.Stored) throw new Error(`retry refused: ${JSON.stringify(r)}`);
          if (before !== undefined) {
            expect(toHex(r.messageId)).toBe(before.messageId);
            retriedSeen++;
          }
          acked.set(key, { messageId: toHex(r.messageId), item });
        }
      }),
    );
    expect(retriedSeen).toBeGreaterThan(0);
    expect(acked.size).toBe(TOTAL);

    // Every item reaches its recipient exactly once (by message id), with the right body.
    const end = Date.now() + 60_000;
    const total = () => received.reduce((n, m) => n + m.size, 0);
    while (total() < TOTAL && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    for (const { messageId, item } of acked.values()) expect(received[item.recipient]?.get(messageId)).toBe(item.body);
    expect(total()).toBe(TOTAL);
    // Everything acknowledged before the crash was among them.
    for (const { messageId, item } of ackedBeforeCrash.values()) expect(received[item.recipient]?.has(messageId)).toBe(true);

    await Promise.all([...receivers2, ...clients2].map((c) => c.close()));
    await stop(relay);
    const db = new Database(join(dataDir, 'relay.db'), { readonly: true });
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();
  });
});
