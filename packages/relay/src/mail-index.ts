/**
 * The SQLite store's in-memory index of what waits in the relay (spec/relay.md, "SQLite store"):
 * every unacknowledged delivery by mailbox, every message with a delivery left, every message id
 * still remembered for deduplication, and each mailbox's usage.
 *
 * The index makes every decision of the store (duplicate, mailbox full, which deliveries an Ack
 * removes, what has expired) without a database round trip, so that the database only has to
 * append what was decided: one row per message, one row per acknowledged delivery of a message
 * that still has others waiting, one row of message ids per commit. It is rebuilt from those rows
 * when the store opens. Envelope bytes are the store's business: each message has a `body` slot
 * that the store fills and empties (recent messages in memory, the others read back from the
 * database); the index never reads it.
 */

import { mailboxKey, messageKey } from './keys.js';

/** The bytes of a message: each route's mailbox and framed prelude, and the shared records. */
export interface Body {
  mailboxes: Uint8Array[];
  preludes: Uint8Array[];
  records: Uint8Array;
  /** Bytes of the row's routes and records (what the cache counts). */
  size: number;
}

/** A stored message while any of its deliveries waits. */
export interface PendingMessage {
  /** Row id in `messages`, and the seq of the first delivery (route i has seq `row + i`). */
  readonly row: number;
  readonly id: Uint8Array;
  /** `id` as a map key. */
  readonly key: string;
  readonly storedAt: number;
  readonly expiresAt: number;
  /** The mailbox of each route. */
  readonly queues: readonly MailboxQueue[];
  /** Bytes each delivery counts against its mailbox: its prelude and the shared records. */
  readonly sizes: readonly number[];
  /** Deliveries not yet acknowledged or expired. */
  live: number;
  /** The envelope bytes, while the store holds them in memory (see sqlite-store.ts). */
  body: Body | undefined;
  /** Whether the row is committed (until then the store must keep `body`). */
  committed: boolean;
}

export interface Delivery {
  readonly seq: number;
  readonly message: PendingMessage;
  readonly route: number;
  /** Acknowledged or expired: skipped by readers, dropped at the next compaction. */
  done: boolean;
}

/** One mailbox's waiting deliveries, in seq order, with lookup by message id. */
export class MailboxQueue {
  /** In seq order; done entries stay until the queue is compacted. */
  private list: Delivery[] = [];
  private doneCount = 0;
  readonly byMessage = new Map<string, Delivery>();
  bytes = 0;

  constructor(readonly key: string) {}

  get count(): number {
    return this.byMessage.size;
  }

  add(d: Delivery, size: number): void {
    this.list.push(d);
    this.byMessage.set(d.message.key, d);
    this.bytes += size;
  }

  remove(d: Delivery, size: number): void {
    d.done = true;
    this.byMessage.delete(d.message.key);
    this.bytes -= size;
    // Compaction keeps the list within twice the live count, so pages stay cheap.
    if (++this.doneCount > 64 && this.doneCount * 2 > this.list.length) {
      this.list = this.list.filter((x) => !x.done);
      this.doneCount = 0;
    }
  }

  /** Up to `limit` live deliveries with `seq > afterSeq` whose message has not expired at `now`. */
  page(afterSeq: number, limit: number, now: number): Delivery[] {
    // Binary search for the first entry after `afterSeq`: the list is in seq order.
    let lo = 0;
    let hi = this.list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.list[mid] as Delivery).seq <= afterSeq) lo = mid + 1;
      else hi = mid;
    }
    const out: Delivery[] = [];
    for (let i = lo; i < this.list.length && out.length < limit; i++) {
      const d = this.list[i] as Delivery;
      if (!d.done && d.message.expiresAt > now) out.push(d);
    }
    return out;
  }
}

/** What an Ack or an expiry changes in the database. */
export interface Removal {
  /** Messages with no delivery left: their rows go (and their `acked` rows with them). */
  deleted: PendingMessage[];
  /** Seqs of acknowledged deliveries whose message still has others waiting. */
  acked: number[];
  /** Deliveries removed. */
  deliveries: number;
}

export interface NewMessage {
  id: Uint8Array;
  /** {@link messageKey} of `id`. */
  key: string;
  storedAt: number;
  expiresAt: number;
  dedupeUntil: number;
  /** The mailbox of each route, from {@link MailIndex.queue}. */
  queues: MailboxQueue[];
  sizes: number[];
  body: Body;
}

