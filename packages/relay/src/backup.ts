/**
 * Backups of a relay data folder (spec/relay.md, "Backups"). A backup is a consistent copy of the
 * database taken with SQLite's online backup API (safe while the relay runs), from which every
 * one-time prekey is removed and whose free pages are wiped (VACUUM): a one-time prekey must
 * never be handed out twice, so none may ever come back from a backup. Restoring wipes them
 * again, so that a copy made by other means cannot bring any back either.
 */
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { applyPragmas, DB_FILE, migrate, wipeOneTimePrekeys } from './sqlite-schema.js';

/** Writes a backup of the relay in `dataDir` to `outFile` (which must not exist). */
export async function backupRelay(dataDir: string, outFile: string): Promise<{ bytes: number; prekeysRemoved: number }> {
  const source = join(dataDir, DB_FILE);
  if (!existsSync(source)) throw new Error(`no relay database in ${dataDir}`);
  if (existsSync(outFile)) throw new Error(`${outFile} exists already`);
  const db = new Database(source, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    await db.backup(outFile);
  } finally {
    db.close();
  }
  const copy = new Database(outFile);
  try {
    copy.pragma('secure_delete = ON');
    const prekeysRemoved = wipeOneTimePrekeys(copy);
    // A single self-contained file: no WAL beside it, and no freed page still holding a prekey.
    copy.pragma('journal_mode = DELETE');
    copy.exec('VACUUM');
    const bytes = (copy.prepare('SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()').pluck().get() as number) ?? 0;
    return { bytes, prekeysRemoved };
  } finally {
    copy.close();
  }
}

/**
 * Restores a backup into `dataDir` (which must hold no relay database unless `force`), and wipes
 * every one-time prekey of the restored copy.
 */
export function restoreRelay(backupFile: string, dataDir: string, options: { force?: boolean } = {}): { prekeysRemoved: number } {
  if (!existsSync(backupFile)) throw new Error(`no such backup: ${backupFile}`);
  const target = join(dataDir, DB_FILE);
  if (existsSync(target) && options.force !== true) throw new Error(`${dataDir} holds a relay database already (use force to replace it)`);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  for (const suffix of ['', '-wal', '-shm']) rmSync(target + suffix, { force: true });
  copyFileSync(backupFile, target);
  const db = new Database(target, { fileMustExist: true });
  try {
    applyPragmas(db);
    migrate(db);
    db.pragma('secure_delete = ON');
    const prekeysRemoved = wipeOneTimePrekeys(db);
    db.pragma('wal_checkpoint(TRUNCATE)');
    return { prekeysRemoved };
  } finally {
    db.close();
  }
}
