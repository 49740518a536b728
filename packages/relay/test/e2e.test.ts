/**
 * End to end: devices enrol, authenticate, exchange sealed envelopes through a real relay on
 * 127.0.0.1, open them, acknowledge; backlog replay in order; a circular is one frame and one blob.
 */
import { open, RelayFrameType, relayMessageId, toHex } from '@valise/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RelayTestClient } from './client.js';
import { type InProcessRelay, makeOrg, now, removeDir, routesFor, sealFor, startTestRelay } from './helpers.js';

const org = makeOrg();
const hq = org.enrol('Head of Registry', 'Headquarters');
const paris = org.enrol('Ambassador to Paris', 'Embassy in Paris');
const nairobi = org.enrol('Ambassador to Nairobi', 'Embassy in Nairobi');

let relay: InProcessRelay;
beforeAll(async () => {
  relay = await startTestRelay(org);
});
afterAll(async () => {
  await relay.close();
  removeDir(relay.dataDir);
});

const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe('relay end to end', { timeout: 60_000 }, () => {
  it('delivers a circular sent as one frame to each recipient, who opens it', async () => {
    const a = await RelayTestClient.connect(relay.url, hq.creds);
    const b = await RelayTestClient.connect(relay.url, paris.creds);
    const c = await RelayTestClient.connect(relay.url, nairobi.creds);
    const envelope = sealFor(hq, [paris, nairobi], 'Circular 1: review the fee schedule');
    const stored = await a.send(envelope, routesFor([paris, nairobi]));
    expect(stored.type).toBe(RelayFrameType.Stored);
    const [db] = await b.waitForDeliveries(1);
    const [dc] = await c.waitForDeliveries(1);
    if (stored.type !== RelayFrameType.Stored || !db || !dc) throw new Error('unreachable');
    expect(toHex(db.messageId)).toBe(toHex(stored.messageId));
    expect(toHex(dc.messageId)).toBe(toHex(stored.messageId));
    expect(Math.abs(db.storedAt - now())).toBeLessThan(5);
    const ob = open(db.envelope, { device: paris.device, encryptionSecretKey: paris.encryptionSecretKey }, org.trust);
    const oc = open(dc.envelope, { device: nairobi.device, encryptionSecretKey: nairobi.encryptionSecretKey }, org.trust);
    expect(text(ob.body)).toBe('Circular 1: review the fee schedule');
    expect(text(oc.body)).toBe('Circular 1: review the fee schedule');
    expect(ob.sender.person.name).toBe('Head of Registry');
    // Each recipient's slice holds only its own entry.
    expect(db.envelope.length).toBeLessThan(envelope.length);
    expect((await b.ack([db.messageId])).type).toBe(RelayFrameType.Ok);
    expect((await c.ack([dc.messageId])).type).toBe(RelayFrameType.Ok);
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  it('replays the backlog in order on connect and deletes only acknowledged deliveries', async () => {
    const a = await RelayTestClient.connect(relay.url, hq.creds);
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await a.send(sealFor(hq, [paris], `item ${i}`), routesFor([paris]));
      if (r.type !== RelayFrameType.Stored) throw new Error(`not stored: ${JSON.stringify(r)}`);
      ids.push(toHex(r.messageId));
    }
    let b = await RelayTestClient.connect(relay.url, paris.creds);
    const first = await b.waitForDeliveries(20);
    expect(first.map((d) => toHex(d.messageId))).toEqual(ids);
    const bodies = first.map((d) =>
      text(open(d.envelope, { device: paris.device, encryptionSecretKey: paris.encryptionSecretKey }, org.trust).body),
    );
    expect(bodies).toEqual(ids.map((_, i) => `item ${i}`));
    // Acknowledge the first half only, reconnect: the second half comes again, in order.
    await b.ack(first.slice(0, 10).map((d) => d.messageId));
    await b.close();
    b = await RelayTestClient.connect(relay.url, paris.creds);
    const again = await b.waitForDeliveries(10);
    await new Promise((r) => setTimeout(r, 100));
    expect(b.deliveries.map((d) => toHex(d.messageId))).toEqual(ids.slice(10));
    await b.ack(again.map((d) => d.messageId));
    await b.close();
    b = await RelayTestClient.connect(relay.url, paris.creds);
    await new Promise((r) => setTimeout(r, 200));
    expect(b.deliveries).toHaveLength(0);
    // An empty mailbox: BacklogEnd at once, before any delivery.
    expect(b.backlogEndAfter).toEqual([0]);
    await Promise.all([a.close(), b.close()]);
  });

  it('says when the backlog is pushed: after every waiting delivery, once, and only when Acks open the window', async () => {
    const relay = await startTestRelay(org, { limits: { maxInFlight: 8 } });
    try {
      const a = await RelayTestClient.connect(relay.url, hq.creds);
      for (let i = 0; i < 20; i++)
        expect((await a.send(sealFor(hq, [paris], `item ${i}`), routesFor([paris]))).type).toBe(RelayFrameType.Stored);
      const b = await RelayTestClient.connect(relay.url, paris.creds);
      // The window holds 8: no BacklogEnd while 12 still wait behind unacknowledged ones.
      await b.waitForDeliveries(8);
      await new Promise((r) => setTimeout(r, 150));
      expect(b.backlogEndAfter).toEqual([]);
      let acked = 0;
      while (b.backlogEndAfter.length === 0) {
        const batch = b.deliveries.slice(acked);
        acked += batch.length;
        if (batch.length > 0) await b.ack(batch.map((d) => d.messageId));
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(b.backlogEndAfter).toEqual([20]);
      // A new item after it is pushed live; no second BacklogEnd.
      expect((await a.send(sealFor(hq, [paris], 'late'), routesFor([paris]))).type).toBe(RelayFrameType.Stored);
      await b.waitForDeliveries(21);
      await new Promise((r) => setTimeout(r, 100));
      expect(b.backlogEndAfter).toEqual([20]);
      await Promise.all([a.close(), b.close()]);
    } finally {
      await relay.close();
      removeDir(relay.dataDir);
    }
  });

  it('answers a retried Send with the same message id and stores it once', async () => {
    const a = await RelayTestClient.connect(relay.url, hq.creds);
    const b = await RelayTestClient.connect(relay.url, nairobi.creds);
    const envelope = sealFor(hq, [nairobi], 'retried');
    const cmid = new Uint8Array(16).fill(7);
    const r1 = await a.send(envelope, routesFor([nairobi]), cmid);
    const r2 = await a.send(envelope, routesFor([nairobi]), cmid);
    if (r1.type !== RelayFrameType.Stored || r2.type !== RelayFrameType.Stored) throw new Error('not stored');
    expect(toHex(r2.messageId)).toBe(toHex(r1.messageId));
    await b.waitForDeliveries(1);
    await new Promise((r) => setTimeout(r, 100));
    expect(b.deliveries).toHaveLength(1);
    expect(toHex(r1.messageId)).toBe(toHex(relayMessageId(hq.mailbox, cmid)));
    await b.ack([r1.messageId]);
    // Even after the recipient acknowledged it, a late retry is answered and not delivered again.
    const r3 = await a.send(envelope, routesFor([nairobi]), cmid);
    expect(r3.type === RelayFrameType.Stored && toHex(r3.messageId)).toBe(toHex(r1.messageId));
    await new Promise((r) => setTimeout(r, 100));
    expect(b.deliveries).toHaveLength(1);
    await Promise.all([a.close(), b.close()]);
  });
});
