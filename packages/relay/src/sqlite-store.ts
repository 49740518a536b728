/**
 * The default {@link RelayStore}: SQLite (better-sqlite3) in the relay's data folder, WAL with
 * `synchronous=FULL`, and group commit.
 *
 * Every decision about mail (duplicate, mailbox full, seqs, what an Ack or the expiry sweep
 * removes) is taken at once on the main thread by an in-memory index (mail-index.ts), which is
 * rebuilt from the database at open. What was decided goes into the open batch, which goes to a
 * writer thread at the end of each event-loop turn; the writer commits every batch that arrived
 * while its previous transaction ran in one transaction (group commit), so one fsync covers them
 * all and the thread serving sockets never waits for the disk. Each write's promise resolves
 * after its transaction committed.
 *
 * The envelope bytes of messages not yet committed are held in memory (readers cannot see them
 * in the database yet), and those of committed messages in a cache bounded in bytes; the others
 * are read back from the database on the main thread (WAL readers never wait for the writer).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { EventLoopUtilization } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type { RelayPrekey } from '@valise/protocol';
import Database from 'better-sqlite3';
import { mailboxKey, messageKey } from './keys.js';
import { type Body, type Delivery, type MailboxQueue, MailIndex, type PendingMessage, type Removal } from './mail-index.js';
import { INSERT_FIELDS, type MailBatch, type WorkerConfig, type WorkerResponse, type WriteOp } from './sqlite-protocol.js';
import { DB_FILE, decodeRoutes, encodeRoutes, ROUTE_HEAD } from './sqlite-schema.js';
import type {
  CommitObserver,
  DirectoryLookupQuery,
  DirectoryRecord,
  PutPrekeysResult,
  RelayStore,
  StoredDelivery,
  StoreMessageInput,
  StoreMessageResult,
  StoreStats,
  TakenPrekeys,
} from './store.js';

export interface SqliteStoreOptions {
  /** Extra time to gather writes into a batch for the writer thread, in ms (default 0: the end of the event-loop turn). */
  commitDelayMs?: number;
  /** Envelope bytes of committed, unacknowledged messages kept in memory (default 64 MiB). */
  cacheBytes?: number;
  /** Most message ids remembered for deduplication (default 5,000,000; see MailIndex). */
  maxRememberedIds?: number;
  onCommit?: CommitObserver;
  /** Called with the seconds from queueing to commit of each batch of writes (once per batch). */
  onWriteLatency?: (seconds: number) => void;
}

/** A write operation before the store numbers it. */
type NewOp = WriteOp extends infer T ? (T extends WriteOp ? Omit<T, 'id'> : never) : never;

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: Error) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Batches with at least this many bytes of mail have them moved, not copied, to the writer. */
const TRANSFER_BYTES = 64 << 10;

/** The writes gathered for the next transaction. */
class OpenBatch {
  /** New messages; each keeps its `body` at least until this batch is committed. */
  readonly rows: { message: PendingMessage; dedupeUntil: number }[] = [];
  readonly acked: number[] = [];
  /** Row, route count. */
  readonly deleted: number[] = [];
  forgetBefore = 0;
  readonly ops: WriteOp[] = [];
  readonly done = deferred<void>();
  /** When its first write was queued (performance.now()), 0 while empty. */
  firstWriteAt = 0;

  constructor() {
    // Callers that only use `done` for ordering may never attach a handler; a failure is reported
    // through the promises they do hold.
    this.done.promise.catch(() => {});
  }

  get empty(): boolean {
    return (
      this.rows.length === 0 && this.acked.length === 0 && this.deleted.length === 0 && this.forgetBefore === 0 && this.ops.length === 0
    );
  }

