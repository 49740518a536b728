/**
 * The relay server (spec/relay.md): HTTP endpoints, authentication in the WebSocket upgrade,
 * sessions, heartbeats, the expiry sweep and graceful shutdown.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { RelayCloseCode, RelayErrorCode, RelayFrameType, RelayPath, toBase64Url, toHex } from '@valise/protocol';
import { useNodeCrypto } from '@valise/protocol/node';
import { type Logger, pino } from 'pino';
import { WebSocketServer } from 'ws';
import { authenticate, ChallengeTable } from './auth.js';
import { mailboxKey } from './keys.js';
import { createMetrics, registerStoreMetrics } from './metrics.js';
import { InProcessNotifier, type Notifier } from './notifier.js';
import { type RelayOptions, resolveOptions } from './options.js';
import { RevocationState } from './revocation.js';
import { RateLimiter, type RelayContext, Session } from './session.js';
import { SqliteStore } from './sqlite-store.js';
import type { RelayStore } from './store.js';

export interface RunningRelay {
  /** Base HTTP URL, e.g. `http://127.0.0.1:41234` (GET /v1/challenge, /healthz, /metrics). */
  url: string;
  /** WebSocket URL of the connect endpoint, e.g. `ws://127.0.0.1:41234/v1/connect`. */
  connectUrl: string;
  port: number;
  /** Graceful shutdown: stop accepting, commit queued writes, close sockets with 1001, close the store. */
  close(): Promise<void>;
}

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found', 503: 'Service Unavailable' };