export class MailIndex {
  private readonly mailboxes = new Map<string, MailboxQueue>();
  /** Messages with a delivery left, by key; insertion order is row order. */
  private readonly messages = new Map<string, PendingMessage>();
  /**
   * Message ids remembered for deduplication, with the end of their window; insertion order is
   * store order, so the window ends roughly in that order too. A waiting message's id stays here
   * even past its window (until the message goes), so that one lookup answers isDuplicate.
   */
  private readonly seen = new Map<string, number>();
  private deliveryCount = 0;
  /** The next row id (and first seq) to hand out; never decreases. */
  nextSeq = 1;
  /** Ids forgotten before their window ended because {@link maxRemembered} was reached. */
  forgottenEarly = 0;
  /** When every id over the cap belonged to a waiting message: the size to try again at. */
  private forgetAgainAt = 0;

  /**
   * @param maxRemembered most message ids remembered for deduplication: beyond it the oldest
   *   are forgotten before their window ends (a late retry of one is then stored again, and its
   *   recipients deduplicate it). Ids of waiting messages are always kept.
   */
  constructor(private readonly maxRemembered = Number.POSITIVE_INFINITY) {}

  /** Whether a message with this id ({@link messageKey}) is stored or still remembered. */
  isDuplicate(key: string): boolean {
    return this.seen.has(key);
  }

  /** The queue of a mailbox (by {@link mailboxKey}), created empty if it has none. */
  queue(key: string): MailboxQueue {
    let q = this.mailboxes.get(key);
    if (q === undefined) {
      q = new MailboxQueue(key);
      this.mailboxes.set(key, q);
    }
    return q;
  }

  /**
   * The first route whose mailbox would exceed a limit with this message, or undefined.
   * `sizes[i]` is what delivery i counts against its mailbox.
   */
  overLimit(
    queues: readonly MailboxQueue[],
    sizes: readonly number[],
    limits: { maxMessages: number; maxBytes: number },
  ): { route: number; limit: 'messages' | 'bytes' } | undefined {
    for (let i = 0; i < queues.length; i++) {
      const q = queues[i] as MailboxQueue;
      if (q.count + 1 > limits.maxMessages) return { route: i, limit: 'messages' };
      if (q.bytes + (sizes[i] as number) > limits.maxBytes) return { route: i, limit: 'bytes' };
    }
    return undefined;
  }

  /** Drops the queues of a refused message that were created for it and are still empty. */
  release(queues: readonly MailboxQueue[]): void {
    for (const q of queues) if (q.count === 0) this.mailboxes.delete(q.key);
  }

  /** Adds a message (checked already) with seqs from `nextSeq` on; returns it. */
  add(m: NewMessage): PendingMessage {
    const row = this.nextSeq;
    this.nextSeq += m.queues.length;
    this.seen.set(m.key, m.dedupeUntil);
    const message = this.insert(row, m.id, m.key, m.storedAt, m.expiresAt, m.queues, m.sizes, m.body, false);
    // After the insert: the new message waits, so its own id is one of those kept.
    if (this.seen.size > this.maxRemembered && this.seen.size >= this.forgetAgainAt) this.forgetOldest();
    return message;
  }

  /** Puts back a committed message read from the database (at open), with its original row. */
  restore(row: number, id: Uint8Array, storedAt: number, expiresAt: number, mailboxes: string[], sizes: number[]): PendingMessage {
    this.nextSeq = Math.max(this.nextSeq, row + mailboxes.length);
    const queues = mailboxes.map((k) => this.queue(k));
    return this.insert(row, id, messageKey(id), storedAt, expiresAt, queues, sizes, undefined, true);
  }

  private insert(
    row: number,
    id: Uint8Array,
    key: string,
    storedAt: number,
    expiresAt: number,
    queues: MailboxQueue[],
    sizes: number[],
    body: Body | undefined,
    committed: boolean,
  ): PendingMessage {
    const message: PendingMessage = { row, id, key, storedAt, expiresAt, queues, sizes, live: queues.length, body, committed };
    this.messages.set(key, message);
    for (let route = 0; route < queues.length; route++) {
      (queues[route] as MailboxQueue).add({ seq: row + route, message, route, done: false }, sizes[route] as number);
    }
    this.deliveryCount += queues.length;
    return message;
  }

