/**
 * The SQLite store against a model: random sequences of sends (with retries and full
 * mailboxes), acks (partial, repeated, unknown ids), expiry sweeps, reads and restarts. After
 * every step the store must answer as the model does, and a reopened store must hold exactly
 * what was committed before it closed.
 */
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeRoutes } from '../src/sqlite-schema.js';
import { SqliteStore } from '../src/sqlite-store.js';
import type { StoreMessageInput, StoreMessageResult } from '../src/store.js';
import { removeDir, tempDir } from './helpers.js';

const MAILBOXES = 4;
const TTL = 100;
const DEDUPE = 40;
const LIMITS = { maxMessages: 5, maxBytes: 600 };

const mailbox = (i: number) => new Uint8Array(16).fill(0xa0 + i);
const messageId = (i: number) => new Uint8Array(16).fill(i + 1);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

type Op =
  | { kind: 'send'; id: number; routes: number[]; size: number }
  | { kind: 'ack'; mailbox: number; ids: number[] }
  | { kind: 'tick'; seconds: number }
  | { kind: 'expire' }
  | { kind: 'restart' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('send' as const),
      id: fc.nat(11),
      routes: fc.uniqueArray(fc.nat(MAILBOXES - 1), { minLength: 1, maxLength: MAILBOXES }),
      size: fc.integer({ min: 1, max: 200 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('ack' as const),
      mailbox: fc.nat(MAILBOXES - 1),
      ids: fc.uniqueArray(fc.nat(11), { minLength: 1, maxLength: 4 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('tick' as const), seconds: fc.integer({ min: 1, max: 60 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'expire' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'restart' as const }) },
);

interface ModelMessage {
  id: number;
  records: Uint8Array;
  preludes: Map<number, Uint8Array>;
  storedAt: number;
  expiresAt: number;
  /** Mailboxes whose delivery waits. */
  waiting: Set<number>;
  order: number;
}

class Model {
  live = new Map<number, ModelMessage>();
  seen = new Map<number, number>();
  order = 0;

  usage(m: number): { count: number; bytes: number } {
    let count = 0;
    let bytes = 0;
    for (const msg of this.live.values()) {
      if (!msg.waiting.has(m)) continue;
      count++;
      bytes += (msg.preludes.get(m) as Uint8Array).length + msg.records.length;
    }
    return { count, bytes };
  }

  send(
    op: Extract<Op, { kind: 'send' }>,
    now: number,
    preludes: Map<number, Uint8Array>,
    records: Uint8Array,
  ): StoreMessageResult['status'] {
    if (this.live.has(op.id) || this.seen.has(op.id)) return 'duplicate';
    for (const r of op.routes) {
      const u = this.usage(r);
      if (u.count + 1 > LIMITS.maxMessages || u.bytes + (preludes.get(r) as Uint8Array).length + records.length > LIMITS.maxBytes)
        return 'mailbox-full';
    }
    this.live.set(op.id, {
      id: op.id,
      records,
      preludes,
      storedAt: now,
      expiresAt: now + TTL,
      waiting: new Set(op.routes),
      order: this.order++,
    });
    this.seen.set(op.id, now + DEDUPE);
    return 'stored';
  }

  ack(m: number, ids: number[]): number {
    let n = 0;
    for (const id of ids) {
      const msg = this.live.get(id);
      if (msg === undefined || !msg.waiting.delete(m)) continue;
      n++;
      if (msg.waiting.size === 0) this.live.delete(id);
    }
    return n;
  }

  expire(now: number): { deliveries: number; messages: number } {
    let deliveries = 0;
    let messages = 0;
    for (const [id, msg] of this.live) {
      if (msg.expiresAt > now) continue;
      deliveries += msg.waiting.size;
      messages++;
      this.live.delete(id);
    }
    for (const [id, until] of this.seen) if (until <= now) this.seen.delete(id);
    return { deliveries, messages };
  }

  /** What mailbox m should read: its waiting, unexpired messages in store order. */
  read(m: number, now: number): { id: number; prelude: string; records: string }[] {
    return [...this.live.values()]
      .filter((msg) => msg.waiting.has(m) && msg.expiresAt > now)
      .sort((a, b) => a.order - b.order)
      .map((msg) => ({ id: msg.id, prelude: hex(msg.preludes.get(m) as Uint8Array), records: hex(msg.records) }));
  }
}

/** The closed store's file: intact, rows for exactly the waiting messages, no stray acked row. */
function checkDatabase(dir: string, model: Model): void {
  const db = new Database(SqliteStore.path(dir), { readonly: true });
  try {
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    const rows = db.prepare('SELECT id, message_id, routes FROM messages').all() as { id: number; message_id: Buffer; routes: Buffer }[];
    expect(rows.map((r) => (r.message_id[0] as number) - 1).sort((a, b) => a - b)).toEqual([...model.live.keys()].sort((a, b) => a - b));
    for (const seq of db.prepare('SELECT seq FROM acked').pluck().all() as number[]) {
      expect(rows.some((r) => r.id <= seq && seq < r.id + decodeRoutes(new Uint8Array(r.routes)).mailboxes.length)).toBe(true);
    }
  } finally {
    db.close();
  }
}

async function readAll(store: SqliteStore, m: number, now: number) {
  const rows = await store.readMailbox(mailbox(m), 0, 1000, now);
  // Seqs increase within a mailbox, and paging from any of them continues where it should.
  for (let i = 1; i < rows.length; i++) expect((rows[i] as { seq: number }).seq).toBeGreaterThan((rows[i - 1] as { seq: number }).seq);
  if (rows.length > 1) {
    const rest = await store.readMailbox(mailbox(m), (rows[0] as { seq: number }).seq, 1000, now);
    expect(rest.map((r) => r.seq)).toEqual(rows.slice(1).map((r) => r.seq));
  }
  return rows.map((r) => ({ id: (r.messageId[0] as number) - 1, prelude: hex(r.prelude), records: hex(r.records) }));
}

/**
 * What a Send stores: message `id` to each listed mailbox with its prelude, stored at `at` with
 * the test's TTL and dedupe window.
 */
function input(
  id: number,
  routes: [mailbox: number, prelude: Uint8Array][],
  records: Uint8Array,
  at: number,
  limits = LIMITS,
): StoreMessageInput {
  return {
    messageId: messageId(id),
    records,
    deliveries: routes.map(([m, prelude]) => ({ mailbox: mailbox(m), prelude })),
    storedAt: at,
    expiresAt: at + TTL,
    dedupeUntil: at + DEDUPE,
    limits,
  };
}

describe('SQLite store', () => {
  it('answers as a model does across sends, acks, expiry and restarts', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 1 << 30 }), async (ops, seed) => {
        const dir = tempDir('valise-store-');
        let store = await SqliteStore.open(dir);
        const model = new Model();
        let now = 1_000_000;
        try {
          for (const [step, op] of ops.entries()) {
            if (op.kind === 'send') {
              // Bytes derived from the id and step, so that a retry carries different bytes than the original.
              const byte = (seed + op.id * 7 + step) & 0xff;
              const records = new Uint8Array(op.size).fill(byte);
              const preludes = new Map(op.routes.map((r) => [r, new Uint8Array(4 + r * 3).fill(byte ^ (r + 1))]));
              const expected = model.send(op, now, preludes, records);
              const got = store.storeMessage(
                input(
                  op.id,
                  op.routes.map((r) => [r, preludes.get(r) as Uint8Array]),
                  records,
                  now,
                ),
              );
              const result = got instanceof Promise ? await got : got;
              expect(result.status).toBe(expected);
              if (result.status !== 'mailbox-full') await result.durable;
            } else if (op.kind === 'ack') {
              expect(await store.ack(mailbox(op.mailbox), op.ids.map(messageId), now)).toBe(model.ack(op.mailbox, op.ids));
            } else if (op.kind === 'tick') now += op.seconds;
            else if (op.kind === 'expire') expect(await store.expire(now)).toEqual(model.expire(now));
            else {
              await store.close();
              checkDatabase(dir, model);
              store = await SqliteStore.open(dir);
            }
            for (let m = 0; m < MAILBOXES; m++) expect(await readAll(store, m, now)).toEqual(model.read(m, now));
            const stats = await store.stats();
            expect(stats.messages).toBe(model.live.size);
          }
          await store.close();
          checkDatabase(dir, model);
        } finally {
          await store.close();
          removeDir(dir);
        }
      }),
      { numRuns: 30, seed: 20261127 },
    );
  }, 120_000);

  it('answers a retry of a waiting message as a duplicate even after its dedupe window, and after a restart', async () => {
    const dir = tempDir('valise-store-');
    let store = await SqliteStore.open(dir);
    const send = (at: number) => store.storeMessage(input(1, [[0, new Uint8Array(4)]], new Uint8Array(10), at)) as StoreMessageResult;
    try {
      const first = send(1000);
      expect(first.status).toBe('stored');
      if (first.status === 'stored') await first.durable;
      // The dedupe window ends; the message still waits.
      await store.expire(1000 + DEDUPE + 1);
      expect(send(1000 + DEDUPE + 2).status).toBe('duplicate');
      await store.close();
      store = await SqliteStore.open(dir);
      expect(send(1000 + DEDUPE + 3).status).toBe('duplicate');
      // Once it expires, its id is forgotten with it.
      expect(await store.expire(1000 + TTL)).toEqual({ deliveries: 1, messages: 1 });
      expect(send(1000 + TTL + 1).status).toBe('stored');
    } finally {
      await store.close();
      removeDir(dir);
    }
  });

  it('acknowledges a circular mailbox by mailbox, across a restart, and leaves no row behind', async () => {
    const dir = tempDir('valise-store-');
    let store = await SqliteStore.open(dir);
    const model = new Model();
    try {
      const id = 3;
      const records = new Uint8Array(50).fill(1);
      const preludes = new Map([0, 1, 2, 3].map((m) => [m, new Uint8Array(8).fill(m)]));
      expect(model.send({ kind: 'send', id, routes: [0, 1, 2, 3], size: 50 }, 1, preludes, records)).toBe('stored');
      const r = store.storeMessage(
        input(
          id,
          [0, 1, 2, 3].map((m) => [m, preludes.get(m) as Uint8Array]),
          records,
          1,
        ),
      ) as StoreMessageResult;
      if (r.status !== 'stored') throw new Error(r.status);
      await r.durable;
      for (const m of [2, 0]) expect(await store.ack(mailbox(m), [messageId(id)], 2)).toBe(model.ack(m, [id]));
      await store.close();
      checkDatabase(dir, model);
      store = await SqliteStore.open(dir);
      expect(await readAll(store, 0, 2)).toEqual([]);
      expect(await readAll(store, 1, 2)).toEqual(model.read(1, 2));
      for (const m of [3, 1]) expect(await store.ack(mailbox(m), [messageId(id)], 2)).toBe(model.ack(m, [id]));
      await store.close();
      checkDatabase(dir, model);
      const db = new Database(SqliteStore.path(dir), { readonly: true });
      expect(db.prepare('SELECT (SELECT count(*) FROM messages) + (SELECT count(*) FROM acked)').pluck().get()).toBe(0);
      db.close();
    } finally {
      await store.close();
      removeDir(dir);
    }
  });

  it('fails every pending and later write once its writer is gone, and keeps what was committed', async () => {
    const dir = tempDir('valise-store-');
    const store = await SqliteStore.open(dir);
    const one = (i: number) => input(i, [[0, new Uint8Array(4)]], new Uint8Array(10), 1);
    try {
      const first = store.storeMessage(one(1)) as StoreMessageResult;
      if (first.status !== 'stored') throw new Error(first.status);
      await first.durable;
      // The writer thread is stopped (as an I/O failure that takes it down would), then a write
      // is queued before the store has heard of it: the write can never commit.
      const dying = (store as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
      const second = store.storeMessage(one(2)) as StoreMessageResult;
      if (second.status !== 'stored') throw new Error(second.status);
      await dying;
      await expect(second.durable).rejects.toThrow(/relay store/);
      expect(() => store.storeMessage(one(3))).toThrow(/relay store/);
      await expect(store.flush()).rejects.toThrow(/relay store/);
      await expect(store.ack(mailbox(0), [messageId(1)], 2)).rejects.toThrow(/relay store/);
    } finally {
      await store.close().catch(() => {});
    }
    // A new store on the same folder holds what was committed, and nothing else.
    const again = await SqliteStore.open(dir);
    try {
      expect((await again.readMailbox(mailbox(0), 0, 10, 2)).map((d) => d.messageId[0])).toEqual([2]);
    } finally {
      await again.close();
      removeDir(dir);
    }
  });

  it('keeps at most maxRememberedIds ids, forgetting the oldest acknowledged ones first, never a waiting one', async () => {
    const dir = tempDir('valise-store-');
    const store = await SqliteStore.open(dir, { maxRememberedIds: 3 });
    const send = (i: number) =>
      store.storeMessage(
        input(i, [[i % 2, new Uint8Array(4)]], new Uint8Array(10), 1, { maxMessages: 100, maxBytes: 1 << 20 }),
      ) as StoreMessageResult;
    try {
      // Five waiting messages: none of their ids may go, whatever the cap.
      for (let i = 0; i < 5; i++) expect(send(i).status).toBe('stored');
      for (let i = 0; i < 5; i++) expect(send(i).status).toBe('duplicate');
      expect((await store.stats()).idsForgottenEarly).toBe(0);
      // Once acknowledged, the oldest go first when new ids arrive.
      await store.ack(mailbox(0), [0, 2, 4].map(messageId), 2);
      await store.ack(mailbox(1), [1, 3].map(messageId), 2);
      expect(send(10).status).toBe('stored');
      const s = await store.stats();
      expect(s.rememberedIds).toBe(3);
      expect(s.idsForgottenEarly).toBe(3);
      expect(send(0).status).toBe('stored'); // forgotten early: stored again
      expect(send(4).status).toBe('duplicate');
      expect(send(10).status).toBe('duplicate');
    } finally {
      await store.close();
      removeDir(dir);
    }
  });

  it('serves envelope bytes of committed messages it no longer caches from the database', async () => {
    const dir = tempDir('valise-store-');
    // A cache too small for any body: every read goes to the database.
    const store = await SqliteStore.open(dir, { cacheBytes: 1 });
    try {
      const records = new Uint8Array(300).fill(7);
      for (let i = 0; i < 3; i++) {
        const r = store.storeMessage(
          input(
            i,
            [0, 1].map((m) => [m, new Uint8Array(10).fill(i + m)]),
            records,
            1,
            { maxMessages: 10, maxBytes: 1 << 20 },
          ),
        ) as StoreMessageResult;
        if (r.status !== 'stored') throw new Error(r.status);
        await r.durable;
      }
      const got = await store.readMailbox(mailbox(1), 0, 10, 2);
      expect(got.map((d) => [d.messageId[0], d.prelude[0], d.records.length])).toEqual([
        [1, 1, 300],
        [2, 2, 300],
        [3, 3, 300],
      ]);
    } finally {
      await store.close();
      removeDir(dir);
    }
  });
});
