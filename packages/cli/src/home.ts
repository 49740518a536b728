/**
 * The home folder (spec/cli.md, "Home folder"): everything a `valise` user holds, encrypted at
 * rest. One state file, encrypted under the passphrase, holds the keys, certificates, indexes
 * and a random data key; received items are separate files encrypted under that data key, so
 * that a passphrase is stretched once per command, not once per item.
 *
 *     <home>/state.valise        the state document (scrypt + XChaCha20-Poly1305)
 *     <home>/items/<n>.valise    received item n (data key + XChaCha20-Poly1305)
 *     <home>/records/<id>.valise tracing document of fingerprinted item <id> this home sent (data key)
 *     <home>/lock                held while a command uses the home (pid inside)
 *     <home>/org-root.pub        the organisation root public key, hex (written by `org init`)
 *     <home>/bundles/            bundles written by `person add` and `device enrol`
 *     <home>/revocation/         revocation lists written by `revoke`
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { CliError, ExitCode } from './errors.js';
import type { PassphraseSource } from './passphrase.js';
import {
  dataKey,
  deriveScryptKey,
  type FileKey,
  FilePurpose,
  KeySource,
  newScryptKey,
  openFile,
  readFileBytes,
  type ScryptParams,
  SecureFileError,
  sealFile,
  writeFileAtomic,
} from './secure-file.js';

export const STATE_FILE = 'state.valise';
export const ITEMS_DIR = 'items';
export const RECORDS_DIR = 'records';
export const LOCK_FILE = 'lock';
export const ORG_ROOT_FILE = 'org-root.pub';
export const BUNDLES_DIR = 'bundles';
export const REVOCATION_DIR = 'revocation';

export const HOME_FORMAT = 'valise-home';
export const HOME_VERSION = 1;

/** The organisation administrator's part of a home (`org init`). Keys and certificates in hex. */
export interface OrgState {
  rootSecretKey: string;
  rootPublicKey: string;
  orgId: string;
  createdAt: number;
  people: { personId: string; personCert: string; bundle?: string }[];
  offices: { officeId: string; officeCert: string }[];
  holders: { holderCert: string }[];
  devices: { personId: string; deviceCert: string; label: string; bundle?: string }[];
  revocation: { sequence: number; revoked: string[]; list?: string };
  /** The office designated as the records office (`office add --records-office`), carried in bundles and directory files. */
  recordsOfficeId?: string;
}

/** A registered device's part of a home (`register`). */
export interface DeviceState {
  orgRootPublicKey: string;
  personCert: string;
  deviceCert: string;
  signingSecretKey: string;
  encryptionSecretKey: string;
  relayUrl?: string;
  registeredAt: number;
}

/** Someone this home has seen in the relay directory or as a sender. */
export interface ContactState {
  personCert: string;
  devices: string[];
  seenAt: number;
}

/** What the inbox lists; the item itself is in items/<n>.valise. */
export interface ItemIndexEntry {
  n: number;
  messageId: string;
  envelopeId: string;
  senderDevice: string;
  senderPerson: string;
  from: string;
  fromUnit: string;
  office?: string;
  subject: string;
  classification: string;
  createdAt: number;
  receivedAt: number;
  bodyLength: number;
  read: boolean;
  /** A tracing-record item (records office): the fingerprinted item it traces. */
  tracing?: { itemId: string; envelopes: string[]; recipients: number };
}

export interface RejectedEntry {
  messageId: string;
  reason: string;
  at: number;
}

export interface SentEntry {
  envelopeId: string;
  messageId: string;
  subject: string;
  classification: string;
  to: string[];
  devices: number;
  at: number;
  /** Fingerprinted items: the tracing item id (its record is in records/). */
  tracingItemId?: string;
}

/** A fingerprinted item this home sent; its tracing document is in records/<itemId>.valise. */
export interface RecordIndexEntry {
  itemId: string;
  subject: string;
  classification: string;
  createdAt: number;
  /** Envelope ids of the fingerprinted item. */
  envelopes: string[];
  recipients: number;
}

