/**
 * The CLI's relay client (spec/relay.md): authenticates in the WebSocket upgrade with a fresh
 * challenge (GET /v1/challenge, then the device's certificates and its signature over the
 * challenge and host in the upgrade headers), numbers its requests and matches each response by
 * request id, and hands deliveries to a listener. No reconnection: each command opens one
 * connection and closes it.
 */
import { randomBytes } from 'node:crypto';
import {
  type ClientFrame,
  type DeliverFrame,
  decodeRelayFrame,
  encodeRelayFrame,
  fromBase64Url,
  getProvider,
  RELAY_CHALLENGE_LENGTH,
  RelayAuthHeader,
  type RelayDirectoryEntry,
  type RelayDirectoryQuery,
  type RelayFrame,
  RelayFrameType,
  RelayPath,
  type RelayRoute,
  relayAuthMessage,
  toBase64Url,
} from '@valise/protocol';
import WebSocket from 'ws';
import { CliError, ExitCode, relayError } from './errors.js';

export interface RelayCredentials {
  personCert: Uint8Array;
  deviceCert: Uint8Array;
  signingSecretKey: Uint8Array;
}

export interface RelayClientOptions {
  /** Connection and per-request timeout, ms. Default 15 s. */
  timeoutMs?: number;
  /** Largest frame accepted from the relay. Default 64 MiB. */
  maxPayload?: number;
}

type WithoutRequestId<T> = T extends unknown ? Omit<T, 'requestId'> : never;
export type ClientRequest = WithoutRequestId<ClientFrame>;

const unreachable = (url: string, why: string) =>
  new CliError(
    'relay-unreachable',
    `cannot reach the relay at ${url}: ${why}`,
    ExitCode.Relay,
    'check the relay URL (--relay) and that the relay is running',
  );

/**
 * The relay's base URL (http or https, no path), from what the user typed: `host:port`,
 * `http://host:port`, `ws://host:port`, with or without a trailing `/v1/connect`.
 */
export function normaliseRelayUrl(input: string): string {
  let s = input.trim();
  if (!/^[a-z]+:\/\//i.test(s)) s = `http://${s}`;
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new CliError('usage', `not a relay URL: ${input}`, ExitCode.Usage, 'give the relay as http://HOST:PORT');
  }
  const scheme = u.protocol === 'ws:' ? 'http:' : u.protocol === 'wss:' ? 'https:' : u.protocol;
  if (scheme !== 'http:' && scheme !== 'https:')
    throw new CliError('usage', `not a relay URL: ${input}`, ExitCode.Usage, 'give the relay as http://HOST:PORT');
  return `${scheme}//${u.host}`;
}

