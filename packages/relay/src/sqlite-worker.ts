/**
 * The SQLite writer thread: every write of the relay runs here, grouped into transactions
 * (group commit). While one transaction commits (an fsync, about a millisecond on a real disk),
 * the main thread keeps serving sockets and queueing operations; the next transaction takes all
 * of them at once. Each operation runs in its own savepoint, so one failing operation does not
 * undo the others of its batch. Results are posted back only after the commit returned.
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { OpResult, StoreResultWire, WorkerConfig, WorkerRequest, WorkerResponse, WriteOp } from './sqlite-protocol.js';
import { applyPragmas, migrate } from './sqlite-schema.js';
import type { DirectoryRecord, PutPrekeysResult, StoreMessageInput, TakenPrekeys } from './store.js';

const port = parentPort;
if (port === null) throw new Error('sqlite-worker must run in a worker thread');
const config = workerData as WorkerConfig;
const post = (m: WorkerResponse) => port.postMessage(m);

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

let db: Database.Database;
try {
  db = new Database(config.path);
  applyPragmas(db);
  migrate(db);
} catch (err) {
  post({ fatal: (err as Error).message });
  throw err;
}

const st = {
  insertMessage: db.prepare(
    `INSERT INTO messages (message_id, records, live, stored_at, expires_at, dedupe_until) VALUES (?, ?, 1, ?, ?, ?)
     ON CONFLICT (message_id) DO NOTHING`,
  ),
  messageExists: db.prepare('SELECT 1 FROM messages WHERE message_id = ?').pluck(),
  insertDelivery: db.prepare('INSERT INTO deliveries (mailbox, message_ref, prelude, size) VALUES (?, ?, ?, ?)'),
  messageRef: db.prepare('SELECT id FROM messages WHERE message_id = ?').pluck(),
  deleteDelivery: db.prepare('DELETE FROM deliveries WHERE message_ref = ? AND mailbox = ? RETURNING size'),
  deleteDeliveriesOf: db.prepare('DELETE FROM deliveries WHERE message_ref = ? RETURNING mailbox, size'),
  anyDelivery: db.prepare('SELECT 1 FROM deliveries WHERE message_ref = ? LIMIT 1').pluck(),
  /** The last delivery is gone: drop the records, keep the id until the dedupe window ends. */
  tombstone: db.prepare("UPDATE messages SET records = x'', live = 0 WHERE id = ? AND dedupe_until > ?"),
  deleteMessage: db.prepare('DELETE FROM messages WHERE id = ?'),
  expiredMessages: db.prepare('SELECT id FROM messages WHERE expires_at <= ? ORDER BY expires_at LIMIT 512').pluck(),
  expireTombstones: db.prepare(
    'DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE live = 0 AND dedupe_until <= ? ORDER BY dedupe_until LIMIT 4096)',
  ),
  prekeyCount: db.prepare('SELECT count(*) FROM prekeys WHERE mailbox = ?').pluck(),
  prekeyExists: db.prepare('SELECT 1 FROM prekeys WHERE mailbox = ? AND id = ?').pluck(),
  putPrekey: db.prepare('INSERT OR REPLACE INTO prekeys (mailbox, id, bytes) VALUES (?, ?, ?)'),
  putSigned: db.prepare('INSERT OR REPLACE INTO signed_prekeys (mailbox, id, bytes) VALUES (?, ?, ?)'),
  firstPrekey: db.prepare('SELECT id, bytes FROM prekeys WHERE mailbox = ? ORDER BY id LIMIT 1'),
  deletePrekey: db.prepare('DELETE FROM prekeys WHERE mailbox = ? AND id = ?'),
  signedPrekey: db.prepare('SELECT id, bytes FROM signed_prekeys WHERE mailbox = ?'),
  putDirectory: db.prepare(
    `INSERT OR REPLACE INTO directory (device_cert_id, person_id, person_cert_id, name, unit, person_cert, device_cert, published_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  ),
  revocationSequence: db.prepare('SELECT sequence FROM revocation WHERE id = 1').pluck(),
  putRevocation: db.prepare('INSERT OR REPLACE INTO revocation (id, sequence, bytes) VALUES (1, ?, ?)'),
  mailboxUsage: db.prepare('SELECT mailbox, count(*) AS n, sum(size) AS bytes FROM deliveries GROUP BY mailbox'),
};

/** Messages and bytes waiting in each mailbox; the deliveries table is the truth, this is its sum. */
const usage = new Map<string, { n: number; bytes: number }>();
function loadUsage(): void {
  usage.clear();
  for (const row of st.mailboxUsage.iterate() as Iterable<{ mailbox: Buffer; n: number; bytes: number }>) {
    usage.set(hex(row.mailbox), { n: row.n, bytes: row.bytes });
  }
}
loadUsage();

function addUsage(key: string, n: number, bytes: number): void {
  const u = usage.get(key);
  if (u === undefined) {
    if (n > 0) usage.set(key, { n, bytes });
    return;
  }
  u.n += n;
  u.bytes += bytes;
  if (u.n <= 0) usage.delete(key);
}

/**
 * Usage changes of the operation in progress, applied when its savepoint is released (so that the
 * next operation of the same batch sees them). If the whole transaction fails, usage is reloaded.
 */
let pendingUsage: [string, number, number][] = [];

function storeMessage(input: StoreMessageInput): StoreResultWire {
  const keys: string[] = [];
  for (const d of input.deliveries) {
    const key = hex(d.mailbox);
    keys.push(key);
    const u = usage.get(key);
    const size = d.prelude.length + input.records.length;
    const limit =
      (u?.n ?? 0) + 1 > input.limits.maxMessages ? 'messages' : (u?.bytes ?? 0) + size > input.limits.maxBytes ? 'bytes' : undefined;
    if (limit !== undefined) {
      // A retry of a message stored before the mailbox filled up is still answered as stored.
      if (st.messageExists.get(input.messageId) !== undefined) return 'duplicate';
      return [limit, input.deliveries.indexOf(d)];
    }
  }
  const inserted = st.insertMessage.run(input.messageId, input.records, input.storedAt, input.expiresAt, input.dedupeUntil);
  if (inserted.changes === 0) return 'duplicate';
  const ref = inserted.lastInsertRowid;
  const seqs: number[] = [];
  input.deliveries.forEach((d, i) => {
    const size = d.prelude.length + input.records.length;
    seqs.push(Number(st.insertDelivery.run(d.mailbox, ref, d.prelude, size).lastInsertRowid));
    pendingUsage.push([keys[i] as string, 1, size]);
  });
  return seqs;
}

function ack(mailbox: Uint8Array, messageIds: Uint8Array[], now: number): number {
  const key = hex(mailbox);
  let deleted = 0;
  for (const id of messageIds) {
    const ref = st.messageRef.get(id) as number | undefined;
    if (ref === undefined) continue;
    const rows = st.deleteDelivery.all(ref, mailbox) as { size: number }[];
    if (rows.length === 0) continue;
    deleted += rows.length;
    for (const r of rows) pendingUsage.push([key, -1, -r.size]);
    if (st.anyDelivery.get(ref) === undefined && st.tombstone.run(ref, now).changes === 0) st.deleteMessage.run(ref);
  }
  return deleted;
}

function putPrekeys(
  mailbox: Uint8Array,
  prekeys: WriteOpOf<'putPrekeys'>['prekeys'],
  signed: WriteOpOf<'putPrekeys'>['signed'],
  max: number,
) {
  const have = st.prekeyCount.get(mailbox) as number;
  const fresh = new Set<number>();
  for (const p of prekeys) if (st.prekeyExists.get(mailbox, p.id) === undefined) fresh.add(p.id);
  const count = have + fresh.size;
  if (count > max) return { status: 'limit', count: have } satisfies PutPrekeysResult;
  for (const p of prekeys) st.putPrekey.run(mailbox, p.id, p.bytes);
  if (signed !== undefined) st.putSigned.run(mailbox, signed.id, signed.bytes);
  return { status: 'ok', count } satisfies PutPrekeysResult;
}

function takePrekey(mailbox: Uint8Array): TakenPrekeys {
  const out: TakenPrekeys = { remaining: 0 };
  const first = st.firstPrekey.get(mailbox) as { id: number; bytes: Buffer } | undefined;
  if (first !== undefined) {
    st.deletePrekey.run(mailbox, first.id);
    out.oneTime = { id: first.id, bytes: new Uint8Array(first.bytes) };
  }
  const signed = st.signedPrekey.get(mailbox) as { id: number; bytes: Buffer } | undefined;
  if (signed !== undefined) out.signed = { id: signed.id, bytes: new Uint8Array(signed.bytes) };
  out.remaining = st.prekeyCount.get(mailbox) as number;
  return out;
}

function putDirectory(e: DirectoryRecord): null {
  st.putDirectory.run(e.deviceCertId, e.personId, e.personCertId, e.name, e.unit, e.personCert, e.deviceCert, e.publishedAt);
  return null;
}

function putRevocation(bytes: Uint8Array, sequence: number): boolean {
  const current = st.revocationSequence.get() as number | undefined;
  if (current !== undefined && sequence <= current) return false;
  st.putRevocation.run(sequence, bytes);
  return true;
}

function expire(now: number): { deliveries: number; messages: number } {
  let deliveries = 0;
  let messages = 0;
  for (const ref of st.expiredMessages.all(now) as number[]) {
    for (const row of st.deleteDeliveriesOf.all(ref) as { mailbox: Buffer; size: number }[]) {
      pendingUsage.push([hex(row.mailbox), -1, -row.size]);
      deliveries++;
    }
    st.deleteMessage.run(ref);
    messages++;
  }
  messages += st.expireTombstones.run(now).changes;
  return { deliveries, messages };
}

type WriteOpOf<K extends WriteOp['op']> = Extract<WriteOp, { op: K }>;

function apply(op: WriteOp): unknown {
  switch (op.op) {
    case 'store':
      return storeMessage(op.input);
    case 'ack':
      return ack(op.mailbox, op.messageIds, op.now);
    case 'putPrekeys':
      return putPrekeys(op.mailbox, op.prekeys, op.signed, op.max);
    case 'takePrekey':
      return takePrekey(op.mailbox);
    case 'putDirectory':
      return putDirectory(op.entry);
    case 'putRevocation':
      return putRevocation(op.bytes, op.sequence);
    case 'expire':
      return expire(op.now);
    case 'flush':
      return null;
  }
}

/**
 * One batch in one transaction. Operations check everything they can before writing, so they
 * fail, if at all, before their first write; then no savepoint is needed (a savepoint per
 * operation costs more than the operation: SQLite journals every page it first touches).
 * Should an operation still throw midway, the batch is rolled back and run again with one
 * savepoint per operation, so that only that operation fails.
 */
const fastBatch = db.transaction((ops: WriteOp[]) => {
  const results: OpResult[] = [];
  for (const op of ops) {
    pendingUsage = [];
    results.push({ id: op.id, ok: true, value: apply(op) });
    for (const [key, n, bytes] of pendingUsage) addUsage(key, n, bytes);
  }
  return results;
});

const one = db.transaction((op: WriteOp) => apply(op));
const safeBatch = db.transaction((ops: WriteOp[]) => {
  const results: OpResult[] = [];
  for (const op of ops) {
    pendingUsage = [];
    try {
      results.push({ id: op.id, ok: true, value: one(op) });
      for (const [key, n, bytes] of pendingUsage) addUsage(key, n, bytes);
    } catch (err) {
      // The savepoint rolled back; the usage changes of this operation go with it.
      results.push({ id: op.id, ok: false, error: (err as Error).message });
    }
  }
  return results;
});

function runBatch(ops: WriteOp[]): OpResult[] {
  try {
    return fastBatch.immediate(ops);
  } catch {
    // Usage was updated as the operations ran; the rollback undid their rows, so recount.
    loadUsage();
    return safeBatch.immediate(ops);
  }
}

const queue: WriteOp[] = [];
let scheduled = false;
let closing = false;

function take(request: WorkerRequest): void {
  if ('close' in request) closing = true;
  else for (const op of request.ops) queue.push(op);
}

function commit(): void {
  scheduled = false;
  // Take everything the main thread queued while the previous transaction was committing.
  for (let m = receiveMessageOnPort(port as never); m !== undefined; m = receiveMessageOnPort(port as never)) take(m.message);
  while (queue.length > 0) {
    const ops = queue.splice(0, config.maxBatch);
    const t0 = process.hrtime.bigint();
    let results: OpResult[];
    try {
      results = runBatch(ops);
    } catch (err) {
      // The whole transaction failed (disk full, I/O error): nothing of it is stored.
      const message = (err as Error).message;
      results = ops.map((op) => ({ id: op.id, ok: false, error: message }));
      loadUsage();
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    post({ results, ops: ops.length, seconds });
    if (queue.length > 0 && !closing) break;
  }
  if (queue.length > 0) schedule();
  else if (closing) {
    try {
      db.pragma('wal_checkpoint(TRUNCATE)');
    } finally {
      db.close();
      post({ closed: true });
      port?.close();
    }
  }
}

function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  if (config.commitDelayMs > 0) setTimeout(commit, config.commitDelayMs);
  else setImmediate(commit);
}

port.on('message', (request: WorkerRequest) => {
  take(request);
  schedule();
});

post({ ready: true });