  /** The batch in the form it crosses to the writer thread in (see sqlite-protocol.ts). */
  encode(nextSeq: number): { batch: MailBatch; transfer: ArrayBuffer[] } {
    let size = 0;
    for (const r of this.rows) size += 16 + (r.message.body as Body).size;
    const bytes = new Uint8Array(size);
    const view = new DataView(bytes.buffer);
    const inserts = new Float64Array(this.rows.length * INSERT_FIELDS);
    const seenIds = new Uint8Array(this.rows.length * 16);
    let seenUntil = 0;
    let o = 0;
    let f = 0;
    for (let i = 0; i < this.rows.length; i++) {
      const r = this.rows[i] as { message: PendingMessage; dedupeUntil: number };
      const body = r.message.body as Body;
      const records = body.records;
      bytes.set(r.message.id, o);
      const routesLength = encodeRoutes(body.mailboxes, body.preludes, bytes, view, o + 16);
      bytes.set(records, o + 16 + routesLength);
      o += 16 + routesLength + records.length;
      inserts[f++] = r.message.row;
      inserts[f++] = r.message.storedAt;
      inserts[f++] = r.message.expiresAt;
      inserts[f++] = r.dedupeUntil;
      inserts[f++] = routesLength;
      inserts[f++] = records.length;
      seenIds.set(r.message.id, i * 16);
      if (r.dedupeUntil > seenUntil) seenUntil = r.dedupeUntil;
    }
    const batch: MailBatch = {
      inserts,
      bytes,
      acked: Float64Array.from(this.acked),
      deleted: deletedRuns(this.deleted),
      seenIds,
      seenUntil,
      forgetBefore: this.forgetBefore,
      nextSeq,
      ops: this.ops,
    };
    // Moving buffers to the other thread costs more than copying small ones (measured: a round
    // trip of a small batch took about 200 µs transferred, 160 µs copied); big ones move.
    const transfer = bytes.length >= TRANSFER_BYTES ? [bytes.buffer as ArrayBuffer] : [];
    return { batch, transfer };
  }
}

/**
 * Memory a body keeps alive: its bytes may be views into a larger buffer (a whole socket read),
 * so the cache counts that buffer whole (buffers shared by several bodies are counted by each,
 * which errs on the side of evicting).
 */
function retained(body: Body): number {
  return Math.max(body.size, body.records.buffer.byteLength);
}

/**
 * Deleted messages (row, route count pairs) as runs of adjacent rows (see MailBatch.deleted):
 * messages are mostly acknowledged in the order they were stored, and one statement per run
 * costs less than one per message.
 */
function deletedRuns(deleted: number[]): Float64Array {
  const n = deleted.length / 2;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => (deleted[2 * a] as number) - (deleted[2 * b] as number));
  const runs: number[] = [];
  for (const i of order) {
    const row = deleted[2 * i] as number;
    const routes = deleted[2 * i + 1] as number;
    const last = runs.length - 3;
    // Adjacent when it starts where the previous run's last message ends: no row lies between.
    if (last >= 0 && runs[last + 1] === row) {
      runs[last + 1] = row + routes;
      if (routes > 1) runs[last + 2] = 1;
    } else runs.push(row, row + routes, routes > 1 ? 1 : 0);
  }
  return Float64Array.from(runs);
}

interface DirectoryRow {
  device_cert_id: Buffer;
  person_id: Buffer;
  person_cert_id: Buffer;
  name: string;
  unit: string;
  person_cert: Buffer;
  device_cert: Buffer;
  published_at: number;
}

const u8 = (b: Buffer) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

/**
 * Starts the writer thread. The built package runs `sqlite-worker.js`; under a TypeScript loader
 * (tests, `node --import tsx`) this module is `.ts`, and the worker first registers tsx in its
 * own thread (loader flags are not inherited by workers on Node 20), then imports the `.ts` file.
 */
