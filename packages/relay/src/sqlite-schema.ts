/**
 * The SQLite layout of a relay data folder (spec/relay.md, "Storage"), shared by the writer
 * thread, the reader on the main thread, and backup/restore.
 *
 * - `messages`: one row per stored envelope: the record stream, stored once however many
 *   mailboxes it goes to. Its `message_id` is derived from the sender and the client message id
 *   (relay-frames.ts, `relayMessageId`), so the unique index on it also makes a retried Send
 *   idempotent. When its last delivery is acknowledged, the records are dropped and the row stays
 *   as a small tombstone (`live = 0`) until the dedupe window ends. No sender identity is stored.
 * - `deliveries`: one row per (mailbox, message): the recipient's one-entry prelude. The rowid
 *   `seq` is AUTOINCREMENT so that it is never reused: connections page through a mailbox by seq.
 * - `prekeys` (one-time, never restored from a backup), `signed_prekeys`, `directory`,
 *   `revocation` (the newest list only), `meta` (schema version).
 */
import type { Database } from 'better-sqlite3';

export const DB_FILE = 'relay.db';
export const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY,
  message_id BLOB NOT NULL UNIQUE,
  records BLOB NOT NULL,
  live INTEGER NOT NULL,
  stored_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  dedupe_until INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_expiry ON messages (expires_at);
CREATE INDEX IF NOT EXISTS messages_tombstones ON messages (dedupe_until) WHERE live = 0;
CREATE TABLE IF NOT EXISTS deliveries (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  mailbox BLOB NOT NULL,
  message_ref INTEGER NOT NULL,
  prelude BLOB NOT NULL,
  size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_mailbox ON deliveries (mailbox);
CREATE INDEX IF NOT EXISTS deliveries_message ON deliveries (message_ref);
CREATE TABLE IF NOT EXISTS prekeys (
  mailbox BLOB NOT NULL,
  id INTEGER NOT NULL,
  bytes BLOB NOT NULL,
  PRIMARY KEY (mailbox, id)
);
CREATE TABLE IF NOT EXISTS signed_prekeys (
  mailbox BLOB PRIMARY KEY,
  id INTEGER NOT NULL,
  bytes BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS directory (
  device_cert_id BLOB PRIMARY KEY,
  person_id BLOB NOT NULL,
  person_cert_id BLOB NOT NULL,
  name TEXT NOT NULL,
  unit TEXT NOT NULL,
  person_cert BLOB NOT NULL,
  device_cert BLOB NOT NULL,
  published_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS directory_person ON directory (person_id);
CREATE TABLE IF NOT EXISTS revocation (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  sequence INTEGER NOT NULL,
  bytes BLOB NOT NULL
);
`;

/**
 * Pragmas of every connection: WAL so that readers never block the writer, `synchronous=FULL`
 * so that a commit survives power loss, `secure_delete=FAST` so that acknowledged envelopes are
 * overwritten in place when that costs no extra I/O.
 */
export function applyPragmas(db: Database): void {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  db.pragma('secure_delete = FAST');
  db.pragma('foreign_keys = OFF');
  // Savepoint and temporary journals in memory: the slow path of a batch uses savepoints.
  db.pragma('temp_store = MEMORY');
  db.pragma('cache_size = -65536');
  db.pragma('wal_autocheckpoint = 8192');
}

/** Creates the tables if needed and checks the schema version. */
export function migrate(db: Database): void {
  db.exec(SCHEMA);
  const row = db.prepare('SELECT value FROM meta WHERE key = ?').get('schema') as { value: number } | undefined;
  if (row === undefined) db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run('schema', SCHEMA_VERSION);
  else if (row.value !== SCHEMA_VERSION) throw new Error(`relay database schema ${row.value}, this relay understands ${SCHEMA_VERSION}`);
}

/** Removes every one-time prekey: they must never be handed out twice, so no copy may come back. */
export function wipeOneTimePrekeys(db: Database): number {
  return db.prepare('DELETE FROM prekeys').run().changes;
}
