/**
 * The SQLite writer thread: every write of the relay runs here, one transaction per batch (group
 * commit). While one transaction commits (an fsync, about a millisecond on a real disk), the
 * main thread keeps serving sockets and gathering the next batch. Results are posted back only
 * after the commit returned.
 *
 * Mail statements cannot fail for a logical reason (the main thread's index decided everything
 * they do), so a failed transaction is an I/O failure: the batch is reported as failed and the
 * store stops. The other operations run each in a savepoint, so that one that fails fails alone.
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import {
  INSERT_FIELDS,
  type MailBatch,
  type OpResult,
  type WorkerConfig,
  type WorkerRequest,
  type WorkerResponse,
  type WriteOp,
} from './sqlite-protocol.js';
import { applyPragmas, migrate } from './sqlite-schema.js';
import type { DirectoryRecord, PutPrekeysResult, TakenPrekeys } from './store.js';

const port = parentPort;
if (port === null) throw new Error('sqlite-worker must run in a worker thread');
const config = workerData as WorkerConfig;
const post = (m: WorkerResponse) => port.postMessage(m);

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
  insertMessage: db.prepare('INSERT INTO messages (id, message_id, stored_at, expires_at, routes, records) VALUES (?, ?, ?, ?, ?, ?)'),
  insertAcked: db.prepare('INSERT OR IGNORE INTO acked (seq) VALUES (?)'),
  deleteMessages: db.prepare('DELETE FROM messages WHERE id >= ? AND id < ?'),
  deleteAcked: db.prepare('DELETE FROM acked WHERE seq >= ? AND seq < ?'),
  insertSeen: db.prepare('INSERT INTO seen (until, ids) VALUES (?, ?)'),
  forgetSeen: db.prepare('DELETE FROM seen WHERE until <= ?'),
  nextSeq: db.prepare("UPDATE meta SET value = ? WHERE key = 'next_seq' AND value < ?"),
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
};

/** Writes the mail of a batch; returns how many rows it wrote or deleted. */
function writeMail(b: MailBatch): number {
  let writes = 0;
  let o = 0;
  const f = b.inserts;
  for (let i = 0; i < f.length; i += INSERT_FIELDS) {
    // row, storedAt, expiresAt, dedupeUntil (used by the seen row), routes length, records length
    const routesLength = f[i + 4] as number;
    const recordsLength = f[i + 5] as number;
    // Views into the transferred bytes: better-sqlite3 binds any Uint8Array without a copy of ours.
    const id = b.bytes.subarray(o, o + 16);
    const routes = b.bytes.subarray(o + 16, o + 16 + routesLength);
    const records = b.bytes.subarray(o + 16 + routesLength, o + 16 + routesLength + recordsLength);
    st.insertMessage.run(f[i], id, f[i + 1], f[i + 2], routes, records);
    o += 16 + routesLength + recordsLength;
    writes++;
  }
  for (const seq of b.acked) st.insertAcked.run(seq);
  writes += b.acked.length;
  for (let i = 0; i < b.deleted.length; i += 3) {
    const from = b.deleted[i] as number;
    const to = b.deleted[i + 1] as number;
    writes += st.deleteMessages.run(from, to).changes;
    if (b.deleted[i + 2] === 1) st.deleteAcked.run(from, to);
  }
  if (b.seenIds.length > 0) st.insertSeen.run(b.seenUntil, b.seenIds);
  if (b.forgetBefore > 0) st.forgetSeen.run(b.forgetBefore);
  st.nextSeq.run(b.nextSeq, b.nextSeq);
  return writes;
}

function putPrekeys(op: Extract<WriteOp, { op: 'putPrekeys' }>): PutPrekeysResult {
  const have = st.prekeyCount.get(op.mailbox) as number;
  const fresh = new Set<number>();
  for (const p of op.prekeys) if (st.prekeyExists.get(op.mailbox, p.id) === undefined) fresh.add(p.id);
  const count = have + fresh.size;
  if (count > op.max) return { status: 'limit', count: have };
  for (const p of op.prekeys) st.putPrekey.run(op.mailbox, p.id, p.bytes);
  if (op.signed !== undefined) st.putSigned.run(op.mailbox, op.signed.id, op.signed.bytes);
  return { status: 'ok', count };
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

function apply(op: WriteOp): unknown {
  switch (op.op) {
    case 'putPrekeys':
      return putPrekeys(op);
    case 'takePrekey':
      return takePrekey(op.mailbox);
    case 'putDirectory':
      return putDirectory(op.entry);
    case 'putRevocation':
      return putRevocation(op.bytes, op.sequence);
    case 'flush':
      return null;
  }
}

// Nested inside the transaction, `one` runs in a savepoint.
const one = db.transaction((op: WriteOp) => apply(op));

/** Every batch queued while the previous transaction ran, in one transaction. */
const commitBatches = db.transaction((batches: MailBatch[]): { results: OpResult[]; writes: number } => {
  let writes = 0;
  const results: OpResult[] = [];
  for (const b of batches) {
    writes += writeMail(b);
    for (const op of b.ops) {
      try {
        results.push({ id: op.id, ok: true, value: one(op) });
        writes++;
      } catch (err) {
        results.push({ id: op.id, ok: false, error: (err as Error).message });
      }
    }
  }
  return { results, writes };
});

const queue: MailBatch[] = [];
let scheduled = false;
let stopped = false;
let closing = false;

function take(request: WorkerRequest): void {
  if ('close' in request) closing = true;
  else queue.push(request.batch);
}

function commit(): void {
  scheduled = false;
  // Take everything the main thread posted while the previous transaction was committing.
  for (let m = receiveMessageOnPort(port as never); m !== undefined; m = receiveMessageOnPort(port as never))
    take(m.message as WorkerRequest);
  if (queue.length > 0) {
    const batches = queue.splice(0);
    if (stopped) post({ failed: 'an earlier transaction failed' });
    else {
      const t0 = process.hrtime.bigint();
      try {
        const { results, writes } = commitBatches.immediate(batches);
        post({ committed: true, batches: batches.length, results, writes, seconds: Number(process.hrtime.bigint() - t0) / 1e9 });
      } catch (err) {
        // Nothing of these batches is stored (disk full, I/O error). The main thread's index no
        // longer matches the database, so the store stops; a restart rebuilds it from the database.
        stopped = true;
        post({ failed: (err as Error).message });
      }
    }
  }
  if (closing) close();
}

function close(): void {
  try {
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
    post({ closed: true });
    port?.close();
  }
}

port.on('message', (request: WorkerRequest) => {
  take(request);
  if (!scheduled) {
    scheduled = true;
    setImmediate(commit);
  }
});

post({ ready: true });
