/**
 * `@valise/relay`: a store-and-forward relay over WebSocket that never holds a key
 * (spec/relay.md). It parses only the public prelude of an envelope, stores the record stream
 * once and one small per-recipient prelude per mailbox, and delivers at least once.
 */
export { type AuthResult, ChallengeTable } from './auth.js';
export { backupRelay, restoreRelay } from './backup.js';
export { RELAY_USAGE, type RelayMainIo, readOrgRootPublicKey, relayMain, serveFromArgs, untilStopSignal } from './main.js';
export { type ControlEvent, type DeliveryNote, InProcessNotifier, type Notifier } from './notifier.js';
export { DEFAULT_LIMITS, type RelayLimits, type RelayOptions } from './options.js';
export { type RunningRelay, startRelay } from './server.js';
export { splitForRoutes } from './session.js';
export { DB_FILE } from './sqlite-schema.js';
export { SqliteStore, type SqliteStoreOptions } from './sqlite-store.js';
export type {
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