  /** Remembers a message id until `until` (ids restored from the database). */
  remember(key: string, until: number): void {
    this.seen.set(key, until);
  }

  /** After a restore: waiting messages whose dedupe row is gone are remembered until they expire. */
  rememberWaiting(): void {
    for (const m of this.messages.values()) if (!this.seen.has(m.key)) this.seen.set(m.key, m.expiresAt);
    if (this.seen.size > this.maxRemembered && this.seen.size >= this.forgetAgainAt) this.forgetOldest();
  }

  /** Forgets the oldest ids down to the cap, keeping (moving to the end) those of waiting messages. */
  private forgetOldest(): void {
    let budget = this.seen.size;
    let forgotten = 0;
    for (const [key, until] of this.seen) {
      if (this.seen.size <= this.maxRemembered || budget-- === 0) break;
      this.seen.delete(key);
      if (this.messages.has(key)) this.seen.set(key, until);
      else forgotten++;
    }
    this.forgottenEarly += forgotten;
    // Nothing could go (more messages wait than the cap): do not walk the whole map on every
    // new id; try again once a message stops waiting, or a thousand more ids have come.
    this.forgetAgainAt = forgotten === 0 ? this.seen.size + 1024 : 0;
  }

  /** Marks a restored delivery as acknowledged (an `acked` row read at open). */
  restoreAck(seq: number, message: PendingMessage): void {
    const q = message.queues[seq - message.row];
    const d = q?.byMessage.get(message.key);
    if (q === undefined || d === undefined || d.seq !== seq) return;
    this.removeDelivery(q, d);
    if (q.count === 0) this.mailboxes.delete(q.key);
  }

  /** Removes this mailbox's deliveries of these messages; unknown ids are ignored. */
  ack(mailbox: Uint8Array, ids: readonly Uint8Array[]): Removal {
    const out: Removal = { deleted: [], acked: [], deliveries: 0 };
    const q = this.mailboxes.get(mailboxKey(mailbox));
    if (q === undefined) return out;
    for (const id of ids) {
      const d = q.byMessage.get(messageKey(id));
      if (d === undefined) continue;
      this.removeDelivery(q, d);
      out.deliveries++;
      if (d.message.live === 0) out.deleted.push(d.message);
      else out.acked.push(d.seq);
    }
    if (q.count === 0) this.mailboxes.delete(q.key);
    return out;
  }

  private removeDelivery(q: MailboxQueue, d: Delivery): void {
    q.remove(d, d.message.sizes[d.route] as number);
    this.deliveryCount--;
    if (--d.message.live === 0) {
      this.messages.delete(d.message.key);
      this.forgetAgainAt = 0; // its id may be forgotten now
    }
  }

  /**
   * Removes every message that expired at `now` (all its deliveries) and forgets message ids
   * whose dedupe window ended.
   */
  expire(now: number): Removal {
    const out: Removal = { deleted: [], acked: [], deliveries: 0 };
    for (const m of this.messages.values()) {
      if (m.expiresAt > now) continue;
      for (const q of m.queues) {
        const d = q.byMessage.get(m.key);
        if (d === undefined) continue;
        this.removeDelivery(q, d);
        out.deliveries++;
        if (q.count === 0) this.mailboxes.delete(q.key);
      }
      out.deleted.push(m);
    }
    // Windows end in about the order they began; an entry found out of order is dropped later.
    for (const [key, until] of this.seen) {
      if (until > now) break;
      this.seen.delete(key);
      // Still waiting: remembered until it expires (moving to the end, in expiry order).
      const m = this.messages.get(key);
      if (m !== undefined) this.seen.set(key, m.expiresAt);
    }
    return out;
  }

  /** Up to `limit` waiting deliveries of a mailbox with `seq > afterSeq` not expired at `now`. */
  page(mailbox: Uint8Array, afterSeq: number, limit: number, now: number): Delivery[] {
    return this.mailboxes.get(mailboxKey(mailbox))?.page(afterSeq, limit, now) ?? [];
  }

  stats(): { messages: number; deliveries: number; mailboxes: number; remembered: number; forgottenEarly: number } {
    return {
      messages: this.messages.size,
      deliveries: this.deliveryCount,
      mailboxes: this.mailboxes.size,
      remembered: this.seen.size,
      forgottenEarly: this.forgottenEarly,
    };
  }
}
