/**
 * Prometheus metrics of one relay (GET /metrics). Each relay has its own registry so that several
 * relays in one process (tests) do not mix. Labels are bounded sets (frame types, error codes).
 */
import { RELAY_FRAME_NAMES } from '@valise/protocol';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'valise_relay_' });
  const framesIn = new Counter({
    name: 'valise_relay_frames_received_total',
    help: 'Frames received, by type',
    labelNames: ['type'],
    registers: [registry],
  });
  const framesOut = new Counter({
    name: 'valise_relay_frames_sent_total',
    help: 'Frames sent, by type',
    labelNames: ['type'],
    registers: [registry],
  });
  // Label children resolved once: a labels() lookup per frame costs more than the increment.
  const inByType = new Map<number, Counter.Internal>();
  const outByType = new Map<number, Counter.Internal>();
  for (const [type, name] of Object.entries(RELAY_FRAME_NAMES)) {
    inByType.set(Number(type), framesIn.labels(name));
    outByType.set(Number(type), framesOut.labels(name));
  }
  const invalidIn = framesIn.labels('invalid');
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
    framesIn,
    framesOut,
    /** Counts a received frame of this type (or an undecodable one). */
    frameIn: (type: number | 'invalid') => (type === 'invalid' ? invalidIn : inByType.get(type))?.inc(),
    frameOut: (type: number) => outByType.get(type)?.inc(),
    errors,
    auth,
    messagesStored: new Counter({
      name: 'valise_relay_messages_stored_total',
      help: 'Envelopes stored (one per Send)',
      registers: [registry],
    }),
    deliveriesStored: new Counter({
      name: 'valise_relay_deliveries_stored_total',
      help: 'Deliveries stored (one per route)',
      registers: [registry],
    }),
    deliveriesPushed: new Counter({ name: 'valise_relay_deliveries_pushed_total', help: 'Deliver frames sent', registers: [registry] }),
    acks: new Counter({ name: 'valise_relay_deliveries_acked_total', help: 'Deliveries deleted after an Ack', registers: [registry] }),
    bytesIn: new Counter({ name: 'valise_relay_bytes_received_total', help: 'Bytes of frames received', registers: [registry] }),
    commitBatch: new Histogram({
      name: 'valise_relay_commit_batch_size',
      help: 'Writes per committed transaction',
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
      registers: [registry],
    }),
    writeSeconds: new Histogram({
      name: 'valise_relay_write_seconds',
      help: 'From a write being queued to its commit being known on the main thread (queueing and group commit)',
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