function startWorker(config: WorkerConfig): Worker {
  const url = workerUrl();
  if (!url.pathname.endsWith('.ts')) return new Worker(url, { workerData: config });
  const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); })`;
  return new Worker(boot, { eval: true, workerData: config });
}

function workerUrl(): URL {
  const here = import.meta.url;
  return new URL(here.endsWith('.ts') ? './sqlite-worker.ts' : './sqlite-worker.js', here);
}

export class SqliteStore implements RelayStore {
  private readonly index: MailIndex;
  private open = new OpenBatch();
  /**
   * Batches handed to the writer and not yet known committed, oldest first. The writer commits
   * in order, and everything it finds queued when a transaction ends goes into the next one.
   */
  private readonly committing: OpenBatch[] = [];
  private scheduled = false;
  private readonly pendingOps = new Map<number, Deferred<unknown>>();
  private nextOpId = 1;
  /**
   * Committed messages with deliveries left whose body is held in memory, least recently used
   * first. (Uncommitted messages always hold theirs: the database cannot give it back yet.)
   */
  private readonly cache = new Set<PendingMessage>();
  private cachedBytes = 0;
  private closed = false;
  private closing: Promise<void> | undefined;
  private failure: Error | undefined;
  private readonly reads;
  private readonly commitDelayMs: number;
  private readonly cacheBytes: number;
  private readonly onCommit: CommitObserver | undefined;
  private readonly onWriteLatency: ((seconds: number) => void) | undefined;

  private constructor(
    private readonly worker: Worker,
    private readonly reader: Database.Database,
    options: SqliteStoreOptions,
    private readonly workerDone: Promise<void>,
  ) {
    this.commitDelayMs = options.commitDelayMs ?? 0;
    this.cacheBytes = options.cacheBytes ?? 64 << 20;
    this.index = new MailIndex(options.maxRememberedIds ?? 5_000_000);
    this.onCommit = options.onCommit;
    this.onWriteLatency = options.onWriteLatency;
    worker.on('message', (m: WorkerResponse) => this.onWorkerMessage(m));
    this.reads = {
      body: reader.prepare('SELECT routes, records FROM messages WHERE id = ?'),
      prekeyCount: reader.prepare('SELECT count(*) FROM prekeys WHERE mailbox = ?').pluck(),
      hasSigned: reader.prepare('SELECT 1 FROM signed_prekeys WHERE mailbox = ?').pluck(),
      byPerson: reader.prepare('SELECT * FROM directory WHERE person_id = ? ORDER BY published_at LIMIT ?'),
      byDevice: reader.prepare('SELECT * FROM directory WHERE device_cert_id = ?'),
      byText: reader.prepare(
        `SELECT * FROM directory WHERE name LIKE ? ESCAPE '\\' OR unit LIKE ? ESCAPE '\\' ORDER BY unit, name LIMIT ?`,
      ),
      revocation: reader.prepare('SELECT bytes FROM revocation WHERE id = 1').pluck(),
    };
  }

  /** Opens (creating if needed) the store in `dataDir` and rebuilds its index. */
  static async open(dataDir: string, options: SqliteStoreOptions = {}): Promise<SqliteStore> {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const path = join(dataDir, DB_FILE);
    const worker = startWorker({ path });
    const done = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      const onMessage = (m: WorkerResponse) => {
        if ('ready' in m) {
          worker.off('message', onMessage);
          worker.off('error', onError);
          resolve();
        } else if ('fatal' in m) reject(new Error(`relay store: ${m.fatal}`));
      };
      const onError = (err: Error) => reject(err);
      worker.on('message', onMessage);
      worker.once('error', onError);
    });
    const reader = new Database(path, { fileMustExist: true });
    reader.pragma('busy_timeout = 5000');
    reader.pragma('query_only = ON');
    const store = new SqliteStore(worker, reader, options, done);
    store.load();
    worker.on('error', (err) => store.fail(err));
    worker.on('exit', () => store.fail(new Error('relay store: the writer thread exited')));
    return store;
  }

  /** Rebuilds the index from the database (at open, before any write). */
  private load(): void {
    const restored: PendingMessage[] = [];
    const rows = this.reader
      .prepare('SELECT id, message_id, stored_at, expires_at, routes, length(records) AS recordsLength FROM messages ORDER BY id')
      .iterate() as Iterable<{
      id: number;
      message_id: Buffer;
      stored_at: number;
      expires_at: number;
      routes: Buffer;
      recordsLength: number;
    }>;
    for (const r of rows) {
      const { mailboxes, preludes } = decodeRoutes(u8(r.routes));
      const keys = mailboxes.map(mailboxKey);
      const sizes = preludes.map((p) => p.length + r.recordsLength);
      restored.push(this.index.restore(r.id, new Uint8Array(r.message_id), r.stored_at, r.expires_at, keys, sizes));
    }
    // An acked row names a delivery by seq; its message is the one with the greatest row not above it.
    for (const seq of this.reader.prepare('SELECT seq FROM acked ORDER BY seq').pluck().iterate() as Iterable<number>) {
      let lo = 0;
      let hi = restored.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if ((restored[mid] as PendingMessage).row <= seq) lo = mid + 1;
        else hi = mid;
      }
      const m = restored[lo - 1];
      if (m !== undefined && seq < m.row + m.queues.length) this.index.restoreAck(seq, m);
    }
    for (const r of this.reader.prepare('SELECT until, ids FROM seen ORDER BY id').iterate() as Iterable<{ until: number; ids: Buffer }>) {
      for (let o = 0; o + 16 <= r.ids.length; o += 16) this.index.remember(messageKey(r.ids.subarray(o, o + 16)), r.until);
    }
    this.index.rememberWaiting();
    const next = this.reader.prepare("SELECT value FROM meta WHERE key = 'next_seq'").pluck().get() as number | undefined;
    this.index.nextSeq = Math.max(this.index.nextSeq, next ?? 1);
  }

  /** Event-loop utilisation of the writer thread (busy share, including time blocked in fsync). */
  writerUtilization(previous?: EventLoopUtilization): EventLoopUtilization {
    return this.worker.performance.eventLoopUtilization(previous);
  }

  /** The file the store lives in (for backups and integrity checks). */
  static path(dataDir: string): string {
    return join(dataDir, DB_FILE);
  }

  // -------------------------------------------------------------------------------------------
  // Group commit

  private onWorkerMessage(m: WorkerResponse): void {
    if ('committed' in m) {
      this.onCommit?.(m.writes, m.seconds);
      const batches = this.committing.splice(0, m.batches);
      const now = performance.now();
      for (const batch of batches) {
        this.onWriteLatency?.((now - batch.firstWriteAt) / 1000);
        // Committed bodies go to the cache, or go altogether if their message is gone already.
        for (const { message } of batch.rows) {
          message.committed = true;
          if (message.live > 0) this.cacheBody(message);
          else message.body = undefined;
        }
      }
      for (const res of m.results) {
        const p = this.pendingOps.get(res.id);
        if (p === undefined) continue;
        this.pendingOps.delete(res.id);
        if (res.ok) p.resolve(res.value);
        else p.reject(new Error(`relay store: ${res.error}`));
      }
      for (const batch of batches) batch.done.resolve();
    } else if ('failed' in m) {
      this.fail(new Error(`relay store: a transaction failed: ${m.failed}`));
    }
  }

  /**
   * Posts the open batch at the end of this event-loop turn (or after `commitDelayMs`), whether
   * or not the writer is busy: it takes every batch that arrived during a commit into the next.
   */
  private schedule(): void {
    if (this.open.firstWriteAt === 0) this.open.firstWriteAt = performance.now();
    if (this.scheduled) return;
    this.scheduled = true;
    const run = () => {
      this.scheduled = false;
      this.post();
    };
    if (this.commitDelayMs > 0) setTimeout(run, this.commitDelayMs);
    else setImmediate(run);
  }

  private post(): void {
    if (this.open.empty || this.failure !== undefined) return;
    const batch = this.open;
    this.open = new OpenBatch();
    const { batch: wire, transfer } = batch.encode(this.index.nextSeq);
    this.committing.push(batch);
    this.worker.postMessage({ batch: wire }, transfer);
  }

  /** The writer failed: every pending and later write fails (the relay reports it in /healthz). */
  private fail(err: Error): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    for (const batch of this.committing) batch.done.reject(err);
    this.committing.length = 0;
    this.open.done.reject(err);
    for (const p of this.pendingOps.values()) p.reject(err);
    this.pendingOps.clear();
  }

  private checkWritable(): void {
    if (this.failure !== undefined) throw this.failure;
    if (this.closed) throw new Error('relay store: closed');
  }

  private writeOp<T>(op: NewOp): Promise<T> {
    try {
      this.checkWritable();
    } catch (err) {
      return Promise.reject(err);
    }
    const id = this.nextOpId++;
    const d = deferred<unknown>();
    this.pendingOps.set(id, d);
    this.open.ops.push({ ...op, id } as WriteOp);
    this.schedule();
    return d.promise as Promise<T>;
  }

  // -------------------------------------------------------------------------------------------
  // Envelope bytes

  private cacheBody(message: PendingMessage): void {
    const body = message.body;
    if (body === undefined) return;
    this.cache.add(message);
    this.cachedBytes += retained(body);
    for (const m of this.cache) {
      if (this.cachedBytes <= this.cacheBytes) break;
      this.uncache(m);
    }
  }

  private uncache(message: PendingMessage): void {
    if (!this.cache.delete(message)) return;
    this.cachedBytes -= retained(message.body as Body);
    message.body = undefined;
  }

  /** A message's body: in memory, or read back from the database (and cached). */
  private body(message: PendingMessage): Body {
    if (message.body !== undefined) {
      if (this.cache.delete(message)) this.cache.add(message); // most recently used goes last
      return message.body;
    }
    const r = this.reads.body.get(message.row) as { routes: Buffer; records: Buffer } | undefined;
    if (r === undefined) throw new Error(`relay store: message row ${message.row} is missing`);
    const { mailboxes, preludes } = decodeRoutes(u8(r.routes));
    const body: Body = { mailboxes, preludes, records: u8(r.records), size: r.routes.length + r.records.length };
    message.body = body;
    // The cache may evict it at once (when it is smaller than this body): the caller still gets it.
    this.cacheBody(message);
    return body;
  }

  // -------------------------------------------------------------------------------------------
  // RelayStore

  storeMessage(input: StoreMessageInput): StoreMessageResult {
    this.checkWritable();
    const key = messageKey(input.messageId);
    if (this.index.isDuplicate(key)) return { status: 'duplicate', messageId: input.messageId, durable: this.barrier() };
    const n = input.deliveries.length;
    const mailboxes = new Array<Uint8Array>(n);
    const queues = new Array<MailboxQueue>(n);
    const sizes = new Array<number>(n);
    const preludes = new Array<Uint8Array>(n);
    let size = input.records.length;
    for (let i = 0; i < n; i++) {
      const d = input.deliveries[i] as { mailbox: Uint8Array; prelude: Uint8Array };
      mailboxes[i] = d.mailbox;
      queues[i] = this.index.queue(mailboxKey(d.mailbox));
      sizes[i] = d.prelude.length + input.records.length;
      preludes[i] = d.prelude;
      size += ROUTE_HEAD + d.prelude.length;
    }
    const over = this.index.overLimit(queues, sizes, input.limits);
    if (over !== undefined) {
      this.index.release(queues);
      return { status: 'mailbox-full', mailbox: mailboxes[over.route] as Uint8Array, limit: over.limit };
    }
    const message = this.index.add({
      id: input.messageId,
      key,
      storedAt: input.storedAt,
      expiresAt: input.expiresAt,
      dedupeUntil: input.dedupeUntil,
      queues,
      sizes,
      body: { mailboxes, preludes, records: input.records, size },
    });
    this.open.rows.push({ message, dedupeUntil: input.dedupeUntil });
    this.schedule();
    const seqs = new Array<number>(n);
    for (let i = 0; i < n; i++) seqs[i] = message.row + i;
    return {
      status: 'stored',
      messageId: input.messageId,
      messageKey: key,
      storedAt: input.storedAt,
      seqs,
      durable: this.open.done.promise,
    };
  }

  async readMailbox(mailbox: Uint8Array, afterSeq: number, limit: number, now: number): Promise<StoredDelivery[]> {
    return this.index.page(mailbox, afterSeq, limit, now).map((d: Delivery) => {
      const body = this.body(d.message);
      return {
        seq: d.seq,
        messageId: d.message.id,
        messageKey: d.message.key,
        prelude: body.preludes[d.route] as Uint8Array,
        records: body.records,
        storedAt: d.message.storedAt,
      };
    });
  }

  /** Puts what an Ack or the expiry sweep removed into the open batch. */
  private remove(removal: Removal): void {
    for (const seq of removal.acked) this.open.acked.push(seq);
    for (const m of removal.deleted) {
      this.open.deleted.push(m.row, m.queues.length);
      // An uncommitted message keeps its body for its insert; the commit drops it.
      if (m.committed) this.uncache(m);
    }
  }

  /**
   * Resolves when everything queued so far is committed. An Ack that removes nothing waits too:
   * an earlier Ack of the same delivery may be queued, and its Ok must not overtake that commit.
   */
  private barrier(): Promise<void> {
    if (!this.open.empty) {
      this.schedule();
      return this.open.done.promise;
    }
    return this.committing.at(-1)?.done.promise ?? Promise.resolve();
  }

  async ack(mailbox: Uint8Array, messageIds: Uint8Array[], _now: number): Promise<number> {
    this.checkWritable();
    const removal = this.index.ack(mailbox, messageIds);
    this.remove(removal);
    await this.barrier();
    return removal.deliveries;
  }

  putPrekeys(mailbox: Uint8Array, prekeys: RelayPrekey[], signed: RelayPrekey | undefined, max: number): Promise<PutPrekeysResult> {
    const op: Omit<Extract<WriteOp, { op: 'putPrekeys' }>, 'id'> = { op: 'putPrekeys', mailbox, prekeys, max };
    if (signed !== undefined) op.signed = signed;
    return this.writeOp(op);
  }

  takePrekey(mailbox: Uint8Array): Promise<TakenPrekeys> {
    return this.writeOp({ op: 'takePrekey', mailbox });
  }

  async countPrekeys(mailbox: Uint8Array): Promise<{ count: number; hasSigned: boolean }> {
    return {
      count: this.reads.prekeyCount.get(mailbox) as number,
      hasSigned: this.reads.hasSigned.get(mailbox) !== undefined,
    };
  }

  putDirectoryEntry(entry: DirectoryRecord): Promise<void> {
    return this.writeOp({ op: 'putDirectory', entry });
  }

  async lookupDirectory(query: DirectoryLookupQuery, limit: number): Promise<DirectoryRecord[]> {
    let rows: unknown[];
    if ('personId' in query) rows = this.reads.byPerson.all(query.personId, limit);
    else if ('deviceCertId' in query) rows = this.reads.byDevice.all(query.deviceCertId);
    else {
      const pattern = `%${query.text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      rows = this.reads.byText.all(pattern, pattern, limit);
    }
    return (rows as DirectoryRow[]).map((r) => ({
      deviceCertId: u8(r.device_cert_id),
      personId: u8(r.person_id),
      personCertId: u8(r.person_cert_id),
      name: r.name,
      unit: r.unit,
      personCert: u8(r.person_cert),
      deviceCert: u8(r.device_cert),
      publishedAt: r.published_at,
    }));
  }

  putRevocationList(bytes: Uint8Array, sequence: number): Promise<boolean> {
    return this.writeOp({ op: 'putRevocation', bytes, sequence });
  }

  async getRevocationList(): Promise<Uint8Array | undefined> {
    const b = this.reads.revocation.get() as Buffer | undefined;
    return b === undefined ? undefined : u8(b);
  }

  async expire(now: number): Promise<{ deliveries: number; messages: number }> {
    this.checkWritable();
    const removal = this.index.expire(now);
    this.remove(removal);
    this.open.forgetBefore = now;
    await this.barrier();
    return { deliveries: removal.deliveries, messages: removal.deleted.length };
  }

  async stats(): Promise<StoreStats> {
    const s = this.index.stats();
    return {
      messages: s.messages,
      deliveries: s.deliveries,
      mailboxes: s.mailboxes,
      rememberedIds: s.remembered,
      idsForgottenEarly: s.forgottenEarly,
    };
  }

  flush(): Promise<void> {
    return this.writeOp({ op: 'flush' });
  }

  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    this.closing = (async () => {
      try {
        await this.flush();
      } catch {
        // the writer is gone already: nothing left to commit
      }
      this.closed = true;
      this.worker.postMessage({ close: true });
      await this.workerDone;
      this.reader.close();
    })();
    return this.closing;
  }
}
