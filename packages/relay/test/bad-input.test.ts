/**
 * Bad input is harmless: random and malformed frames, oversized and text frames, bad routes, a
 * client over its rate, and a client that never reads (its mailbox fills up, it is cut off).
 * Everyone else keeps being served, and the database stays intact.
 */
import { join } from 'node:path';
import { RelayErrorCode, type RelayFrame, RelayFrameType, type RelayRoute, toHex } from '@valise/protocol';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { decodeRoutes } from '../src/sqlite-schema.js';
import { RelayTestClient } from './client.js';
import { type InProcessRelay, makeOrg, removeDir, routesFor, sealFor, startTestRelay } from './helpers.js';

const org = makeOrg();
const alice = org.enrol('Alice');
const bob = org.enrol('Bob');
const carol = org.enrol('Carol');
const lazy = org.enrol('Lazy');
const fuzzer = org.enrol('Fuzzer');

let relay: InProcessRelay;
beforeAll(async () => {
  relay = await startTestRelay(org, {
    limits: { maxFrameBytes: 256 * 1024, mailboxMaxMessages: 20, heartbeatIntervalMs: 250, maxBadFrames: 100_000 },
  });
});
afterAll(async () => {
  await relay.close();
  checkDatabase(relay.dataDir);
  removeDir(relay.dataDir);
});

/** SQLite's own integrity check, and the relay's invariants between messages, acks and seen ids. */
function checkDatabase(dir: string): void {
  const db = new Database(join(dir, 'relay.db'), { readonly: true });
  try {
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    // Every acked row names a delivery of a waiting message (route i of message row r has seq r + i).
    const ranges = (db.prepare('SELECT id, routes FROM messages').all() as { id: number; routes: Buffer }[]).map(
      (m) => [m.id, m.id + decodeRoutes(new Uint8Array(m.routes)).mailboxes.length] as const,
    );
    for (const seq of db.prepare('SELECT seq FROM acked').pluck().all() as number[]) {
      expect(ranges.some(([from, to]) => from <= seq && seq < to)).toBe(true);
    }
    // Every waiting message's id is remembered, so that a retry is never stored twice.
    const ids = new Set<string>();
    for (const r of db.prepare('SELECT ids FROM seen').pluck().all() as Buffer[]) {
      for (let o = 0; o < r.length; o += 16) ids.add(r.toString('hex', o, o + 16));
    }
    for (const id of db.prepare('SELECT message_id FROM messages').pluck().all() as Buffer[])
      expect(ids.has(id.toString('hex'))).toBe(true);
    const next = db.prepare("SELECT value FROM meta WHERE key = 'next_seq'").pluck().get() as number;
    expect(db.prepare('SELECT count(*) FROM messages WHERE id >= ?').pluck().get(next)).toBe(0);
  } finally {
    db.close();
  }
}

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Alice sends Bob one item and Bob gets and acknowledges it: the relay still serves others. */
async function othersStillServed(): Promise<void> {
  const a = await RelayTestClient.connect(relay.url, alice.creds);
  const b = await RelayTestClient.connect(relay.url, bob.creds);
  const r = await a.send(sealFor(alice, [bob], 'still here'), routesFor([bob]));
  expect(r.type).toBe(RelayFrameType.Stored);
  const [d] = await b.waitForDeliveries(1);
  if (d === undefined) throw new Error('no delivery');
  expect((await b.ack([d.messageId])).type).toBe(RelayFrameType.Ok);
  await Promise.all([a.close(), b.close()]);
}