export interface HomeState {
  format: typeof HOME_FORMAT;
  version: typeof HOME_VERSION;
  createdAt: number;
  /** 32 random bytes, hex: the key of the item files. */
  dataKey: string;
  org?: OrgState;
  device?: DeviceState;
  /** The newest verified revocation list of the organisation, hex. */
  revocationList?: string;
  /**
   * Public office and office-holder certificates, hex (root-signed, so self-authenticating), and
   * the office id of the records office if the organisation designated one.
   */
  directory: { offices: string[]; holders: string[]; recordsOffice?: string };
  contacts: Record<string, ContactState>;
  items: ItemIndexEntry[];
  /** Relay message id (hex) -> item number, or 0 for a rejected delivery. */
  seen: Record<string, number>;
  /** Envelope id + sender device certificate id (hex, joined by ':') -> item number. */
  envelopes: Record<string, number>;
  rejected: RejectedEntry[];
  sent: SentEntry[];
  /** Tracing records of the fingerprinted items this home sent (absent in homes that never sent one). */
  records?: RecordIndexEntry[];
  nextItem: number;
}

export interface HomeOptions {
  dir: string;
  passphrases: PassphraseSource;
  /** scrypt parameters for a new home (default {@link DEFAULT_SCRYPT}); an existing home keeps its own. */
  kdf?: ScryptParams;
}

/** `--home`, else `$VALISE_HOME`, else `~/.valise`. */
export function resolveHomeDir(option: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(option ?? env.VALISE_HOME ?? join(homedir(), '.valise'));
}

function emptyState(now: number): HomeState {
  return {
    format: HOME_FORMAT,
    version: HOME_VERSION,
    createdAt: now,
    dataKey: randomBytes(32).toString('hex'),
    directory: { offices: [], holders: [] },
    contacts: {},
    items: [],
    seen: {},
    envelopes: {},
    rejected: [],
    sent: [],
    nextItem: 1,
  };
}

function parseState(plaintext: Uint8Array): HomeState {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(plaintext));
  } catch {
    throw new SecureFileError('damaged-file', 'the home state does not parse', ExitCode.Damaged, 'restore the home folder from a backup');
  }
  const s = doc as HomeState;
  if (typeof s !== 'object' || s === null || s.format !== HOME_FORMAT) {
    throw new SecureFileError('damaged-file', 'the home state is not a valise home document', ExitCode.Damaged);
  }
  if (s.version !== HOME_VERSION) {
    throw new SecureFileError(
      'unsupported-file-version',
      `home state version ${String(s.version)} is not supported`,
      ExitCode.Damaged,
      'use the valise version that wrote it',
    );
  }
  return s;
}

/** Exclusive use of a home by one process: `lock` is created with O_EXCL and holds the pid. */
function acquireLock(dir: string): () => void {
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      let held = true;
      return () => {
        if (!held) return;
        held = false;
        try {
          unlinkSync(path);
        } catch {
          // gone already
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number.parseInt(readFileSync(path, 'utf8'), 10);
      let alive = false;
      if (Number.isInteger(pid) && pid > 0) {
        try {
          process.kill(pid, 0);
          alive = true;
        } catch (e) {
          alive = (e as NodeJS.ErrnoException).code === 'EPERM';
        }
      }
      if (alive) {
        throw new CliError(
          'home-busy',
          `the home ${dir} is in use by process ${pid}`,
          ExitCode.Conflict,
          `wait for the other valise command to finish (if none is running, remove ${path})`,
        );
      }
      // A lock left by a process that died: take it over.
      unlinkSync(path);
    }
  }
  throw new CliError('home-busy', `cannot lock the home ${dir}`, ExitCode.Conflict, `remove ${path} if no valise command is running`);
}

export class Home {
  private released = false;

  private constructor(
    readonly dir: string,
    public state: HomeState,
    private readonly stateKey: FileKey,
    private readonly release: () => void,
  ) {}

  static exists(dir: string): boolean {
    return existsSync(join(dir, STATE_FILE));
  }

  get statePath(): string {
    return join(this.dir, STATE_FILE);
  }

