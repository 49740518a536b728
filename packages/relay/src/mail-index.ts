/**
 * The SQLite store's in-memory index of what waits in the relay (spec/relay.md, "SQLite store"):
 * every unacknowledged delivery by mailbox, every message with a delivery left, every message id
 * still remembered for deduplication, and each mailbox's usage.
 *
 * The index makes every decision of the store (duplicate, mailbox full, which deliveries an Ack
 * removes, what has expired) without a database round trip, so that the database only has to
 * append what was decided: one row per message, one row per acknowledged delivery of a message
 * that still has others waiting, one row of message ids per commit. It is rebuilt from those rows
 * when the store opens. It holds no envelope bytes itself: the store keeps those of recent
 * messages and reads the others back from the database.
 */

/** A stored message while any of its deliveries waits. */
export interface PendingMessage {
  /** Row id in `messages`, and the seq of the first delivery (route i has seq `row + i`). */
  readonly row: number;
  readonly id: Uint8Array;
  /** `id` as a map key. */
  readonly key: string;
  readonly storedAt: number;
  readonly expiresAt: number;
  /** Mailbox key of each route. */
  readonly mailboxes: readonly string[];
  /** Bytes each delivery counts against its mailbox: its prelude and the shared records. */
  readonly sizes: readonly number[];
  /** Deliveries not yet acknowledged or expired. */
  live: number;
}

export interface Delivery {
  readonly seq: number;
  readonly message: PendingMessage;
  readonly route: number;
  /** Acknowledged or expired: skipped by readers, dropped at the next compaction. */
  done: boolean;
}

/** One mailbox's waiting deliveries, in seq order, with lookup by message id. */
class MailboxQueue {
  /** In seq order; done entries stay until the queue is compacted. */
  list: Delivery[] = [];
  private doneCount = 0;
  readonly byMessage = new Map<string, Delivery>();
  bytes = 0;

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

  /** Index of the first entry with `seq > afterSeq` (binary search: the list is in seq order). */
  firstAfter(afterSeq: number): number {
    let lo = 0;
    let hi = this.list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.list[mid] as Delivery).seq <= afterSeq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
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
  /** Mailbox keys ({@link mailboxKey}) of the routes. */
  mailboxes: string[];
  sizes: number[];
}

export const mailboxKey = (mailbox: Uint8Array): string =>
  Buffer.from(mailbox.buffer, mailbox.byteOffset, mailbox.byteLength).toString('hex');
/** A cheap map key for a 16-byte message id (not for display). */
export const messageKey = (id: Uint8Array): string => Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('latin1');

export class MailIndex {
  private readonly mailboxes = new Map<string, MailboxQueue>();
  /** Messages with a delivery left, by key; insertion order is row order. */
  private readonly messages = new Map<string, PendingMessage>();
  /**
   * Message ids remembered for deduplication, with the end of their window; insertion order is
   * store order, so the window ends roughly in that order too.
   */
  private readonly seen = new Map<string, number>();
  private deliveryCount = 0;
  /** The next row id (and first seq) to hand out; never decreases. */
  nextSeq = 1;

  /** Whether a message with this id ({@link messageKey}) is stored or still remembered. */
  isDuplicate(key: string): boolean {
    return this.messages.has(key) || this.seen.has(key);
  }

  /**
   * The first route whose mailbox (by key) would exceed a limit with this message, or undefined.
   * `sizes[i]` is what delivery i counts against its mailbox.
   */
  overLimit(
    mailboxes: readonly string[],
    sizes: readonly number[],
    limits: { maxMessages: number; maxBytes: number },
  ): { route: number; limit: 'messages' | 'bytes' } | undefined {
    for (let i = 0; i < mailboxes.length; i++) {
      const q = this.mailboxes.get(mailboxes[i] as string);
      if ((q?.count ?? 0) + 1 > limits.maxMessages) return { route: i, limit: 'messages' };
      if ((q?.bytes ?? 0) + (sizes[i] as number) > limits.maxBytes) return { route: i, limit: 'bytes' };
    }
    return undefined;
  }