describe('bad input', { timeout: 120_000 }, () => {
  it('answers random bytes with bad-frame errors and keeps the connection', async () => {
    const f = await RelayTestClient.connect(relay.url, fuzzer.creds);
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 400 }), async (bytes) => {
        f.sendRaw(bytes);
        sent++;
      }),
      { numRuns: 300 },
    );
    // A valid request after the garbage is still answered, after every error.
    expect((await f.request({ type: RelayFrameType.PrekeyCount })).type).toBe(RelayFrameType.PrekeyCountResult);
    // Nearly all random inputs are errors; the rare valid one (e.g. a well-formed Ack) gets its response.
    expect(f.errors.length).toBeGreaterThan(sent * 0.9);
    for (const e of f.errors) expect(e.code).toBe(RelayErrorCode.BadFrame);
    expect(f.undecodable).toEqual([]);
    await f.close();
    await othersStillServed();
  });

  it('answers every well-formed request with random contents with a response or a typed error', async () => {
    const f = await RelayTestClient.connect(relay.url, fuzzer.creds);
    const b16 = fc.uint8Array({ minLength: 16, maxLength: 16 });
    const request = fc.oneof(
      fc.record({
        type: fc.constant(RelayFrameType.Send),
        clientMessageId: b16,
        envelope: fc.uint8Array({ minLength: 5, maxLength: 300 }),
        routes: fc.array(fc.record({ entryIndex: fc.nat({ max: 4 }), mailbox: b16 }), { minLength: 1, maxLength: 3 }),
      }),
      fc.record({ type: fc.constant(RelayFrameType.Ack), messageIds: fc.array(b16, { minLength: 1, maxLength: 4 }) }),
      fc.record({ type: fc.constant(RelayFrameType.PrekeyFetch), mailbox: b16 }),
      fc.record({
        type: fc.constant(RelayFrameType.DirectoryPublish),
        personCert: fc.uint8Array({ minLength: 1, maxLength: 100 }),
        deviceCert: fc.uint8Array({ minLength: 1, maxLength: 100 }),
      }),
      fc.record({
        type: fc.constant(RelayFrameType.DirectoryLookup),
        query: fc.record({ text: fc.string({ minLength: 1, maxLength: 20 }) }),
      }),
      fc.record({ type: fc.constant(RelayFrameType.RevocationPublish), list: fc.uint8Array({ minLength: 1, maxLength: 100 }) }),
    );
    await fc.assert(
      fc.asyncProperty(request, async (req) => {
        const r = await f.request(req as Parameters<RelayTestClient['request']>[0]);
        if (r.type === RelayFrameType.Error) {
          expect([
            RelayErrorCode.BadEnvelope,
            RelayErrorCode.BadRoutes,
            RelayErrorCode.DirectoryInvalid,
            RelayErrorCode.RevocationInvalid,
          ]).toContain(r.code);
        }
      }),
      { numRuns: 300 },
    );
    await f.close();
    await othersStillServed();
  });

  it('refuses routes that do not cover the entries exactly, and envelopes that do not parse', async () => {
    const a = await RelayTestClient.connect(relay.url, alice.creds);
    const env = sealFor(alice, [bob, carol], 'routing');
    const cases: RelayRoute[][] = [
      [{ entryIndex: 0, mailbox: bob.mailbox }],
      [
        { entryIndex: 0, mailbox: bob.mailbox },
        { entryIndex: 0, mailbox: carol.mailbox },
      ],
      [
        { entryIndex: 0, mailbox: bob.mailbox },
        { entryIndex: 2, mailbox: carol.mailbox },
      ],
      [
        { entryIndex: 0, mailbox: bob.mailbox },
        { entryIndex: 1, mailbox: bob.mailbox },
      ],
      [...routesFor([bob, carol]), { entryIndex: 2, mailbox: alice.mailbox }],
    ];
    for (const routes of cases)
      expect(await a.send(env, routes)).toMatchObject({ type: RelayFrameType.Error, code: RelayErrorCode.BadRoutes });
    const truncated = env.slice(0, 100);
    expect(await a.send(truncated, routesFor([bob, carol]))).toMatchObject({ code: RelayErrorCode.BadEnvelope });
    const mangled = env.slice();
    mangled[6] = (mangled[6] as number) ^ 0xff;
    expect(await a.send(mangled, routesFor([bob, carol]))).toMatchObject({ code: RelayErrorCode.BadEnvelope });
    await a.close();
  });

  it('closes a connection that sends an oversized frame (1009) or a text frame (1003), and nobody else', async () => {
    const f = await RelayTestClient.connect(relay.url, fuzzer.creds);
    f.sendRaw(new Uint8Array(256 * 1024 + 1));
    expect((await f.closed).code).toBe(1009);
    const g = await RelayTestClient.connect(relay.url, fuzzer.creds);
    g.sendRaw('hello');
    expect((await g.closed).code).toBe(1003);
    await othersStillServed();
  });

  it('closes a connection after too many bad frames (1008)', async () => {
    const strict = await startTestRelay(org, { limits: { maxBadFrames: 3 } });
    try {
      const f = await RelayTestClient.connect(strict.url, fuzzer.creds);
      for (let i = 0; i < 5; i++) f.sendRaw(new Uint8Array([0xff, i]));
      expect((await f.closed).code).toBe(1008);
    } finally {
      await strict.close();
      removeDir(strict.dataDir);
    }
  });

  it('refuses a Send that would take a mailbox over its byte limit, storing nothing', async () => {
    const envelope = sealFor(alice, [carol], 'counted in bytes');
    const small = await startTestRelay(org, { limits: { mailboxMaxBytes: envelope.length * 2 + 10 } });
    try {
      const a = await RelayTestClient.connect(small.url, alice.creds);
      expect((await a.send(envelope, routesFor([carol]))).type).toBe(RelayFrameType.Stored);
      expect((await a.send(envelope, routesFor([carol]))).type).toBe(RelayFrameType.Stored);
      const third = await a.send(envelope, routesFor([carol]));
      expect(third).toMatchObject({ type: RelayFrameType.Error, code: RelayErrorCode.MailboxFull });
      expect((third as { message: string }).message).toContain('(bytes)');
      const c = await RelayTestClient.connect(small.url, carol.creds);
      await c.waitForDeliveries(2);
      await new Promise((r) => setTimeout(r, 100));
      expect(c.deliveries).toHaveLength(2);
      await Promise.all([a.close(), c.close()]);
    } finally {
      await small.close();
      checkDatabase(small.dataDir);
      removeDir(small.dataDir);
    }
  });

  it('rate-limits requests per device with typed errors, but never acks', async () => {
    const limited = await startTestRelay(org, { limits: { messagesPerSecond: 0.5, burst: 3 } });
    try {
      const a = await RelayTestClient.connect(limited.url, alice.creds);
      const results = await Promise.all(Array.from({ length: 6 }, () => a.request({ type: RelayFrameType.PrekeyCount })));
      expect(results.filter((r) => r.type === RelayFrameType.PrekeyCountResult)).toHaveLength(3);
      expect(results.filter((r) => r.type === RelayFrameType.Error && r.code === RelayErrorCode.RateLimited)).toHaveLength(3);
      // The bucket belongs to the device, not the connection.
      await a.close();
      const again = await RelayTestClient.connect(limited.url, alice.creds);
      expect(await again.request({ type: RelayFrameType.PrekeyCount })).toMatchObject({ code: RelayErrorCode.RateLimited });
      expect((await again.ack([new Uint8Array(16)])).type).toBe(RelayFrameType.Ok);
      const b = await RelayTestClient.connect(limited.url, bob.creds);
      expect((await b.request({ type: RelayFrameType.PrekeyCount })).type).toBe(RelayFrameType.PrekeyCountResult);
      await Promise.all([again.close(), b.close()]);
    } finally {
      await limited.close();
      removeDir(limited.dataDir);
    }
  });

  it('fills the mailbox of a client that never reads, cuts it off, and keeps serving everyone else', async () => {
    const l = await RelayTestClient.connect(relay.url, lazy.creds);
    // Stop reading: the relay's pushes and pings pile up unread.
    (l.ws as WebSocket & { _socket: { pause(): void } })._socket.pause();
    const a = await RelayTestClient.connect(relay.url, carol.creds);
    const outcomes: RelayFrame[] = [];
    for (let i = 0; i < 25; i++) outcomes.push(await a.send(sealFor(carol, [lazy], `to the lazy one ${i}`), routesFor([lazy])));
    expect(outcomes.filter((o) => o.type === RelayFrameType.Stored)).toHaveLength(20);
    const refused = outcomes.filter((o) => o.type === RelayFrameType.Error);
    expect(refused).toHaveLength(5);
    for (const r of refused) expect(r).toMatchObject({ code: RelayErrorCode.MailboxFull });
    expect(toHex(lazy.mailbox)).toBe(toHex(lazy.device.certId));
    // A multi-recipient Send with the full mailbox among its routes stores nothing at all.
    const both = await a.send(sealFor(carol, [bob, lazy], 'both'), routesFor([bob, lazy]));
    expect(both).toMatchObject({ code: RelayErrorCode.MailboxFull });
    // The heartbeat cuts the lazy client off (it never answers pings). Its socket, paused, cannot
    // see that: watch the relay's side.
    await until(() => relay.logs.some((line) => line.includes('terminating an unresponsive peer')));
    l.ws.terminate();
    await othersStillServed();
    // Reading again, it gets its 20 in order.
    const l2 = await RelayTestClient.connect(relay.url, lazy.creds);
    const got = await l2.waitForDeliveries(20);
    expect(got.map((d) => toHex(d.messageId))).toEqual(
      outcomes.filter((o) => o.type === RelayFrameType.Stored).map((o) => toHex((o as { messageId: Uint8Array }).messageId)),
    );
    await l2.ack(got.map((d) => d.messageId));
    // Room again.
    expect((await a.send(sealFor(carol, [lazy], 'room again'), routesFor([lazy]))).type).toBe(RelayFrameType.Stored);
    await Promise.all([a.close(), l2.close()]);
  });

  it('stops pushing to a slow reader and resumes from the store without loss or reordering', async () => {
    const small = await startTestRelay(org, { limits: { sendHighWaterBytes: 1, maxInFlight: 3, messagesPerSecond: 1000, burst: 1000 } });
    try {
      const a = await RelayTestClient.connect(small.url, alice.creds);
      const c = await RelayTestClient.connect(small.url, carol.creds);
      const ids: string[] = [];
      const sends = [];
      for (let i = 0; i < 30; i++) sends.push(a.send(sealFor(alice, [carol], `n${i}`), routesFor([carol])));
      for (const r of await Promise.all(sends)) ids.push(toHex((r as { messageId: Uint8Array }).messageId));
      // With a window of 3, only 3 arrive until they are acknowledged.
      await c.waitForDeliveries(3);
      await new Promise((r) => setTimeout(r, 100));
      expect(c.deliveries).toHaveLength(3);
      let acked = 0;
      while (acked < 30) {
        await c.waitForDeliveries(Math.min(30, acked + 1));
        const batch = c.deliveries.slice(acked);
        acked += batch.length;
        await c.ack(batch.map((d) => d.messageId));
      }
      expect(c.deliveries.map((d) => toHex(d.messageId))).toEqual(ids);
      await Promise.all([a.close(), c.close()]);
    } finally {
      await small.close();
      checkDatabase(small.dataDir);
      removeDir(small.dataDir);
    }
  });
});