export class RelayClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (f: RelayFrame) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private deliverListener: ((f: DeliverFrame) => void) | undefined;
  private readonly held: DeliverFrame[] = [];
  private backlogEnded = false;
  private backlogListener: (() => void) | undefined;
  private closedWith: { code: number; reason: string } | undefined;
  readonly closed: Promise<{ code: number; reason: string }>;
  /** Time of the last frame received (ms), for "the backlog has gone quiet" checks. */
  lastFrameAt = Date.now();

  private constructor(
    private readonly ws: WebSocket,
    early: Buffer[],
    readonly url: string,
    private readonly timeoutMs: number,
  ) {
    this.closed = new Promise((resolve) =>
      ws.once('close', (code, reason) => {
        this.closedWith = { code, reason: reason.toString() };
        const err = relayClosed(code, reason.toString());
        for (const [id, p] of this.pending) {
          clearTimeout(p.timer);
          p.reject(err);
          this.pending.delete(id);
        }
        resolve(this.closedWith);
      }),
    );
    ws.on('error', () => {});
    const onMessage = (data: Buffer, isBinary: boolean) => {
      this.lastFrameAt = Date.now();
      if (!isBinary) return;
      let frame: RelayFrame;
      try {
        frame = decodeRelayFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      } catch {
        return; // a frame this client does not understand: ignore it rather than fail the command
      }
      this.onFrame(frame);
    };
    for (const d of early) onMessage(d, true);
    ws.on('message', onMessage);
  }

  /** Fetches a challenge, signs it, and opens the authenticated WebSocket. */
  static async connect(relayUrl: string, creds: RelayCredentials, options: RelayClientOptions = {}): Promise<RelayClient> {
    const base = normaliseRelayUrl(relayUrl);
    const timeoutMs = options.timeoutMs ?? 15_000;
    let challenge: Uint8Array;
    try {
      const res = await fetch(`${base}${RelayPath.Challenge}`, { signal: AbortSignal.timeout(timeoutMs) });
      const body = (await res.json().catch(() => ({}))) as { challenge?: string; code?: string; message?: string };
      if (!res.ok) throw relayError(body.code ?? `http-${res.status}`, body.message ?? `HTTP ${res.status} on ${RelayPath.Challenge}`);
      challenge = fromBase64Url(String(body.challenge), RELAY_CHALLENGE_LENGTH);
      if (challenge.length !== RELAY_CHALLENGE_LENGTH) throw new Error('bad challenge');
    } catch (err) {
      if (err instanceof CliError) throw err;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw unreachable(base, cause?.code ?? cause?.message ?? (err as Error).message);
    }
    const host = new URL(base).host;
    const signature = getProvider().ed25519Sign(relayAuthMessage(challenge, host), creds.signingSecretKey);
    const headers = {
      [RelayAuthHeader.PersonCert]: toBase64Url(creds.personCert),
      [RelayAuthHeader.DeviceCert]: toBase64Url(creds.deviceCert),
      [RelayAuthHeader.Challenge]: toBase64Url(challenge),
      [RelayAuthHeader.Signature]: toBase64Url(signature),
    };
    const wsUrl = `${base.replace(/^http/, 'ws')}${RelayPath.Connect}`;
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(wsUrl, {
        headers,
        perMessageDeflate: false,
        maxPayload: options.maxPayload ?? 64 << 20,
        handshakeTimeout: timeoutMs,
      });
      // Deliveries can arrive with the upgrade response, before anyone listens: keep them.
      const early: Buffer[] = [];
      const keep = (data: Buffer) => early.push(data);
      ws.on('message', keep);
      ws.once('open', () => {
        ws.off('message', keep);
        resolve(new RelayClient(ws, early, base, timeoutMs));
      });
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        const finish = () => {
          let message = `HTTP ${res.statusCode}`;
          try {
            message = (JSON.parse(body) as { message?: string }).message ?? message;
          } catch {
            // not JSON
          }
          const code = (res.headers[RelayAuthHeader.Error] as string | undefined) ?? `http-${res.statusCode}`;
          reject(relayError(code, message));
          ws.terminate();
        };
        res.on('end', finish);
        res.on('error', finish);
      });
      ws.once('error', (err) => reject(unreachable(base, err.message)));
    });
  }

  private onFrame(f: RelayFrame): void {
    if (f.type === RelayFrameType.Deliver) {
      if (this.deliverListener) this.deliverListener(f);
      else this.held.push(f);
      return;
    }
    if (f.type === RelayFrameType.PrekeysLow) return;
    if (f.type === RelayFrameType.BacklogEnd) {
      this.backlogEnded = true;
      this.backlogListener?.();
      return;
    }
    const id = 'requestId' in f ? f.requestId : undefined;
    const p = id === undefined ? undefined : this.pending.get(id);
    if (p === undefined || id === undefined) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (f.type === RelayFrameType.Error) p.reject(relayError(f.code, f.message));
    else p.resolve(f);
  }

  /**
   * Called once the relay has pushed everything the mailbox held when this connection opened
   * (at once if that happened already).
   */
  onBacklogEnd(listener: () => void): void {
    this.backlogListener = listener;
    if (this.backlogEnded) listener();
  }

  /** Receives deliveries (including those that arrived before this call). */
  onDeliver(listener: (f: DeliverFrame) => void): void {
    this.deliverListener = listener;
    for (const f of this.held.splice(0)) listener(f);
  }

  /** Sends a request and resolves with its response; an Error frame rejects with a CliError. */
  request(req: ClientRequest): Promise<RelayFrame> {
    if (this.closedWith !== undefined || this.ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(relayClosed(this.closedWith?.code ?? 1006, this.closedWith?.reason ?? ''));
    }
    const requestId = this.nextId++;
    const frame = { ...req, requestId } as ClientFrame;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(
          new CliError(
            'relay-timeout',
            `the relay did not answer within ${this.timeoutMs} ms`,
            ExitCode.Relay,
            'retry; if it persists, tell the relay operator',
          ),
        );
      }, this.timeoutMs);
      this.pending.set(requestId, { resolve, reject, timer });
      this.ws.send(encodeRelayFrame(frame));
    });
  }

  private async expect<T extends RelayFrame['type']>(req: ClientRequest, type: T): Promise<Extract<RelayFrame, { type: T }>> {
    const f = await this.request(req);
    if (f.type !== type) throw new CliError('relay-protocol', `unexpected answer from the relay (frame type ${f.type})`, ExitCode.Relay);
    return f as Extract<RelayFrame, { type: T }>;
  }

  /** Sends one envelope and waits until the relay has stored it durably for every route. */
  async send(envelope: Uint8Array, routes: RelayRoute[], clientMessageId: Uint8Array = new Uint8Array(randomBytes(16))) {
    return this.expect({ type: RelayFrameType.Send, clientMessageId, envelope, routes }, RelayFrameType.Stored);
  }

  async ack(messageIds: Uint8Array[]): Promise<void> {
    for (let i = 0; i < messageIds.length; i += 4096) {
      await this.expect({ type: RelayFrameType.Ack, messageIds: messageIds.slice(i, i + 4096) }, RelayFrameType.Ok);
    }
  }

  async publishDirectory(personCert: Uint8Array, deviceCert: Uint8Array): Promise<void> {
    await this.expect({ type: RelayFrameType.DirectoryPublish, personCert, deviceCert }, RelayFrameType.Ok);
  }

  async lookup(query: RelayDirectoryQuery): Promise<RelayDirectoryEntry[]> {
    return (await this.expect({ type: RelayFrameType.DirectoryLookup, query }, RelayFrameType.DirectoryResult)).entries;
  }

  async getRevocationList(): Promise<Uint8Array | undefined> {
    return (await this.expect({ type: RelayFrameType.RevocationGet }, RelayFrameType.RevocationList)).list;
  }

  async publishRevocationList(list: Uint8Array): Promise<void> {
    await this.expect({ type: RelayFrameType.RevocationPublish, list }, RelayFrameType.Ok);
  }

  async close(): Promise<void> {
    if (this.closedWith !== undefined) return;
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(1000);
    const timer = setTimeout(() => this.ws.terminate(), 2000);
    await this.closed;
    clearTimeout(timer);
  }
}

function relayClosed(code: number, reason: string): CliError {
  const hint =
    code === 1008
      ? 'the relay closed the connection by policy (revoked or expired certificate?): contact your administrator'
      : code === 1001
        ? 'the relay is shutting down: retry in a moment'
        : code === 4000
          ? 'another connection of this device replaced this one: run one valise command at a time per device'
          : 'retry; if it persists, check the relay';
  return new CliError('relay-closed', `the relay closed the connection (${code}${reason ? `: ${reason}` : ''})`, ExitCode.Relay, hint);
}
