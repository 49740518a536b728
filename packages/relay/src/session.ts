/**
 * One authenticated connection: one device, one mailbox (spec/relay.md, "Frames" and "Delivery").
 *
 * Requests are handled in arrival order up to the point where they are queued for storage, so
 * that Sends from one connection are stored in the order they were sent. Responses that depend
 * on a write (Stored, Ok after Ack, Prekeys) are sent only after the write committed.
 *
 * Delivery: the session keeps a cursor, the seq of the last delivery it pushed. On connect it
 * pages through the mailbox from the store; once the backlog is drained it goes "live" and
 * pushes new deliveries straight from the notifier's notes. Whenever it cannot push (too many
 * unacknowledged deliveries, or the socket's send buffer above the high-water mark), it leaves
 * live mode and resumes paging from the store later, so nothing is skipped or reordered.
 */
import {
  type AckFrame,
  type ClientFrame,
  DecodeError,
  type DirectoryLookupFrame,
  type DirectoryPublishFrame,
  decodeClientFrame,
  encodeDeliverFrame,
  encodeRelayFrame,
  framedEntryPrelude,
  type PrekeyFetchFrame,
  type PrekeyUploadFrame,
  type PreludeFrameLayout,
  peekRequestId,
  RELAY_FRAME_NAMES,
  RelayCloseCode,
  RelayErrorCode,
  type RelayErrorCode as RelayErrorCodeType,
  type RelayFrame,
  RelayFrameType,
  type RelayRoute,
  type RevocationPublishFrame,
  relayMessageId,
  type SendFrame,
  scanPreludeFrame,
  toHex,
  ValiseError,
  type VerifiedDevice,
  VerifyError,
  VerifyReason,
} from '@valise/protocol';
import type { Logger } from 'pino';
import type { RawData, WebSocket } from 'ws';
import { idKey, mailboxKey } from './keys.js';
import type { RelayMetrics } from './metrics.js';
import type { DeliveryNote, Notifier } from './notifier.js';
import type { RelayLimits } from './options.js';
import type { RevocationState } from './revocation.js';
import type { RelayStore, StoreMessageResult } from './store.js';

/** What every session shares with the server. */
export interface RelayContext {
  limits: Readonly<RelayLimits>;
  store: RelayStore;
  notifier: Notifier;
  log: Logger;
  metrics: RelayMetrics;
  revocation: RevocationState;
  rate: RateLimiter;
  nowMs: () => number;
  isDraining: () => boolean;
  /** Adopts a newly published list and disconnects the devices it revokes (every node). */
  onRevocationList: (sequence: number) => void;
}