  /** Adds a message (checked already) with seqs from `nextSeq` on; returns it. */
  add(m: NewMessage): PendingMessage {
    const row = this.nextSeq;
    this.nextSeq += m.mailboxes.length;
    return this.insert(row, m.id, m.key, m.storedAt, m.expiresAt, m.mailboxes, m.sizes, m.dedupeUntil);
  }

  /** Puts back a message read from the database (at open), with its original row. */
  restore(row: number, id: Uint8Array, storedAt: number, expiresAt: number, mailboxes: string[], sizes: number[]): PendingMessage {
    this.nextSeq = Math.max(this.nextSeq, row + mailboxes.length);
    return this.insert(row, id, messageKey(id), storedAt, expiresAt, mailboxes, sizes, undefined);
  }

  private insert(
    row: number,
    id: Uint8Array,
    key: string,
    storedAt: number,
    expiresAt: number,
    mailboxes: string[],
    sizes: number[],
    dedupeUntil: number | undefined,
  ): PendingMessage {
    const message: PendingMessage = { row, id, key, storedAt, expiresAt, mailboxes, sizes, live: mailboxes.length };
    this.messages.set(key, message);
    if (dedupeUntil !== undefined) this.remember(key, dedupeUntil);
    mailboxes.forEach((mk, route) => {
      let q = this.mailboxes.get(mk);
      if (q === undefined) {
        q = new MailboxQueue();
        this.mailboxes.set(mk, q);
      }
      q.add({ seq: row + route, message, route, done: false }, sizes[route] as number);
    });
    this.deliveryCount += mailboxes.length;
    return message;
  }

  /** Remembers a message id until `until` (also for ids restored from the database). */
  remember(key: string, until: number): void {
    this.seen.set(key, until);
  }

  /** Marks a restored delivery as acknowledged (an `acked` row read at open). */
  restoreAck(seq: number, message: PendingMessage): void {
    const route = seq - message.row;
    const q = this.mailboxes.get(message.mailboxes[route] as string);
    const d = q?.byMessage.get(message.key);
    if (q === undefined || d === undefined || d.seq !== seq) return;
    this.removeDelivery(q, d);
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
    if (q.count === 0) this.mailboxes.delete(mailboxKey(mailbox));
    return out;
  }

  private removeDelivery(q: MailboxQueue, d: Delivery): void {
    q.remove(d, d.message.sizes[d.route] as number);
    this.deliveryCount--;
    if (--d.message.live === 0) this.messages.delete(d.message.key);
  }

  /**
   * Removes every message that expired at `now` (all its deliveries) and forgets message ids
   * whose dedupe window ended.
   */
  expire(now: number): Removal {
    const out: Removal = { deleted: [], acked: [], deliveries: 0 };
    for (const m of this.messages.values()) {
      if (m.expiresAt > now) continue;
      m.mailboxes.forEach((mk) => {
        const q = this.mailboxes.get(mk);
        const d = q?.byMessage.get(m.key);
        if (q === undefined || d === undefined) return;
        this.removeDelivery(q, d);
        out.deliveries++;
        if (q.count === 0) this.mailboxes.delete(mk);
      });
      out.deleted.push(m);
    }
    // Windows end in about the order they began; an entry found out of order is dropped later.
    for (const [key, until] of this.seen) {
      if (until > now) break;
      this.seen.delete(key);
    }
    return out;
  }

  /** Up to `limit` waiting deliveries of a mailbox with `seq > afterSeq` not expired at `now`. */
  page(mailbox: Uint8Array, afterSeq: number, limit: number, now: number): Delivery[] {
    const q = this.mailboxes.get(mailboxKey(mailbox));
    if (q === undefined) return [];
    const out: Delivery[] = [];
    for (let i = q.firstAfter(afterSeq); i < q.list.length && out.length < limit; i++) {
      const d = q.list[i] as Delivery;
      if (!d.done && d.message.expiresAt > now) out.push(d);
    }
    return out;
  }

  /** A waiting message by id (for restoring acks). */
  message(key: string): PendingMessage | undefined {
    return this.messages.get(key);
  }

  stats(): { messages: number; deliveries: number; mailboxes: number; remembered: number } {
    return { messages: this.messages.size, deliveries: this.deliveryCount, mailboxes: this.mailboxes.size, remembered: this.seen.size };
  }
}
