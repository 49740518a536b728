/**
 * Operating the relay: health and metrics endpoints, graceful shutdown (queued writes are
 * committed and answered, sockets close with 1001), TTL expiry, and a second connection of the
 * same device replacing the first.
 */
import { join } from 'node:path';
import { RelayErrorCode, type RelayFrame, RelayFrameType, toHex } from '@valise/protocol';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { RelayTestClient } from './client.js';
import { makeOrg, removeDir, routesFor, sealFor, startTestRelay } from './helpers.js';

const org = makeOrg();
const alice = org.enrol('Alice');
const bob = org.enrol('Bob', 'Embassy', { kem: 'x25519' });

describe('operations', { timeout: 60_000 }, () => {
  it('serves /healthz and /metrics', async () => {
    const relay = await startTestRelay(org);
    try {
      const a = await RelayTestClient.connect(relay.url, alice.creds);
      await a.send(sealFor(alice, [bob], 'counted'), routesFor([bob]));
      const health = await fetch(`${relay.url}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ status: 'ok', connections: 1, revocationSequence: null });
      const text = await (await fetch(`${relay.url}/metrics`)).text();
      expect(text).toMatch(/^valise_relay_connections 1$/m);
      expect(text).toMatch(/^valise_relay_frames_received_total\{type="send"\} 1$/m);
      expect(text).toMatch(/^valise_relay_messages_stored_total 1$/m);
      expect(text).toMatch(/^valise_relay_store_waiting_messages \d+$/m);
      expect(text).toMatch(/^valise_relay_store_ids_forgotten_early 0$/m);
      expect(text).toMatch(/^valise_relay_commit_batch_size_count [1-9]/m);
      expect(text).toMatch(/^valise_relay_commit_seconds_bucket/m);
      expect(text).toMatch(/^valise_relay_auth_total\{result="ok"\} 1$/m);
      await a.close();
    } finally {
      await relay.close();
      removeDir(relay.dataDir);
    }
  });

  it('shuts down gracefully: every Stored is committed, later requests are refused, sockets close with 1001', async () => {
    const relay = await startTestRelay(org, { limits: { messagesPerSecond: 10_000, burst: 10_000 } });
    const a = await RelayTestClient.connect(relay.url, alice.creds);
    const envelope = sealFor(alice, [bob], 'in flight at shutdown');
    let closing: Promise<void> | undefined;
    const outcomes = await Promise.all(
      Array.from({ length: 300 }, () =>
        a.send(envelope, routesFor([bob])).then(
          (r) => {
            closing ??= relay.close();
            return r;
          },
          () => undefined,
        ),
      ),
    );
    await closing;
    expect((await a.closed).code).toBe(1001);
    const stored = outcomes.filter((o): o is RelayFrame & { messageId: Uint8Array } => o?.type === RelayFrameType.Stored);
    const refused = outcomes.filter((o) => o?.type === RelayFrameType.Error);
    for (const r of refused) expect(r).toMatchObject({ code: RelayErrorCode.ShuttingDown });
    expect(stored.length).toBeGreaterThan(0);
    // Exactly the acknowledged items are in the store: restart and read them.
    const again = await startTestRelay(org, { dataDir: relay.dataDir });
    try {
      const b = await RelayTestClient.connect(again.url, bob.creds);
      await b.waitForDeliveries(stored.length);
      await new Promise((r) => setTimeout(r, 200));
      expect(b.deliveries.map((d) => toHex(d.messageId))).toEqual(stored.map((s) => toHex(s.messageId)));
      await b.close();
    } finally {
      await again.close();
      removeDir(relay.dataDir);
    }
  });

  it('expires deliveries after the TTL and drops the shared records with the last one', async () => {
    let clock = Date.now();
    const relay = await startTestRelay(org, { clock: () => clock, limits: { ttlSeconds: 60, expiryIntervalMs: 50 } });
    try {
      const a = await RelayTestClient.connect(relay.url, alice.creds);
      expect((await a.send(sealFor(alice, [bob], 'short-lived'), routesFor([bob]))).type).toBe(RelayFrameType.Stored);
      await a.close();
      clock += 61_000;
      const db = new Database(join(relay.dataDir, 'relay.db'), { readonly: true });
      const count = () => db.prepare('SELECT (SELECT count(*) FROM messages) + (SELECT count(*) FROM acked)').pluck().get() as number;
      const end = Date.now() + 5000;
      while (count() > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      expect(count()).toBe(0);
      db.close();
      const b = await RelayTestClient.connect(relay.url, bob.creds);
      await new Promise((r) => setTimeout(r, 200));
      expect(b.deliveries).toHaveLength(0);
      await b.close();
    } finally {
      await relay.close();
      removeDir(relay.dataDir);
    }
  });

  it('replaces an older connection of the same device (4000) and delivers to the newer one', async () => {
    const relay = await startTestRelay(org);
    try {
      const first = await RelayTestClient.connect(relay.url, bob.creds);
      const second = await RelayTestClient.connect(relay.url, bob.creds);
      expect((await first.closed).code).toBe(4000);
      const a = await RelayTestClient.connect(relay.url, alice.creds);
      await a.send(sealFor(alice, [bob], 'to the newer one'), routesFor([bob]));
      await second.waitForDeliveries(1);
      await Promise.all([a.close(), second.close()]);
    } finally {
      await relay.close();
      removeDir(relay.dataDir);
    }
  });
});
