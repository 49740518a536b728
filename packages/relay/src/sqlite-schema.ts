/**
 * The SQLite layout of a relay data folder (spec/relay.md, "SQLite store"), shared by the writer
 * thread, the reader on the main thread, and backup/restore.
 *
 * Mail is stored as a log that the in-memory index (mail-index.ts) is rebuilt from at open:
 * - `messages`: one row per stored envelope while any of its deliveries waits: the routes
 *   (mailbox and one-entry prelude of each) and the record stream, stored once however many
 *   mailboxes it goes to. The row id is the seq of its first delivery (route i has seq id + i);
 *   seqs are handed out by the relay and never reused (`meta.next_seq`). No sender identity is
 *   stored. The row is deleted when its last delivery is acknowledged or expires.
 * - `acked`: the seq of each acknowledged delivery whose message still has others waiting
 *   (deleted with the message).
 * - `seen`: one row per commit, the ids of the messages it stored, remembered until the dedupe
 *   window ends so that a retried Send is not stored twice.
 * - `prekeys` (one-time, never restored from a backup), `signed_prekeys`, `directory`,
 *   `revocation` (the newest list only), `meta` (schema version, next seq).
 */
import type { Database } from 'better-sqlite3';

export const DB_FILE = 'relay.db';
export const SCHEMA_VERSION = 2;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY,
  message_id BLOB NOT NULL,
  stored_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  routes BLOB NOT NULL,
  records BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS acked (seq INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS seen (
  id INTEGER PRIMARY KEY,
  until INTEGER NOT NULL,
  ids BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS seen_until ON seen (until);
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
  if (row === undefined) {
    db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run('schema', SCHEMA_VERSION);
    db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run('next_seq', 1);
  } else if (row.value !== SCHEMA_VERSION) throw new Error(`relay database schema ${row.value}, this relay understands ${SCHEMA_VERSION}`);
}

/** Removes every one-time prekey: they must never be handed out twice, so no copy may come back. */
export function wipeOneTimePrekeys(db: Database): number {
  return db.prepare('DELETE FROM prekeys').run().changes;
}

/** Bytes per route in `messages.routes` before its prelude: mailbox (16) and prelude length (u32be). */
export const ROUTE_HEAD = 20;

/** Encodes a message's routes at `at` in `out` (`view` over the same bytes): per route, mailbox || u32be(prelude length) || prelude. */
export function encodeRoutes(
  mailboxes: readonly Uint8Array[],
  preludes: readonly Uint8Array[],
  out: Uint8Array,
  view: DataView,
  at: number,
): number {
  let o = at;
  for (let i = 0; i < mailboxes.length; i++) {
    const prelude = preludes[i] as Uint8Array;
    out.set(mailboxes[i] as Uint8Array, o);
    view.setUint32(o + 16, prelude.length);
    out.set(prelude, o + ROUTE_HEAD);
    o += ROUTE_HEAD + prelude.length;
  }
  return o - at;
}

/** Decodes `messages.routes`; the database is trusted, but a torn value fails loudly. */
export function decodeRoutes(routes: Uint8Array): { mailboxes: Uint8Array[]; preludes: Uint8Array[] } {
  const mailboxes: Uint8Array[] = [];
  const preludes: Uint8Array[] = [];
  const view = new DataView(routes.buffer, routes.byteOffset, routes.byteLength);
  for (let o = 0; o < routes.length; ) {
    if (o + ROUTE_HEAD > routes.length) throw new Error('relay database: truncated routes');
    const length = view.getUint32(o + 16);
    if (o + ROUTE_HEAD + length > routes.length) throw new Error('relay database: truncated routes');
    mailboxes.push(routes.subarray(o, o + 16));
    preludes.push(routes.subarray(o + ROUTE_HEAD, o + ROUTE_HEAD + length));
    o += ROUTE_HEAD + length;
  }
  return { mailboxes, preludes };
}