  /**
   * Opens the home in `opts.dir`, creating it if `create` is set and there is none. The returned
   * home is locked until {@link close}.
   */
  static async open(opts: HomeOptions, mode: { create?: boolean } = {}): Promise<Home> {
    const dir = resolve(opts.dir);
    const exists = Home.exists(dir);
    if (!exists && !mode.create) {
      throw new CliError(
        'no-home',
        `no valise home in ${dir}`,
        ExitCode.NotFound,
        'create one with `valise org init` (administrator) or `valise register --bundle FILE --relay URL` (device), or pass --home DIR',
      );
    }
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const release = acquireLock(dir);
    try {
      if (!exists) {
        const passphrase = await opts.passphrases.get('new-home', `the new home ${dir}`);
        const key = newScryptKey(passphrase, opts.kdf);
        const home = new Home(dir, emptyState(Math.floor(Date.now() / 1000)), key, release);
        home.save();
        return home;
      }
      const file = readFileBytes(join(dir, STATE_FILE));
      const passphrase = await opts.passphrases.get('home', `the home ${dir}`);
      const { plaintext, key } = openFile(file, FilePurpose.HomeState, (h) => {
        if (h.source !== KeySource.Scrypt)
          throw new SecureFileError('damaged-file', 'home state not protected by a passphrase', ExitCode.Damaged);
        return deriveScryptKey(passphrase, h.salt, h.scrypt);
      });
      return new Home(dir, parseState(plaintext), key, release);
    } catch (err) {
      release();
      throw err;
    }
  }

  /** Writes the state atomically (fresh nonce, same salt and parameters). */
  save(): void {
    this.assertOpen();
    const plaintext = new TextEncoder().encode(JSON.stringify(this.state));
    writeFileAtomic(this.statePath, sealFile(FilePurpose.HomeState, this.stateKey, plaintext));
  }

  private get itemKey(): FileKey {
    return dataKey(Buffer.from(this.state.dataKey, 'hex'));
  }

  itemPath(n: number): string {
    return join(this.dir, ITEMS_DIR, `${n}.valise`);
  }

  writeItem(n: number, item: unknown): void {
    this.assertOpen();
    mkdirSync(join(this.dir, ITEMS_DIR), { recursive: true, mode: 0o700 });
    writeFileAtomic(this.itemPath(n), sealFile(FilePurpose.Item, this.itemKey, new TextEncoder().encode(JSON.stringify(item))));
  }

  readItem<T>(n: number): T {
    this.assertOpen();
    const { plaintext } = openFile(readFileBytes(this.itemPath(n)), FilePurpose.Item, () => this.itemKey);
    return JSON.parse(new TextDecoder().decode(plaintext)) as T;
  }

  recordPath(itemId: string): string {
    if (!/^[0-9a-f]{32}$/.test(itemId)) throw new Error(`bad tracing item id ${itemId}`);
    return join(this.dir, RECORDS_DIR, `${itemId}.valise`);
  }

  /** Writes a tracing document (encrypted under the data key, purpose 5). */
  writeRecord(itemId: string, document: Uint8Array): void {
    this.assertOpen();
    mkdirSync(join(this.dir, RECORDS_DIR), { recursive: true, mode: 0o700 });
    writeFileAtomic(this.recordPath(itemId), sealFile(FilePurpose.TracingRecord, this.itemKey, document));
  }

  readRecord(itemId: string): Uint8Array {
    this.assertOpen();
    return openFile(readFileBytes(this.recordPath(itemId)), FilePurpose.TracingRecord, () => this.itemKey).plaintext;
  }

  /** A folder inside the home (created, private). */
  subdir(name: string): string {
    const d = join(this.dir, name);
    mkdirSync(d, { recursive: true, mode: 0o700 });
    return d;
  }

  close(): void {
    if (this.released) return;
    this.released = true;
    this.release();
  }

  private assertOpen(): void {
    if (this.released) throw new Error('home already closed');
  }
}

/** Opens a home, runs `fn`, and always releases the lock. */
export async function withHome<T>(opts: HomeOptions, mode: { create?: boolean }, fn: (home: Home) => Promise<T> | T): Promise<T> {
  const home = await Home.open(opts, mode);
  try {
    return await fn(home);
  } finally {
    home.close();
  }
}