/** Refuses an upgrade with a plain HTTP response: the socket never becomes a WebSocket. */
function refuseUpgrade(socket: Duplex, status: number, code: string, message: string): void {
  const body = JSON.stringify({ code, message });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\n` +
      'Connection: close\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n' +
      `Valise-Error: ${code}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  setTimeout(() => socket.destroy(), 1000).unref();
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** Starts a relay. Resolves once it listens. Switches the process to the native crypto provider. */
export async function startRelay(options: RelayOptions): Promise<RunningRelay> {
  const opts = resolveOptions(options);
  // Native primitives for the relay's signature checks (the same results as the default provider).
  useNodeCrypto();
  const { limits } = opts;
  const log: Logger = options.logger ?? pino({ level: 'info', base: { service: 'valise-relay' } });
  const metrics = createMetrics();
  const nowMs = opts.clock;
  const nowSeconds = () => Math.floor(nowMs() / 1000);

  const store: RelayStore =
    options.store ??
    (await SqliteStore.open(opts.dataDir as string, {
      commitDelayMs: limits.commitDelayMs,
      cacheBytes: limits.storeCacheBytes,
      maxRememberedIds: limits.dedupeMaxIds,
      onCommit: (ops, seconds) => {
        metrics.commitBatch.observe(ops);
        metrics.commitSeconds.observe(seconds);
      },
      onWriteLatency: (seconds) => metrics.writeSeconds.observe(seconds),
    }));
  registerStoreMetrics(metrics.registry, () => store.stats());
  const notifier: Notifier = options.notifier ?? new InProcessNotifier();

  // The newest revocation list: the stored one, or the one given at start-up if newer.
  const revocation = new RevocationState(opts.orgRootPublicKey);
  const stored = await store.getRevocationList();
  if (stored !== undefined) {
    try {
      // Adopted even if past nextUpdate: a stale list still names revoked certificates.
      revocation.adopt(revocation.check(stored, 0));
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'stored revocation list ignored');
    }
  }
  if (options.revocationList !== undefined) {
    const list = revocation.check(options.revocationList, nowSeconds());
    if (await store.putRevocationList(list.bytes, list.sequence)) revocation.adopt(list);
  }

  const challenges = new ChallengeTable(limits.maxPendingChallenges, limits.challengeTtlSeconds * 1000, nowMs);
  const sessions = new Map<string, Session>();
  let draining = false;
  let nextConn = 1;
  const startedAt = Date.now();

  const disconnectRevoked = () => {
    for (const s of sessions.values()) {
      if (s.certIds().some((id) => revocation.isRevoked(id))) {
        log.info({ conn: s.connId }, 'disconnecting a revoked device');
        s.close(RelayCloseCode.Policy, 'revoked');
      }
    }
  };

  const ctx: RelayContext = {
    limits,
    store,
    notifier,
    log,
    metrics,
    revocation,
    rate: new RateLimiter(limits.messagesPerSecond, limits.burst, nowMs),
    nowMs,
    isDraining: () => draining,
    onRevocationList: (sequence) => notifier.publishControl({ kind: 'revocation', sequence }),
  };

  const offControl = notifier.onControl((event) => {
    if (event.kind === 'revocation') {
      if (revocation.sequence !== undefined && revocation.sequence >= event.sequence) {
        disconnectRevoked();
        return;
      }
      // Published by another node: load it from the shared store.
      void store.getRevocationList().then((bytes) => {
        if (bytes === undefined) return;
        try {
          revocation.adopt(revocation.check(bytes, 0));
        } catch {
          return;
        }
        disconnectRevoked();
      });
    } else if (event.kind === 'prekeys-low') {
      sessions.get(mailboxKey(event.mailbox))?.sendFrame({ type: RelayFrameType.PrekeysLow, remaining: event.remaining });
    }
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: limits.maxFrameBytes, perMessageDeflate: false, clientTracking: false });

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://relay');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      json(res, 405, { code: RelayErrorCode.NotFound, message: 'only GET' }, { allow: 'GET' });
      return;
    }
    switch (url.pathname) {
      case RelayPath.Challenge: {
        if (draining) {
          json(res, 503, { code: RelayErrorCode.Unavailable, message: 'shutting down' }, { 'valise-error': RelayErrorCode.Unavailable });
          return;
        }
        const c = challenges.issue();
        json(res, 200, { challenge: toBase64Url(c.challenge), expiresInSeconds: limits.challengeTtlSeconds });
        return;
      }
      case RelayPath.Health: {
        const body = () => ({
          status: draining ? 'draining' : 'ok',
          connections: sessions.size,
          pendingChallenges: challenges.size,
          revocationSequence: revocation.sequence ?? null,
          uptimeSeconds: Math.floor((Date.now() - startedAt) / 1000),
        });
        const timer = setTimeout(() => json(res, 503, { ...body(), status: 'store-unresponsive' }), 2000);
        // A write through the commit queue proves the writer is alive.
        store.flush().then(
          () => {
            clearTimeout(timer);
            if (!res.headersSent) json(res, draining ? 503 : 200, body());
          },
          (err: Error) => {
            clearTimeout(timer);
            if (!res.headersSent) json(res, 503, { ...body(), status: 'store-failed', error: err.message });
          },
        );
        return;
      }
      case RelayPath.Metrics:
        metrics.registry.metrics().then(
          (text) => {
            res.writeHead(200, { 'content-type': metrics.registry.contentType });
            res.end(text);
          },
          () => json(res, 500, { code: RelayErrorCode.Internal, message: 'metrics failed' }),
        );
        return;
      default:
        json(res, 404, { code: RelayErrorCode.NotFound, message: 'no such endpoint' }, { 'valise-error': RelayErrorCode.NotFound });
    }
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {});
    const url = new URL(req.url ?? '/', 'http://relay');
    if (url.pathname !== RelayPath.Connect) {
      refuseUpgrade(socket, 404, RelayErrorCode.NotFound, 'no such endpoint');
      return;
    }
    if (draining || sessions.size >= limits.maxConnections) {
      refuseUpgrade(socket, 503, RelayErrorCode.Unavailable, draining ? 'shutting down' : 'too many connections');
      return;
    }
    let result: ReturnType<typeof authenticate>;
    try {
      result = authenticate(req, url, { challenges, revocation, publicHosts: opts.publicHosts, nowSeconds });
    } catch (err) {
      log.error({ err: (err as Error).message }, 'authentication failed unexpectedly');
      refuseUpgrade(socket, 401, RelayErrorCode.AuthMalformed, 'authentication failed');
      return;
    }
    if (!result.ok) {
      metrics.auth.labels(result.code).inc();
      log.info({ code: result.code, reason: result.reason, remote: req.socket.remoteAddress }, 'authentication refused');
      refuseUpgrade(socket, 401, result.code, result.message);
      return;
    }
    const device = result.device;
    wss.handleUpgrade(req, socket, head, (ws) => {
      if (draining) {
        ws.close(RelayCloseCode.GoingAway, 'relay shutting down');
        return;
      }
      metrics.auth.labels('ok').inc();
      const connId = nextConn++;
      const key = mailboxKey(device.device.certId);
      const previous = sessions.get(key);
      if (previous !== undefined) previous.close(RelayCloseCode.Superseded, 'superseded by a newer connection');
      const session = new Session(ctx, ws, device, connId);
      sessions.set(key, session);
      metrics.connections.inc();
      log.info({ conn: connId, device: toHex(device.device.certId) }, 'connection opened');
      void session.done.then(() => {
        metrics.connections.dec();
        if (sessions.get(key) === session) sessions.delete(key);
      });
    });
  });

  // Heartbeats: a peer that did not answer the previous ping is terminated. Certificates that
  // expired while connected end the connection too.
  const heartbeat = setInterval(() => {
    const now = nowSeconds();
    for (const s of sessions.values()) {
      if (!s.alive) {
        log.info({ conn: s.connId }, 'terminating an unresponsive peer');
        s.terminate();
        continue;
      }
      if (now > s.validUntil()) {
        s.close(RelayCloseCode.Policy, 'certificate expired');
        continue;
      }
      s.alive = false;
      s.ws.ping();
    }
  }, limits.heartbeatIntervalMs);
  heartbeat.unref();

  const expiry = setInterval(() => {
    store.expire(nowSeconds()).then(
      (r) => {
        if (r.deliveries > 0 || r.messages > 0) log.info(r, 'expired');
      },
      (err: Error) => log.error({ err: err.message }, 'expiry failed'),
    );
  }, limits.expiryIntervalMs);
  expiry.unref();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : opts.port;
  const hostPart = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const url = `http://${hostPart}:${port}`;
  const connectUrl = `ws://${hostPart}:${port}${RelayPath.Connect}`;
  log.info({ url, port }, 'relay listening');

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      draining = true;
      clearInterval(heartbeat);
      clearInterval(expiry);
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      // Commit what is queued; the Stored and Ok frames of those writes go out before the sockets close.
      try {
        await store.flush();
      } catch (err) {
        log.error({ err: (err as Error).message }, 'final commit failed');
      }
      await new Promise((resolve) => setImmediate(resolve));
      const open = [...sessions.values()];
      for (const s of open) s.close(RelayCloseCode.GoingAway, 'relay shutting down');
      const timeout = new Promise<void>((resolve) => setTimeout(resolve, 2000).unref());
      await Promise.race([Promise.all(open.map((s) => s.done)), timeout]);
      for (const s of open) if (!s.isClosed) s.terminate();
      offControl();
      await notifier.close();
      await store.close();
      server.closeAllConnections();
      await serverClosed;
      log.info('relay stopped');
    })();
    return closing;
  };

  return { url, connectUrl, port, close };
}
