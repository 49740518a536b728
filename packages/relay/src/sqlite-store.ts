/**
 * The default {@link RelayStore}: SQLite (better-sqlite3) in the relay's data folder, WAL with
 * `synchronous=FULL`, and group commit.
 *
 * Writes are queued on the main thread, handed to a writer thread once per event-loop turn (or
 * when `maxBatch` are waiting) and committed there in one transaction per batch; each promise
 * resolves after its transaction committed. The fsync therefore never blocks the thread that
 * serves sockets, and one fsync covers every write that arrived while the previous one ran.
 * Reads (a mailbox's backlog, directory lookups) run on the main thread on their own
 * connection: WAL readers see every committed transaction and never wait for the writer.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { EventLoopUtilization } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type { RelayPrekey } from '@valise/protocol';
import Database from 'better-sqlite3';
import type { OpResult, StoreResultWire, WorkerConfig, WorkerResponse, WriteOp } from './sqlite-protocol.js';
import { DB_FILE } from './sqlite-schema.js';
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
  /** Most writes per transaction (default 1000). */
  maxBatch?: number;
  /** Extra time the writer waits to gather writes before committing, in ms (default 0). */
  commitDelayMs?: number;
  onCommit?: CommitObserver;
  /** Called with the seconds from queueing to result of each write. */
  onWriteLatency?: (seconds: number) => void;
}

