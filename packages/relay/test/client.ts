/**
 * A minimal relay client for the relay's own tests and benchmark (the CLI has its own). It
 * authenticates in the upgrade, numbers requests, matches responses by request id, and keeps
 * deliveries and unsolicited frames in arrays for the tests to inspect.
 */
import { randomBytes } from 'node:crypto';
import {
  type ClientFrame,
  type DeliverFrame,
  decodeRelayFrame,
  type ErrorFrame,
  encodeRelayFrame,
  fromBase64Url,
  getProvider,
  type PrekeysLowFrame,
  RelayAuthHeader,
  type RelayFrame,
  RelayFrameType,
  type RelayRoute,
  relayAuthMessage,
  toBase64Url,
} from '@valise/protocol';
import WebSocket from 'ws';

export interface DeviceCredentials {
  personCert: Uint8Array;
  deviceCert: Uint8Array;
  signingSecretKey: Uint8Array;
}

type WithoutRequestId<T> = T extends unknown ? Omit<T, 'requestId'> : never;
export type ClientRequest = WithoutRequestId<ClientFrame>;

export async function fetchChallenge(baseUrl: string): Promise<Uint8Array> {
  const res = await fetch(`${baseUrl}/v1/challenge`);
  if (!res.ok) throw new Error(`challenge: HTTP ${res.status}`);
  const body = (await res.json()) as { challenge: string };
  return fromBase64Url(body.challenge);
}

/** The upgrade headers for `creds`, signing over `challenge` and the URL's host. */
export function authHeaders(creds: DeviceCredentials, challenge: Uint8Array, host: string): Record<string, string> {
  const signature = getProvider().ed25519Sign(relayAuthMessage(challenge, host), creds.signingSecretKey);
  return {
    [RelayAuthHeader.PersonCert]: toBase64Url(creds.personCert),
    [RelayAuthHeader.DeviceCert]: toBase64Url(creds.deviceCert),
    [RelayAuthHeader.Challenge]: toBase64Url(challenge),
    [RelayAuthHeader.Signature]: toBase64Url(signature),
  };
}

export const connectUrlOf = (baseUrl: string) => `${baseUrl.replace(/^http/, 'ws')}/v1/connect`;

/** Opens a WebSocket with the given headers; resolves with the socket or the refusal. */
export function openSocket(
  baseUrl: string,
  headers: Record<string, string>,
  options: { maxPayload?: number } = {},
): Promise<{ ws: WebSocket; early: Buffer[] } | { status: number; code: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(connectUrlOf(baseUrl), { headers, perMessageDeflate: false, maxPayload: options.maxPayload ?? 64 << 20 });
    // Frames can arrive in the same read as the upgrade response, before anyone listens: keep them.
    const early: Buffer[] = [];
    const keep = (data: Buffer) => early.push(data);
    ws.on('message', keep);
    ws.once('open', () => {
      resolve({
        ws,
        get early() {
          ws.off('message', keep);
          return early;
        },
      });
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, code: res.headers[RelayAuthHeader.Error] as string | undefined, body }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, code: res.headers[RelayAuthHeader.Error] as string | undefined, body }));
    });
    ws.once('error', reject);
  });
}

export class RelayTestClient {
  readonly deliveries: DeliverFrame[] = [];
  readonly errors: ErrorFrame[] = [];
  readonly prekeysLow: PrekeysLowFrame[] = [];
  /** For each BacklogEnd received, the number of deliveries received before it. */
  readonly backlogEndAfter: number[] = [];
  /** Frames from the relay that did not decode (a relay bug if ever non-empty). */
  readonly undecodable: string[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private nextId = 1;
  private readonly pending = new Map<number, (f: RelayFrame) => void>();
  private readonly deliverListeners = new Set<(f: DeliverFrame) => void>();

  constructor(
    readonly ws: WebSocket,
    early: Buffer[] = [],
  ) {
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    const onMessage = (data: Buffer) => {
      let frame: RelayFrame;
      try {
        frame = decodeRelayFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      } catch (err) {
        this.undecodable.push((err as Error).message);
        return;
      }
      this.onFrame(frame);
    };
    for (const data of early) onMessage(data);
    ws.on('message', onMessage);
    ws.on('error', () => {});
  }

  static async connect(baseUrl: string, creds: DeviceCredentials): Promise<RelayTestClient> {
    const challenge = await fetchChallenge(baseUrl);
    const r = await openSocket(baseUrl, authHeaders(creds, challenge, new URL(baseUrl).host));
    if (!('ws' in r)) throw new Error(`connect refused: ${r.status} ${r.code} ${r.body}`);
    return new RelayTestClient(r.ws, r.early);
  }

  private onFrame(f: RelayFrame): void {
    if (f.type === RelayFrameType.Deliver) {
      this.deliveries.push(f);
      for (const l of this.deliverListeners) l(f);
      return;
    }
    if (f.type === RelayFrameType.PrekeysLow) {
      this.prekeysLow.push(f);
      return;
    }
    if (f.type === RelayFrameType.BacklogEnd) {
      // How many deliveries had arrived when the relay said its backlog was pushed.
      this.backlogEndAfter.push(this.deliveries.length);
      return;
    }
    const id = 'requestId' in f ? f.requestId : undefined;
    const waiter = id === undefined ? undefined : this.pending.get(id);
    if (waiter !== undefined && id !== undefined) {
      this.pending.delete(id);
      waiter(f);
    } else if (f.type === RelayFrameType.Error) this.errors.push(f);
  }

  onDeliver(listener: (f: DeliverFrame) => void): () => void {
    this.deliverListeners.add(listener);
    return () => this.deliverListeners.delete(listener);
  }

  /** Sends a request; resolves with its response (an Error frame too) or rejects when the socket closes first. */
  request(req: ClientRequest): Promise<RelayFrame> {
    const requestId = this.nextId++;
    const frame = { ...req, requestId } as ClientFrame;
    return new Promise((resolve, reject) => {
      this.pending.set(requestId, resolve);
      void this.closed.then(({ code }) => {
        if (this.pending.delete(requestId)) reject(new Error(`socket closed (${code}) before response to request ${requestId}`));
      });
      this.sendRaw(encodeRelayFrame(frame));
    });
  }

  sendRaw(bytes: Uint8Array | string): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(bytes);
  }

  send(envelope: Uint8Array, routes: RelayRoute[], clientMessageId: Uint8Array = new Uint8Array(randomBytes(16))): Promise<RelayFrame> {
    return this.request({ type: RelayFrameType.Send, clientMessageId, envelope, routes });
  }

  ack(messageIds: Uint8Array[]): Promise<RelayFrame> {
    return this.request({ type: RelayFrameType.Ack, messageIds });
  }

  /** Resolves once at least `n` deliveries have arrived in total. */
  waitForDeliveries(n: number, timeoutMs = 20_000): Promise<DeliverFrame[]> {
    if (this.deliveries.length >= n) return Promise.resolve(this.deliveries.slice());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`timed out waiting for ${n} deliveries (have ${this.deliveries.length})`));
      }, timeoutMs);
      const off = this.onDeliver(() => {
        if (this.deliveries.length >= n) {
          clearTimeout(timer);
          off();
          resolve(this.deliveries.slice());
        }
      });
    });
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.close(1000);
    await this.closed;
  }
}