/** Token buckets per device, shared by all connections of the device. */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly clock: () => number,
  ) {}

  take(key: string): boolean {
    const now = this.clock();
    let b = this.buckets.get(key);
    if (b === undefined) {
      if (this.buckets.size >= 100_000) this.prune(now);
      b = { tokens: this.burst, at: now };
      this.buckets.set(key, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.rate);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Forgets buckets that have refilled completely (they hold no state worth keeping). */
  private prune(now: number): void {
    for (const [k, b] of this.buckets) if (b.tokens + ((now - b.at) / 1000) * this.rate >= this.burst) this.buckets.delete(k);
  }
}

/** Deliveries read per page of a mailbox's backlog. */
const PAGE = 128;
/** While the socket's buffer is above the high-water mark, check again after this long. */
const RETRY_MS = 20;

/** Stored answers waiting for one commit. */
interface StoredGroup {
  durable: Promise<void>;
  requestIds: number[];
  clientMessageIds: Uint8Array[];
  messageIds: Uint8Array[];
}

class RequestError extends Error {
  constructor(
    readonly code: RelayErrorCodeType,
    message: string,
  ) {
    super(message);
  }
}

export class Session {
  readonly mailbox: Uint8Array;
  readonly key: string;
  alive = true;
  private closed = false;
  private cursor = 0;
  private live = false;
  private backlogEnded = false;
  private pumping = false;
  private pumpAgain = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly inflight = new Set<string>();
  private pendingRequests = 0;
  private paused = false;
  private badFrames = 0;
  private readonly unsubscribe: () => void;
  private readonly closedPromise: Promise<void>;
  /** The TCP socket under the WebSocket, corked while frames of one event-loop turn accumulate. */
  private readonly socket: { cork(): void; uncork(): void } | undefined;
  private corked = false;
  private readonly mailboxLimits: { maxMessages: number; maxBytes: number };
  private storedGroup: StoredGroup | undefined;

  constructor(
    private readonly ctx: RelayContext,
    readonly ws: WebSocket,
    readonly device: VerifiedDevice,
    readonly connId: number,
  ) {
    this.mailbox = device.device.certId;
    this.key = mailboxKey(this.mailbox);
    this.mailboxLimits = { maxMessages: ctx.limits.mailboxMaxMessages, maxBytes: ctx.limits.mailboxMaxBytes };
    this.socket = (ws as unknown as { _socket?: { cork(): void; uncork(): void } })._socket;
    this.closedPromise = new Promise((resolve) => ws.once('close', () => resolve()));
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('pong', () => {
      this.alive = true;
    });
    ws.on('close', (code) => this.onClose(code));
    ws.on('error', (err) => ctx.log.debug({ conn: connId, err: err.message }, 'socket error'));
    // Subscribe before reading the backlog: a note that arrives meanwhile makes the pump look again.
    this.unsubscribe = ctx.notifier.subscribe(this.mailbox, (note) => this.onNote(note));
    this.schedulePump();
    void this.announcePrekeys();
  }

  /** Resolves when the socket has closed. */
  get done(): Promise<void> {
    return this.closedPromise;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.ws.close(code, reason);
  }

  terminate(): void {
    this.ws.terminate();
  }

  /** Certificates of this connection (for revocation and expiry checks). */
  certIds(): Uint8Array[] {
    const v = this.device;
    return [v.person.certId, v.device.certId, ...(v.office ? [v.office.certId] : []), ...(v.officeHolder ? [v.officeHolder.certId] : [])];
  }

  /** The earliest end of validity among the connection's certificates (seconds). */
  validUntil(): number {
    const v = this.device;
    return Math.min(v.person.validUntil, v.device.validUntil, v.office?.validUntil ?? Infinity, v.officeHolder?.validUntil ?? Infinity);
  }

  sendFrame(frame: RelayFrame): void {
    this.sendBytes(frame.type, encodeRelayFrame(frame));
  }

  private sendBytes(type: RelayFrame['type'], bytes: Uint8Array): void {
    if (this.closed) return;
    if (this.ws.bufferedAmount > this.ctx.limits.maxBufferedBytes) {
      // A peer that stopped reading: close frames would queue behind the same data.
      this.ctx.log.info({ conn: this.connId, buffered: this.ws.bufferedAmount }, 'terminating a peer that stopped reading');
      this.ws.terminate();
      return;
    }
    // Every frame sent during one event-loop turn leaves in one write: a system call per frame
    // costs more than everything else the relay does for a message.
    if (!this.corked && this.socket !== undefined) {
      this.corked = true;
      this.socket.cork();
      setImmediate(() => {
        this.corked = false;
        this.socket?.uncork();
      });
    }
    this.ws.send(bytes);
    this.ctx.metrics.frameOut(type);
  }

  sendError(code: RelayErrorCodeType, message: string, requestId?: number): void {
    this.ctx.metrics.errors.labels(code).inc();
    const frame: RelayFrame = { type: RelayFrameType.Error, code, message };
    if (requestId !== undefined) frame.requestId = requestId;
    this.sendFrame(frame);
  }

  // -------------------------------------------------------------------------------------------
  // Input

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.closed) return;
    if (!isBinary) {
      this.ws.close(RelayCloseCode.UnsupportedData, 'binary frames only');
      return;
    }
    const buf = data as Buffer;
    this.ctx.metrics.counts.bytesIn += buf.length;
    const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    let frame: ClientFrame;
    try {
      // The envelope stays a view into the received message, which ws never reuses.
      frame = decodeClientFrame(bytes, this.ctx.limits.maxFrameBytes, { shareEnvelope: true });
    } catch (err) {
      // Only DecodeError is expected; anything else is a bug, reported without taking the relay down.
      if (!ValiseError.is(err)) this.ctx.log.error({ conn: this.connId, err: (err as Error).message }, 'frame decoder failed');
      this.badFrames++;
      this.ctx.metrics.frameIn('invalid');
      this.sendError(RelayErrorCode.BadFrame, (err as Error).message, peekRequestId(bytes, this.ctx.limits.maxFrameBytes));
      if (this.badFrames > this.ctx.limits.maxBadFrames) this.ws.close(RelayCloseCode.Policy, 'too many bad frames');
      return;
    }
    this.ctx.metrics.frameIn(frame.type);
    if (this.ctx.isDraining()) {
      this.sendError(RelayErrorCode.ShuttingDown, 'the relay is shutting down', frame.requestId);
      return;
    }
    // Acks are never rate limited: they only ever reduce what the relay holds.
    if (frame.type !== RelayFrameType.Ack && !this.ctx.rate.take(this.key)) {
      this.sendError(RelayErrorCode.RateLimited, 'too many requests; slow down', frame.requestId);
      return;
    }
    let started: Promise<void> | undefined;
    try {
      started = this.handle(frame);
    } catch (err) {
      this.requestFailed(frame, err);
      return;
    }
    if (started === undefined) return;
    this.requestStarted();
    started.then(this.requestDone, (err: unknown) => {
      this.requestFailed(frame, err);
      this.requestDone();
    });
  }

  /** Counts a request in progress; too many stop reading from the socket until some finish. */
  private requestStarted(): void {
    this.pendingRequests++;
    if (!this.paused && this.pendingRequests >= this.ctx.limits.maxPendingRequests) {
      this.paused = true;
      this.ws.pause();
    }
  }

  private readonly requestDone = (): void => this.requestsDone(1);

  private requestsDone(count: number): void {
    this.pendingRequests -= count;
    if (this.paused && this.pendingRequests <= this.ctx.limits.maxPendingRequests >> 1) {
      this.paused = false;
      if (!this.closed) this.ws.resume();
    }
  }

  private requestFailed(frame: ClientFrame, err: unknown): void {
    if (err instanceof RequestError) this.sendError(err.code, err.message, frame.requestId);
    else {
      this.ctx.log.error({ conn: this.connId, frame: RELAY_FRAME_NAMES[frame.type], err: (err as Error).message }, 'request failed');
      this.sendError(RelayErrorCode.Internal, 'internal error', frame.requestId);
    }
  }

  /** Starts handling a frame; synchronous up to the point where a store operation is queued. */
  private handle(frame: ClientFrame): Promise<void> | undefined {
    switch (frame.type) {
      case RelayFrameType.Send:
        return this.onSend(frame);
      case RelayFrameType.Ack:
        return this.onAck(frame);
      case RelayFrameType.PrekeyUpload:
        return this.onPrekeyUpload(frame);
      case RelayFrameType.PrekeyFetch:
        return this.onPrekeyFetch(frame);
      case RelayFrameType.PrekeyCount:
        return this.ctx.store.countPrekeys(this.mailbox).then((c) => {
          this.sendFrame({ type: RelayFrameType.PrekeyCountResult, requestId: frame.requestId, count: c.count, hasSigned: c.hasSigned });
        });
      case RelayFrameType.DirectoryPublish:
        return this.onDirectoryPublish(frame);
      case RelayFrameType.DirectoryLookup:
        return this.onDirectoryLookup(frame);
      case RelayFrameType.RevocationPublish:
        return this.onRevocationPublish(frame);
      case RelayFrameType.RevocationGet: {
        const list = this.ctx.revocation.list;
        this.sendFrame(
          list === undefined
            ? { type: RelayFrameType.RevocationList, requestId: frame.requestId }
            : { type: RelayFrameType.RevocationList, requestId: frame.requestId, list: list.bytes },
        );
        return undefined;
      }
    }
  }

  private onSend(frame: SendFrame): Promise<void> | undefined {
    const { envelope, routes } = frame;
    // Throws RequestError (bad envelope or routes): answered at once by onMessage.
    const split = splitForRoutes(envelope, routes);
    const storedAt = Math.floor(this.ctx.nowMs() / 1000);
    const { limits } = this.ctx;
    const deliveries = new Array<{ mailbox: Uint8Array; prelude: Uint8Array }>(routes.length);
    for (let i = 0; i < routes.length; i++)
      deliveries[i] = { mailbox: (routes[i] as RelayRoute).mailbox, prelude: split.preludes[i] as Uint8Array };
    const result = this.ctx.store.storeMessage({
      messageId: relayMessageId(this.mailbox, frame.clientMessageId),
      records: split.records,
      deliveries,
      storedAt,
      expiresAt: storedAt + limits.ttlSeconds,
      dedupeUntil: storedAt + limits.dedupeWindowSeconds,
      limits: this.mailboxLimits,
    });
    // The SQLite store decides in memory and answers at once; a shared store answers later.
    return result instanceof Promise ? result.then((r) => this.afterStore(frame, split, r)) : this.afterStore(frame, split, result);
  }

  private afterStore(
    frame: SendFrame,
    split: { preludes: Uint8Array[]; records: Uint8Array },
    result: StoreMessageResult,
  ): Promise<void> | undefined {
    if (result.status === 'mailbox-full') {
      throw new RequestError(RelayErrorCode.MailboxFull, `mailbox ${toHex(result.mailbox)} is full (${result.limit})`);
    }
    if (result.status === 'duplicate') {
      return result.durable.then(() =>
        this.sendFrame({
          type: RelayFrameType.Stored,
          requestId: frame.requestId,
          clientMessageId: frame.clientMessageId,
          messageId: result.messageId,
        }),
      );
    }
    const { routes } = frame;
    const counts = this.ctx.metrics.counts;
    counts.messagesStored++;
    counts.deliveriesStored += routes.length;
    // Guarded: the hex id and the object would be built per message even with debug off.
    if (this.ctx.log.isLevelEnabled('debug')) {
      this.ctx.log.debug({ message: toHex(result.messageId), bytes: frame.envelope.length, routes: routes.length }, 'stored');
    }
    // Recipients get the message while its commit runs (they deduplicate, and a crash before
    // the commit means no Stored, so the sender sends it again); the sender gets Stored only
    // once it is durable.
    for (let i = 0; i < routes.length; i++) {
      this.ctx.notifier.publish((routes[i] as RelayRoute).mailbox, {
        seq: result.seqs[i] as number,
        messageId: result.messageId,
        messageKey: result.messageKey,
        storedAt: result.storedAt,
        inline: { prelude: split.preludes[i] as Uint8Array, records: split.records },
        durable: result.durable,
      });
    }
    this.queueStored(result.durable, frame.requestId, frame.clientMessageId, result.messageId);
    return undefined;
  }

  /**
   * Answers Stored once `durable` resolves. Sends that share a commit share one callback: a
   * promise and a closure per message, kept alive until the commit, would cost more than the
   * rest of the relay's work for a small message.
   */
  private queueStored(durable: Promise<void>, requestId: number, clientMessageId: Uint8Array, messageId: Uint8Array): void {
    let group = this.storedGroup;
    if (group === undefined || group.durable !== durable) {
      const g: StoredGroup = { durable, requestIds: [], clientMessageIds: [], messageIds: [] };
      group = g;
      this.storedGroup = g;
      durable.then(
        () => this.answerStored(g, undefined),
        (err: unknown) => this.answerStored(g, err),
      );
    }
    group.requestIds.push(requestId);
    group.clientMessageIds.push(clientMessageId);
    group.messageIds.push(messageId);
    this.requestStarted();
  }

  private answerStored(g: StoredGroup, err: unknown): void {
    if (this.storedGroup === g) this.storedGroup = undefined;
    const n = g.requestIds.length;
    if (err !== undefined) this.ctx.log.error({ conn: this.connId, err: (err as Error).message }, 'store failed');
    for (let i = 0; i < n; i++) {
      const requestId = g.requestIds[i] as number;
      if (err !== undefined) this.sendError(RelayErrorCode.Internal, 'internal error', requestId);
      else {
        this.sendFrame({
          type: RelayFrameType.Stored,
          requestId,
          clientMessageId: g.clientMessageIds[i] as Uint8Array,
          messageId: g.messageIds[i] as Uint8Array,
        });
      }
    }
    this.requestsDone(n);
  }

  private onAck(frame: AckFrame): Promise<void> {
    for (const id of frame.messageIds) this.inflight.delete(idKey(id));
    const ack = this.ctx.store.ack(this.mailbox, frame.messageIds, Math.floor(this.ctx.nowMs() / 1000)).then((n) => {
      this.ctx.metrics.counts.acks += n;
      this.sendFrame({ type: RelayFrameType.Ok, requestId: frame.requestId });
    });
    // Room in the window: continue from the store if pushing had stopped.
    if (!this.live) this.schedulePump();
    return ack;
  }

  private onPrekeyUpload(frame: PrekeyUploadFrame): Promise<void> {
    return this.ctx.store.putPrekeys(this.mailbox, frame.prekeys, frame.signedPrekey, this.ctx.limits.maxPrekeysPerMailbox).then((r) => {
      if (r.status === 'limit') {
        throw new RequestError(
          RelayErrorCode.PrekeyLimit,
          `at most ${this.ctx.limits.maxPrekeysPerMailbox} one-time prekeys (${r.count} stored)`,
        );
      }
      this.sendFrame({ type: RelayFrameType.Ok, requestId: frame.requestId });
    });
  }

  private onPrekeyFetch(frame: PrekeyFetchFrame): Promise<void> {
    return this.ctx.store.takePrekey(frame.mailbox).then((t) => {
      const out: RelayFrame = { type: RelayFrameType.Prekeys, requestId: frame.requestId, mailbox: frame.mailbox };
      if (t.oneTime !== undefined) out.oneTime = t.oneTime;
      if (t.signed !== undefined) out.signed = t.signed;
      this.sendFrame(out);
      if (t.oneTime !== undefined && t.remaining < this.ctx.limits.prekeysLowThreshold) {
        this.ctx.notifier.publishControl({ kind: 'prekeys-low', mailbox: frame.mailbox, remaining: t.remaining });
      }
    });
  }

  private onDirectoryPublish(frame: DirectoryPublishFrame): Promise<void> {
    let v: VerifiedDevice;
    try {
      v = this.ctx.revocation.verifyChain({ person: frame.personCert, device: frame.deviceCert }, Math.floor(this.ctx.nowMs() / 1000));
    } catch (err) {
      if (!ValiseError.is(err)) return Promise.reject(err);
      const reason = err instanceof VerifyError ? err.reason : 'decode';
      return Promise.reject(new RequestError(RelayErrorCode.DirectoryInvalid, `certificate chain does not verify (${reason})`));
    }
    return this.ctx.store
      .putDirectoryEntry({
        deviceCertId: v.device.certId,
        personId: v.person.personId,
        personCertId: v.person.certId,
        name: v.person.name.toLowerCase(),
        unit: v.person.unit.toLowerCase(),
        personCert: v.person.bytes,
        deviceCert: v.device.bytes,
        publishedAt: Math.floor(this.ctx.nowMs() / 1000),
      })
      .then(() => this.sendFrame({ type: RelayFrameType.Ok, requestId: frame.requestId }));
  }

  private onDirectoryLookup(frame: DirectoryLookupFrame): Promise<void> {
    const rev = this.ctx.revocation;
    return this.ctx.store.lookupDirectory(frame.query, this.ctx.limits.maxDirectoryResults).then((rows) => {
      const entries = rows
        .filter((r) => !rev.isRevoked(r.deviceCertId) && !rev.isRevoked(r.personCertId))
        .map((r) => ({ personCert: r.personCert, deviceCert: r.deviceCert }));
      this.sendFrame({ type: RelayFrameType.DirectoryResult, requestId: frame.requestId, entries });
    });
  }

  private onRevocationPublish(frame: RevocationPublishFrame): Promise<void> {
    const now = Math.floor(this.ctx.nowMs() / 1000);
    let list: ReturnType<RevocationState['check']>;
    try {
      list = this.ctx.revocation.check(frame.list, now);
    } catch (err) {
      if (err instanceof VerifyError && err.reason === VerifyReason.StaleRevocationList) {
        return Promise.reject(new RequestError(RelayErrorCode.RevocationStale, err.message));
      }
      if (ValiseError.is(err)) {
        const reason = err instanceof VerifyError ? err.reason : 'decode';
        return Promise.reject(new RequestError(RelayErrorCode.RevocationInvalid, `revocation list refused (${reason})`));
      }
      return Promise.reject(err);
    }
    return this.ctx.store.putRevocationList(list.bytes, list.sequence).then((accepted) => {
      if (!accepted) throw new RequestError(RelayErrorCode.RevocationStale, 'a list with this or a higher sequence is held already');
      this.ctx.revocation.adopt(list);
      this.ctx.log.info({ sequence: list.sequence, revoked: list.revoked.length }, 'revocation list adopted');
      this.ctx.onRevocationList(list.sequence);
      this.sendFrame({ type: RelayFrameType.Ok, requestId: frame.requestId });
    });
  }

  private async announcePrekeys(): Promise<void> {
    try {
      const c = await this.ctx.store.countPrekeys(this.mailbox);
      // Only devices that take part in prekeys (they uploaded a signed prekey) are reminded.
      if (c.hasSigned && c.count < this.ctx.limits.prekeysLowThreshold) {
        this.sendFrame({ type: RelayFrameType.PrekeysLow, remaining: c.count });
      }
    } catch (err) {
      this.ctx.log.warn({ conn: this.connId, err: (err as Error).message }, 'prekey count failed');
    }
  }

  // -------------------------------------------------------------------------------------------
  // Delivery

  private canPush(): boolean {
    return this.inflight.size < this.ctx.limits.maxInFlight && this.ws.bufferedAmount < this.ctx.limits.sendHighWaterBytes;
  }

  private push(seq: number, messageId: Uint8Array, key: string, prelude: Uint8Array, records: Uint8Array, storedAt: number): void {
    this.cursor = seq;
    this.inflight.add(key);
    // The recipient's slice, written straight into the frame from its prelude and the shared
    // records, in memory that is not zeroed first (every byte of it is written).
    this.sendBytes(RelayFrameType.Deliver, encodeDeliverFrame(messageId, [prelude, records], storedAt, Buffer.allocUnsafe));
    this.ctx.metrics.counts.deliveriesPushed++;
  }

  private onNote(note: DeliveryNote): void {
    if (this.closed || note.seq <= this.cursor) return;
    if (this.live && !this.pumping && note.inline !== undefined && this.canPush()) {
      this.push(note.seq, note.messageId, note.messageKey, note.inline.prelude, note.inline.records, note.storedAt);
      return;
    }
    this.live = false;
    this.schedulePump();
  }

  /** Pushes deliveries from the store; called at connect and whenever live pushing had to stop. */
  private schedulePump(): void {
    if (this.closed) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    void this.pump();
  }

  /**
   * `pumping` is cleared inside the pump, in the same step as its decision to stop: notes are
   * published from promise callbacks, and one that arrived between that decision and a later
   * reset would find the pump still marked as running and be left for a pump that never comes.
   */
  private async pump(): Promise<void> {
    // The finally block runs in the same step as each return below (no await in between).
    try {
      for (;;) {
        this.pumpAgain = false;
        if (this.closed) return;
        if (!this.canPush()) {
          // Full window: the next Ack calls schedulePump. Full socket buffer: look again shortly.
          if (this.ws.bufferedAmount >= this.ctx.limits.sendHighWaterBytes && this.retryTimer === undefined) {
            this.retryTimer = setTimeout(() => {
              this.retryTimer = undefined;
              this.schedulePump();
            }, RETRY_MS);
          }
          return;
        }
        const room = Math.min(PAGE, this.ctx.limits.maxInFlight - this.inflight.size);
        let rows: Awaited<ReturnType<RelayStore['readMailbox']>>;
        try {
          rows = await this.ctx.store.readMailbox(this.mailbox, this.cursor, room, Math.floor(this.ctx.nowMs() / 1000));
        } catch (err) {
          this.ctx.log.error({ conn: this.connId, err: (err as Error).message }, 'mailbox read failed');
          this.ws.close(RelayCloseCode.Internal, 'internal error');
          return;
        }
        for (const r of rows) {
          if (this.closed) return;
          if (r.seq > this.cursor) this.push(r.seq, r.messageId, r.messageKey, r.prelude, r.records, r.storedAt);
        }
        if (rows.length === room || this.pumpAgain) continue;
        this.live = true;
        if (!this.backlogEnded) {
          // Everything the mailbox held at connect has been pushed: say so, once.
          this.backlogEnded = true;
          this.sendFrame({ type: RelayFrameType.BacklogEnd });
        }
        return;
      }
    } finally {
      this.pumping = false;
    }
  }

  private onClose(code: number): void {
    this.closed = true;
    this.unsubscribe();
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.ctx.log.info({ conn: this.connId, code, unacked: this.inflight.size }, 'connection closed');
  }
}

