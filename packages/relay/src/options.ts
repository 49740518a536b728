/**
 * Relay options and limits. Every limit is an option with a documented default
 * (spec/relay.md, "Limits"); `resolveOptions` checks them once at start-up.
 */
import { DEFAULT_MAX_FRAME_SIZE } from '@valise/protocol';
import type { Logger } from 'pino';
import type { Notifier } from './notifier.js';
import type { RelayStore } from './store.js';

export interface RelayLimits {
  /** Largest WebSocket message (ws `maxPayload`); above it the socket is closed with 1009. Default 32 MiB. */
  maxFrameBytes: number;
  /** Requests per second per device (token bucket refill); Acks are not counted. Default 100. */
  messagesPerSecond: number;
  /** Token bucket size: requests a device may make at once after a quiet period. Default 500. */
  burst: number;
  /** Most deliveries waiting in one mailbox; a Send to a full mailbox fails with `mailbox-full`. Default 10000. */
  mailboxMaxMessages: number;
  /** Most bytes waiting in one mailbox (each delivery counts its prelude and the shared records). Default 1 GiB. */
  mailboxMaxBytes: number;
  /** How long an unacknowledged delivery is kept, in seconds. Default 30 days. */
  ttlSeconds: number;
  /** How long a client message id is remembered, so that a retried Send is not stored twice. Default 1 day. */
  dedupeWindowSeconds: number;
  /** Deliveries pushed to one connection and not yet acknowledged before the relay waits for Acks. Default 1024. */
  maxInFlight: number;
  /** The relay stops pushing deliveries while a socket has more than this many bytes unsent. Default 1 MiB. */
  sendHighWaterBytes: number;
  /** A socket with more unsent bytes than this is terminated (a peer that stopped reading). Default 64 MiB. */
  maxBufferedBytes: number;
  /** Requests of one connection in progress before the relay stops reading from it. Default 256. */
  maxPendingRequests: number;
  /** Most open connections; further upgrades get 503. Default 10000. */
  maxConnections: number;
  /** Most outstanding challenges; the oldest is dropped when full. Default 100000. */
  maxPendingChallenges: number;
  /** Lifetime of a challenge, in seconds. Default 60. */
  challengeTtlSeconds: number;
  /** Interval of WebSocket pings; a peer that has not answered the previous ping is terminated. Default 30000 ms. */
  heartbeatIntervalMs: number;
  /** Undecodable frames tolerated per connection before it is closed with 1008. Default 16. */
  maxBadFrames: number;
  /** Most one-time prekeys stored per mailbox. Default 1000. */
  maxPrekeysPerMailbox: number;
  /** A mailbox owner is sent PrekeysLow when fewer one-time prekeys than this remain. Default 10. */
  prekeysLowThreshold: number;
  /** Most entries in a directory result (at most 256). Default 256. */
  maxDirectoryResults: number;
  /** Interval of the expiry sweep, in ms. Default 60000. */
  expiryIntervalMs: number;
  /** Extra time to gather writes into a batch for the writer thread, in ms (0: the end of the event-loop turn). Default 0. */
  commitDelayMs: number;
  /** Envelope bytes of committed, unacknowledged messages the SQLite store keeps in memory (the rest is read back when needed). Default 64 MiB. */
  storeCacheBytes: number;
  /** Most message ids the SQLite store remembers for deduplication (about 90 bytes each); beyond, the oldest are forgotten early. Default 5,000,000. */
  dedupeMaxIds: number;
}

export const DEFAULT_LIMITS: Readonly<RelayLimits> = Object.freeze({
  maxFrameBytes: DEFAULT_MAX_FRAME_SIZE,
  messagesPerSecond: 100,
  burst: 500,
  mailboxMaxMessages: 10_000,
  mailboxMaxBytes: 1 << 30,
  ttlSeconds: 30 * 24 * 3600,
  dedupeWindowSeconds: 24 * 3600,
  maxInFlight: 1024,
  sendHighWaterBytes: 1 << 20,
  maxBufferedBytes: 64 << 20,
  maxPendingRequests: 256,
  maxConnections: 10_000,
  maxPendingChallenges: 100_000,
  challengeTtlSeconds: 60,
  heartbeatIntervalMs: 30_000,
  maxBadFrames: 16,
  maxPrekeysPerMailbox: 1000,
  prekeysLowThreshold: 10,
  maxDirectoryResults: 256,
  expiryIntervalMs: 60_000,
  commitDelayMs: 0,
  storeCacheBytes: 64 << 20,
  dedupeMaxIds: 5_000_000,
});

export interface RelayOptions {
  /** Folder of the SQLite store (created if missing). Required unless `store` is given. */
  dataDir?: string;
  /** The organisation root's Ed25519 public key (32 bytes): every device chain must lead to it. */
  orgRootPublicKey: Uint8Array;
  /** Address to bind. Default `127.0.0.1`. */
  host?: string;
  /** Port to bind; 0 picks a free one. Default 0. */
  port?: number;
  /**
   * Accepted values of the HTTP `Host` header, which devices sign. Set it to the relay's public
   * name(s) in production, so that a signature made for another relay is refused. Default: any.
   */
  publicHosts?: string[];
  limits?: Partial<RelayLimits>;
  /** A pino logger. Default: pino at level `info` on stdout. */
  logger?: Logger;
  /** Storage; default the SQLite store in `dataDir`. */
  store?: RelayStore;
  /** Fan-out between connections (and nodes); default in-process. */
  notifier?: Notifier;
  /** A revocation list to start with; kept only if newer than the stored one. */
  revocationList?: Uint8Array;
  /** Clock in milliseconds since the epoch; for tests. Default `Date.now`. */
  clock?: () => number;
}

export interface ResolvedOptions {
  dataDir: string | undefined;
  orgRootPublicKey: Uint8Array;
  host: string;
  port: number;
  publicHosts: ReadonlySet<string> | undefined;
  limits: Readonly<RelayLimits>;
  clock: () => number;
}

const positive = (name: string, v: number, integer = true) => {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (integer && !Number.isSafeInteger(v))) {
    throw new TypeError(`relay limits.${name}: expected a non-negative ${integer ? 'integer' : 'number'}, got ${String(v)}`);
  }
};

export function resolveOptions(options: RelayOptions): ResolvedOptions {
  if (!(options.orgRootPublicKey instanceof Uint8Array) || options.orgRootPublicKey.length !== 32) {
    throw new TypeError('relay: orgRootPublicKey must be the 32-byte Ed25519 public key of the organisation root');
  }
  if (options.dataDir === undefined && options.store === undefined) throw new TypeError('relay: dataDir (or a store) is required');
  const limits = { ...DEFAULT_LIMITS, ...(options.limits ?? {}) };
  for (const [k, v] of Object.entries(limits)) positive(k, v, k !== 'messagesPerSecond');
  if (limits.maxDirectoryResults > 256) throw new TypeError('relay limits.maxDirectoryResults: at most 256');
  const port = options.port ?? 0;
  positive('port', port);
  return {
    dataDir: options.dataDir,
    orgRootPublicKey: Uint8Array.from(options.orgRootPublicKey),
    host: options.host ?? '127.0.0.1',
    port,
    publicHosts: options.publicHosts === undefined ? undefined : new Set(options.publicHosts.map((h) => h.toLowerCase())),
    limits: Object.freeze(limits),
    clock: options.clock ?? Date.now,
  };
}
