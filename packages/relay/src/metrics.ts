/**
 * Prometheus metrics of one relay (GET /metrics). Each relay has its own registry so that several
 * relays in one process (tests) do not mix. Labels are bounded sets (frame types, error codes).
 */
import { RELAY_FRAME_NAMES } from '@valise/protocol';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { StoreStats } from './store.js';

/**
 * A counter kept as a plain number on the hot path and handed to prom-client only when scraped:
 * `Counter.inc()` validates and hashes its labels on every call, which costs more than the
 * relay's own work for a small message.
 */
function lazyCounter(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** The same, by label: one plain number per label value. */
function lazyLabelledCounter(registry: Registry, name: string, help: string, label: string, read: () => Iterable<[string, number]>): void {
  new Counter({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect() {
      this.reset();
      for (const [value, n] of read()) if (n > 0) this.labels(value).inc(n);
    },
  });
}

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'valise_relay_' });
  // Frame counts by type code (a byte), plus one slot for undecodable frames.
  const INVALID = 256;
  const framesIn = new Float64Array(257);
  const framesOut = new Float64Array(257);
  const byName = (counts: Float64Array) =>
    function* (): Iterable<[string, number]> {
      for (const [type, name] of Object.entries(RELAY_FRAME_NAMES)) yield [name, counts[Number(type)] as number];
      yield ['invalid', counts[INVALID] as number];
    };
  lazyLabelledCounter(registry, 'valise_relay_frames_received_total', 'Frames received, by type', 'type', byName(framesIn));
  lazyLabelledCounter(registry, 'valise_relay_frames_sent_total', 'Frames sent, by type', 'type', byName(framesOut));
  const counts = { messagesStored: 0, deliveriesStored: 0, deliveriesPushed: 0, acks: 0, bytesIn: 0 };
  lazyCounter(registry, 'valise_relay_messages_stored_total', 'Envelopes stored (one per Send)', () => counts.messagesStored);
  lazyCounter(registry, 'valise_relay_deliveries_stored_total', 'Deliveries stored (one per route)', () => counts.deliveriesStored);
  lazyCounter(registry, 'valise_relay_deliveries_pushed_total', 'Deliver frames sent', () => counts.deliveriesPushed);
  lazyCounter(registry, 'valise_relay_deliveries_acked_total', 'Deliveries deleted after an Ack', () => counts.acks);
  lazyCounter(registry, 'valise_relay_bytes_received_total', 'Bytes of frames received', () => counts.bytesIn);
  const errors = new Counter({
    name: 'valise_relay_errors_total',
    help: 'Error frames sent, by code',
    labelNames: ['code'],
    registers: [registry],
  });
  const auth = new Counter({
    name: 'valise_relay_auth_total',
    help: 'Connection attempts, by result (ok or an error code)',
    labelNames: ['result'],
    registers: [registry],
  });
  return {
    registry,
    connections: new Gauge({ name: 'valise_relay_connections', help: 'Open WebSocket connections', registers: [registry] }),
    /** Counts a received frame of this type (or an undecodable one). */
    frameIn: (type: number | 'invalid') => {
      const i = type === 'invalid' ? INVALID : type & 0xff;
      framesIn[i] = (framesIn[i] as number) + 1;
    },
    frameOut: (type: number) => {
      framesOut[type & 0xff] = (framesOut[type & 0xff] as number) + 1;
    },
    /** Plain counters of the hot path, read when /metrics is scraped. */
    counts,
    errors,
    auth,
    commitBatch: new Histogram({
      name: 'valise_relay_commit_batch_size',
      help: 'Writes per committed transaction',
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000],
      registers: [registry],
    }),
    writeSeconds: new Histogram({
      name: 'valise_relay_write_seconds',
      help: 'From a batch of writes being opened to its commit being known on the main thread (gathering and group commit)',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2],
      registers: [registry],
    }),
    commitSeconds: new Histogram({
      name: 'valise_relay_commit_seconds',
      help: 'Duration of one group commit (transaction and fsync)',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5],
      registers: [registry],
    }),
  };
}

export type RelayMetrics = ReturnType<typeof createMetrics>;

/** Gauges of the store's contents, read from `stats()` when /metrics is scraped. */
export function registerStoreMetrics(registry: Registry, stats: () => Promise<StoreStats>): void {
  const gauge = (name: string, help: string, pick: (s: StoreStats) => number | undefined) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        const v = pick(await stats());
        if (v !== undefined) this.set(v);
      },
    });
  gauge('valise_relay_store_waiting_messages', 'Messages with a delivery waiting', (s) => s.messages);
  gauge('valise_relay_store_waiting_deliveries', 'Deliveries waiting in mailboxes', (s) => s.deliveries);
  gauge('valise_relay_store_remembered_ids', 'Message ids remembered for deduplication', (s) => s.rememberedIds);
  gauge(
    'valise_relay_store_ids_forgotten_early',
    'Message ids forgotten before their dedupe window ended (dedupeMaxIds reached)',
    (s) => s.idsForgottenEarly,
  );
}