/**
 * Cuts an envelope into one prelude per route and the shared records, checking that the routes
 * cover every entry exactly once and name distinct mailboxes. Only the prelude is parsed.
 */
export function splitForRoutes(envelope: Uint8Array, routes: SendFrame['routes']): { preludes: Uint8Array[]; records: Uint8Array } {
  let layout: PreludeFrameLayout;
  try {
    // The same checks as readPreludeFrame, without building the prelude's objects.
    layout = scanPreludeFrame(envelope);
  } catch (err) {
    if (err instanceof DecodeError || ValiseError.is(err)) throw new RequestError(RelayErrorCode.BadEnvelope, (err as Error).message);
    throw err;
  }
  const n = layout.entryCount;
  if (routes.length !== n) throw new RequestError(RelayErrorCode.BadRoutes, `${routes.length} routes for ${n} entries`);
  const indices = new Uint8Array(n);
  // One route cannot name a mailbox twice: no set to build for the common case.
  const mailboxes = n > 1 ? new Set<string>() : undefined;
  for (const r of routes) {
    if (r.entryIndex >= n) throw new RequestError(RelayErrorCode.BadRoutes, `route to entry ${r.entryIndex} of ${n}`);
    if (indices[r.entryIndex] === 1) throw new RequestError(RelayErrorCode.BadRoutes, `entry ${r.entryIndex} routed twice`);
    indices[r.entryIndex] = 1;
    if (mailboxes === undefined) continue;
    const key = mailboxKey(r.mailbox);
    if (mailboxes.has(key)) throw new RequestError(RelayErrorCode.BadRoutes, `mailbox ${toHex(r.mailbox)} named twice`);
    mailboxes.add(key);
  }
  const records = envelope.subarray(layout.recordsOffset);
  // One entry: the prelude already is the recipient's slice.
  if (n === 1) return { preludes: [envelope.subarray(0, layout.recordsOffset)], records };
  // Each recipient's one-entry prelude, spliced from the bytes (the same bytes as re-encoding).
  const preludes = routes.map((r) => framedEntryPrelude(envelope, layout, r.entryIndex));
  return { preludes, records };
}