/** A write operation before the store numbers it. */
type NewOp = WriteOp extends infer T ? (T extends WriteOp ? Omit<T, 'id'> : never) : never;

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void; at: number };

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
  private readonly pending = new Map<number, Pending>();
  private outbox: WriteOp[] = [];
  private scheduled = false;
  private nextId = 1;
  private closed = false;
  private closing: Promise<void> | undefined;
  private failure: Error | undefined;
  private readonly maxBatch: number;
  private readonly reads;
  private readonly onWriteLatency: ((seconds: number) => void) | undefined;

  private constructor(
    private readonly worker: Worker,
    private readonly reader: Database.Database,
    options: SqliteStoreOptions,
    private readonly workerDone: Promise<void>,
  ) {
    this.maxBatch = options.maxBatch ?? 1000;
    this.onWriteLatency = options.onWriteLatency;
    const onCommit = options.onCommit;
    worker.on('message', (m: WorkerResponse) => {
      if ('results' in m) {
        onCommit?.(m.ops, m.seconds);
        for (const r of m.results) this.settle(r);
      }
    });
    this.reads = {
      mailbox: reader.prepare(
        `SELECT d.seq AS seq, m.message_id AS messageId, d.prelude AS prelude, m.records AS records, m.stored_at AS storedAt
         FROM deliveries d JOIN messages m ON m.id = d.message_ref
         WHERE d.mailbox = ? AND d.seq > ? AND m.expires_at > ? ORDER BY d.seq LIMIT ?`,
      ),
      prekeyCount: reader.prepare('SELECT count(*) FROM prekeys WHERE mailbox = ?').pluck(),
      hasSigned: reader.prepare('SELECT 1 FROM signed_prekeys WHERE mailbox = ?').pluck(),
      byPerson: reader.prepare('SELECT * FROM directory WHERE person_id = ? ORDER BY published_at LIMIT ?'),
      byDevice: reader.prepare('SELECT * FROM directory WHERE device_cert_id = ?'),
      byText: reader.prepare(
        `SELECT * FROM directory WHERE name LIKE ? ESCAPE '\\' OR unit LIKE ? ESCAPE '\\' ORDER BY unit, name LIMIT ?`,
      ),
      revocation: reader.prepare('SELECT bytes FROM revocation WHERE id = 1').pluck(),
      stats: reader.prepare(
        'SELECT (SELECT count(*) FROM messages WHERE live = 1) AS messages, (SELECT count(*) FROM deliveries) AS deliveries, (SELECT count(DISTINCT mailbox) FROM deliveries) AS mailboxes',
      ),
    };
  }

  /** Opens (creating if needed) the store in `dataDir`. */
  static async open(dataDir: string, options: SqliteStoreOptions = {}): Promise<SqliteStore> {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const path = join(dataDir, DB_FILE);
    const config: WorkerConfig = { path, maxBatch: options.maxBatch ?? 1000, commitDelayMs: options.commitDelayMs ?? 0 };
    const worker = startWorker(config);
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
    worker.on('error', (err) => store.fail(err));
    worker.on('exit', () => store.fail(new Error('relay store: the writer thread exited')));
    return store;
  }

  /** Event-loop utilisation of the writer thread (busy share, including time blocked in fsync). */
  writerUtilization(previous?: EventLoopUtilization): EventLoopUtilization {
    return this.worker.performance.eventLoopUtilization(previous);
  }

  /** The file the store lives in (for backups and integrity checks). */
  static path(dataDir: string): string {
    return join(dataDir, DB_FILE);
  }

  private settle(r: OpResult): void {
    const p = this.pending.get(r.id);
    if (p === undefined) return;
    this.pending.delete(r.id);
    this.onWriteLatency?.((performance.now() - p.at) / 1000);
    if (r.ok) p.resolve(r.value);
    else p.reject(new Error(`relay store: ${r.error}`));
  }

  /** The writer is gone: every pending and later write fails (the relay reports it in /healthz). */
  private fail(err: Error): void {
    this.failure ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private write<T>(op: NewOp): Promise<T> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new Error('relay store: closed'));
    const id = this.nextId++;
    const promise = new Promise<T>((resolve, reject) =>
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, at: performance.now() }),
    );
    this.outbox.push({ ...op, id } as WriteOp);
    if (this.outbox.length >= this.maxBatch) this.post();
    else if (!this.scheduled) {
      this.scheduled = true;
      // Once per event-loop turn: every frame read in this turn goes in one message.
      setImmediate(() => this.post());
    }
    return promise;
  }

  private post(): void {
    this.scheduled = false;
    if (this.outbox.length === 0) return;
    const ops = this.outbox;
    this.outbox = [];
    this.worker.postMessage({ ops });
  }

  async storeMessage(input: StoreMessageInput): Promise<StoreMessageResult> {
    const r = await this.write<StoreResultWire>({ op: 'store', input });
    if (r === 'duplicate') return { status: 'duplicate', messageId: input.messageId };
    if (typeof r[0] === 'string') {
      const [limit, index] = r as ['messages' | 'bytes', number];
      return { status: 'mailbox-full', mailbox: (input.deliveries[index] as { mailbox: Uint8Array }).mailbox, limit };
    }
    return { status: 'stored', messageId: input.messageId, storedAt: input.storedAt, seqs: r as number[] };
  }

  async readMailbox(mailbox: Uint8Array, afterSeq: number, limit: number, now: number): Promise<StoredDelivery[]> {
    const rows = this.reads.mailbox.all(mailbox, afterSeq, now, limit) as {
      seq: number;
      messageId: Buffer;
      prelude: Buffer;
      records: Buffer;
      storedAt: number;
    }[];
    return rows.map((r) => ({
      seq: r.seq,
      messageId: u8(r.messageId),
      prelude: u8(r.prelude),
      records: u8(r.records),
      storedAt: r.storedAt,
    }));
  }

  ack(mailbox: Uint8Array, messageIds: Uint8Array[], now: number): Promise<number> {
    return this.write({ op: 'ack', mailbox, messageIds, now });
  }

  putPrekeys(mailbox: Uint8Array, prekeys: RelayPrekey[], signed: RelayPrekey | undefined, max: number): Promise<PutPrekeysResult> {
    const op: Omit<Extract<WriteOp, { op: 'putPrekeys' }>, 'id'> = { op: 'putPrekeys', mailbox, prekeys, max };
    if (signed !== undefined) op.signed = signed;
    return this.write(op);
  }

  takePrekey(mailbox: Uint8Array): Promise<TakenPrekeys> {
    return this.write({ op: 'takePrekey', mailbox });
  }

  async countPrekeys(mailbox: Uint8Array): Promise<{ count: number; hasSigned: boolean }> {
    return {
      count: this.reads.prekeyCount.get(mailbox) as number,
      hasSigned: this.reads.hasSigned.get(mailbox) !== undefined,
    };
  }

  putDirectoryEntry(entry: DirectoryRecord): Promise<void> {
    return this.write({ op: 'putDirectory', entry });
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
    return this.write({ op: 'putRevocation', bytes, sequence });
  }

  async getRevocationList(): Promise<Uint8Array | undefined> {
    const b = this.reads.revocation.get() as Buffer | undefined;
    return b === undefined ? undefined : u8(b);
  }

  expire(now: number): Promise<{ deliveries: number; messages: number }> {
    return this.write({ op: 'expire', now });
  }

  async stats(): Promise<StoreStats> {
    return this.reads.stats.get() as StoreStats;
  }

  flush(): Promise<void> {
    return this.write({ op: 'flush' });
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
      this.post();
      this.worker.postMessage({ close: true });
      await this.workerDone;
      this.reader.close();
    })();
    return this.closing;
  }
}
