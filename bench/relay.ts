/**
 * Relay benchmark: `npm run build && node --import tsx bench/relay.ts [--quick] [--no-write] [--only relay|floor]`
 * (the relay runs from the built packages).
 *
 * The relay (authentication, SQLite with synchronous=FULL and group commit) runs in a child
 * process, beside its floor in the same run: a bare `ws` forwarder, also in a child process, that
 * stores nothing, parses nothing and answers each message with a fixed 4-byte ack. Clients run
 * in this process and do the same work against both: CBOR Send frames with fresh ids out,
 * decoded frames in, batched Acks back. Everything goes to 127.0.0.1 and is bounded in count.
 *
 * Scenarios (each server is a fresh child, so that its peak RSS belongs to that scenario alone):
 *   1. throughput: 100 sender/receiver pairs, each sender keeping a window of sends outstanding,
 *      ~1 KiB envelopes; messages per second, delivery latency (send to receipt), peak RSS,
 *      server CPU time per message (process.cpuUsage of the server, all threads);
 *   2. latency at 1,000, 5,000 and 10,000 messages per second offered (open loop; latency counted
 *      from the scheduled send time, so a stalled sender cannot hide queueing);
 *   3. a circular to 134 X-Wing devices: one Send, time until the last recipient's Ack is
 *      committed (its Ok received).
 *
 * Prints a markdown table and writes it to bench/RELAY-RESULTS.md.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import os from 'node:os';
import { join } from 'node:path';
import { type EventLoopUtilization, performance as nodePerformance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import WebSocket, { WebSocketServer } from 'ws';
import {
  type DeviceCert,
  decodeRelayFrame,
  encodeRelayFrame,
  fromBase64Url,
  fromHex,
  generateOrgRoot,
  generatePersonIdentity,
  getProvider,
  issueDeviceCert,
  issuePersonCert,
  KemId,
  type OrgRoot,
  type PersonCert,
  RelayAuthHeader,
  RelayFrameType,
  relayAuthMessage,
  relayMessageId,
  seal,
  systemRandom,
  toBase64Url,
  toHex,
  type VerifiedDevice,
  verifyDeviceChain,
  xwingKeyPairFromSeed,
} from '../packages/protocol/src/index.js';
import { useNodeCrypto } from '../packages/protocol/src/node.js';

const SELF = fileURLToPath(import.meta.url);
const PAIRS = 100;
const CIRCULAR_RECIPIENTS = 134;

// ---------------------------------------------------------------------------------------------
// Servers (child processes)

interface CommitStats {
  transactions: number;
  /** Batches handed to the writer (one per event-loop turn with writes; a transaction takes all that queued). */
  batches: number;
  writes: number;
  seconds: number;
  waitSeconds: number;
}
type ServerReport = {
  cpu: NodeJS.CpuUsage;
  /** User + system time of the main thread alone (Linux), in µs. */
  mainThreadCpuMicros?: number;
  /** CPU µs per thread (Linux), by "tid name". */
  threads?: Record<string, number>;
  maxRssKb: number;
  mainElu?: EventLoopUtilization;
  writerElu?: EventLoopUtilization;
  commits?: CommitStats;
};

/** The main thread's own CPU time from /proc (its task id is the process id), or undefined off Linux. */
function mainThreadCpuMicros(): number | undefined {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces): utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1e6) / 100; // USER_HZ is 100 on Linux
  } catch {
    return undefined;
  }
}

function threadCpu(): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out[`${tid} ${name}`] = ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100;
    }
  } catch {}
  return out;
}

function reportOnRequest(close: () => Promise<void>, writer?: () => EventLoopUtilization, commits?: CommitStats): void {
  process.on('message', (m: unknown) => {
    if (m === 'report') {
      const report: ServerReport = {
        cpu: process.cpuUsage(),
        mainThreadCpuMicros: mainThreadCpuMicros(),
        threads: threadCpu(),
        maxRssKb: process.resourceUsage().maxRSS,
        mainElu: nodePerformance.eventLoopUtilization(),
      };
      if (writer !== undefined) report.writerElu = writer();
      if (commits !== undefined) report.commits = { ...commits };
      process.send?.(report);
    }
    if (m === 'stop') void close().then(() => process.exit(0));
  });
}

async function serveRelay(dataDir: string, rootHex: string): Promise<void> {
  // The built relay, as `valise relay serve` runs it: TypeScript run through a loader keeps
  // function names with a helper call per closure, which would bill the relay for the loader.
  const { startRelay, SqliteStore } = (await import(
    '../packages/relay/dist/index.js' as string
  )) as typeof import('../packages/relay/src/index.js');
  const { pino } = await import('pino');
  // The bench opens the store itself, to read its writer thread's utilisation (startRelay would
  // open the same store with the same defaults).
  const commits: CommitStats = { transactions: 0, batches: 0, writes: 0, seconds: 0, waitSeconds: 0 };
  const store = await SqliteStore.open(dataDir, {
    // VALISE_BENCH_COMMIT_DELAY=ms tries the relay's commitDelayMs limit (default 0).
    commitDelayMs: Number(process.env.VALISE_BENCH_COMMIT_DELAY ?? 0),
    onCommit: (writes, seconds) => {
      commits.transactions++;
      commits.writes += writes;
      commits.seconds += seconds;
    },
    onWriteLatency: (seconds) => {
      commits.batches++;
      commits.waitSeconds += seconds;
    },
  });
  const relay = await startRelay({
    store,
    dataDir,
    orgRootPublicKey: fromHex(rootHex),
    logger: pino({ level: 'warn' }),
    // The per-device rate limit and mailbox bounds would throttle a benchmark; every other
    // default (durability, group commit, frame size, windows) is kept.
    limits: { messagesPerSecond: 1e9, burst: 1e9, mailboxMaxMessages: 1e7, maxPendingRequests: 4096 },
  });
  reportOnRequest(
    () => relay.close(),
    () => store.writerUtilization(),
    commits,
  );
  process.send?.({ port: relay.port });
}

/**
 * Sends `data` on `ws`, coalescing every frame of one event-loop turn into one write (the relay
 * does the same; the floor and the clients get it too, so that the comparison is of the work,
 * not of the system calls).
 */
function sendCorked(ws: WebSocket, data: Uint8Array): void {
  const socket = (ws as unknown as { _socket: { cork(): void; uncork(): void } })._socket;
  const state = ws as unknown as { corkedForBench?: boolean };
  if (!state.corkedForBench) {
    state.corkedForBench = true;
    socket.cork();
    setImmediate(() => {
      state.corkedForBench = false;
      socket.uncork();
    });
  }
  ws.send(data);
}

/** The floor: forwards each message from sender i to receiver i, acks it with 4 bytes, stores nothing. */
async function serveFloor(): Promise<void> {
  const ACK = Buffer.from([0, 0, 0, 1]);
  const receivers = new Map<number, WebSocket>();
  const server = createServer((_req, res) => res.end());
  const wss = new WebSocketServer({ noServer: true, maxPayload: 32 << 20, perMessageDeflate: false, clientTracking: false });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://floor');
    const role = url.searchParams.get('role');
    const i = Number(url.searchParams.get('i'));
    wss.handleUpgrade(req, socket, head, (ws) => {
      if (role === 'r') receivers.set(i, ws);
      else
        ws.on('message', (data: Buffer) => {
          const r = receivers.get(i);
          if (r !== undefined) sendCorked(r, data);
          sendCorked(ws, ACK);
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  reportOnRequest(async () => {
    server.close();
  });
  const address = server.address();
  process.send?.({ port: typeof address === 'object' && address !== null ? address.port : 0 });
}

interface Child {
  proc: ChildProcess;
  port: number;
  report(): Promise<ServerReport>;
  stop(): Promise<void>;
}

async function startChild(args: string[]): Promise<Child> {
  // VALISE_BENCH_PROFILE=DIR writes a CPU profile of each server child (all threads) to DIR.
  const profile = process.env.VALISE_BENCH_PROFILE;
  const execArgv = [
    '--import',
    'tsx',
    ...(process.env.VALISE_BENCH_NODE_FLAGS?.split(' ') ?? []),
    ...(profile ? ['--cpu-prof', '--cpu-prof-dir', profile, '--cpu-prof-interval', '500'] : []),
  ];
  const proc = fork(SELF, args, { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    proc.once('message', (m: { port: number }) => resolve(m.port));
    proc.once('exit', (code) => reject(new Error(`server child exited (${code})`)));
  });
  return {
    proc,
    port,
    report: () =>
      new Promise((resolve) => {
        proc.once('message', (m: ServerReport) => resolve(m));
        proc.send('report');
      }),
    stop: () =>
      new Promise((resolve) => {
        proc.once('exit', () => resolve());
        proc.send('stop');
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// Organisation and envelopes

interface Device {
  person: PersonCert;
  device: DeviceCert;
  verified: VerifiedDevice;
  signingSecretKey: Uint8Array;
}

function enrol(root: OrgRoot, name: string, kem: 'x25519' | 'xwing'): Device {
  const now = Math.floor(Date.now() / 1000);
  const identity = generatePersonIdentity();
  const person = issuePersonCert(root, {
    identityKey: identity.publicKey,
    name,
    title: 'Officer',
    unit: 'Bench',
    validFrom: now - 60,
    validUntil: now + 86400,
  });
  const signingSecretKey = systemRandom(32);
  const encryption =
    kem === 'xwing'
      ? { kem: KemId.XWing, publicKey: xwingKeyPairFromSeed(systemRandom(32)).publicKey }
      : { kem: KemId.DhkemX25519HkdfSha256, publicKey: getProvider().x25519PublicKey(systemRandom(32)) };
  const device = issueDeviceCert(identity, person, {
    signingKey: getProvider().ed25519PublicKey(signingSecretKey),
    encryption,
    label: 'bench',
    validFrom: now - 60,
    validUntil: now + 86400,
  });
  const verified = verifyDeviceChain({ person: person.bytes, device: device.bytes }, { rootPublicKey: root.publicKey }, now);
  return { person, device, verified, signingSecretKey };
}

function sealEnvelope(sender: Device, recipients: Device[], bodyLength: number): Uint8Array {
  return seal(
    { subject: 'Bench', classification: 'UNCLASSIFIED', distribution: [] },
    new Uint8Array(bodyLength).fill(0x61),
    { chain: { person: sender.person.bytes, device: sender.device.bytes }, signingSecretKey: sender.signingSecretKey },
    recipients.map((r) => r.verified),
  );
}

/** An envelope of about 1 KiB to one DHKEM recipient: the largest body that stays within 1024 bytes. */
function envelopeNear1KiB(sender: Device, recipient: Device): Uint8Array {
  let best = sealEnvelope(sender, [recipient], 1);
  for (let body = 16; body <= 1024; body += 16) {
    const e = sealEnvelope(sender, [recipient], body);
    if (e.length > 1024) break;
    best = e;
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
// Clients

/** Acks for one receiver, gathered and sent once per event-loop turn, as a client would. */
function ackBatcher(socket: () => WebSocket): (messageId: Uint8Array) => void {
  let pending: Uint8Array[] = [];
  return (messageId) => {
    pending.push(messageId);
    if (pending.length > 1) return;
    setImmediate(() => {
      const messageIds = pending;
      pending = [];
      sendCorked(socket(), encodeRelayFrame({ type: RelayFrameType.Ack, requestId: requestIds++, messageIds }));
    });
  };
}

/** Throws on a relay Error frame; any other frame the caller does not handle is ignored. */
function failOnError(data: Buffer): void {
  const f = decodeRelayFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  if (f.type === RelayFrameType.Error) throw new Error(`relay error ${f.code}: ${f.message}`);
}

/** Opens a socket and attaches `onMessage` before the upgrade completes (no frame can be missed). */
function openWs(url: string, headers: Record<string, string>, onMessage: (data: Buffer) => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false, maxPayload: 64 << 20 });
    ws.on('message', onMessage);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`refused: ${res.statusCode} ${res.headers[RelayAuthHeader.Error]}`)));
  });
}

async function connectRelay(port: number, d: Device, onMessage: (data: Buffer) => void): Promise<WebSocket> {
  const base = `http://127.0.0.1:${port}`;
  const { challenge } = (await (await fetch(`${base}/v1/challenge`)).json()) as { challenge: string };
  const c = fromBase64Url(challenge);
  const host = `127.0.0.1:${port}`;
  const headers = {
    [RelayAuthHeader.PersonCert]: toBase64Url(d.person.bytes),
    [RelayAuthHeader.DeviceCert]: toBase64Url(d.device.bytes),
    [RelayAuthHeader.Challenge]: challenge,
    [RelayAuthHeader.Signature]: toBase64Url(getProvider().ed25519Sign(relayAuthMessage(c, host), d.signingSecretKey)),
  };
  return openWs(`ws://${host}/v1/connect`, headers, onMessage);
}

/** Latencies (ms) and the time of the last receipt. */
class Recorder {
  readonly latencies: number[] = [];
  delivered = 0;
  lastAt = 0;
  record(sentAt: number, at: number): void {
    this.latencies.push(at - sentAt);
    this.delivered++;
    this.lastAt = at;
  }
}

const now = () => performance.now();
let requestIds = 1;

/**
 * The load generator keeps its own per-message work small, so that the servers, not the
 * clients, are measured: Send frames are encoded once per sender and only their client message
 * id is patched (request id fixed at 1); Stored and Deliver frames are read at their fixed
 * offsets after a check of their first bytes (the encoding is deterministic), not fully decoded.
 * Acks are encoded normally, one per receiver per event-loop turn.
 */
const SEND_ID_OFFSET = 10; // a6 00 01 01 18 28 02 01 03 50 | clientMessageId
const STORED_HEAD = [0xa5, 0x00, 0x01, 0x01, 0x18, 0x32, 0x02, 0x01, 0x03, 0x50];
const DELIVER_HEAD = [0xa5, 0x00, 0x01, 0x01, 0x18, 0x33, 0x02, 0x50];
const OK_HEAD = [0xa3, 0x00, 0x01, 0x01, 0x18, 0x34, 0x02];
const startsWith = (b: Uint8Array, head: number[]) => head.every((x, i) => b[i] === x);
let idCounter = 0;
const idSalt = randomBytes(8);
/** Unique client message ids: a counter and a per-run random salt. */
function nextClientId(): Buffer {
  const id = Buffer.allocUnsafe(16);
  id.writeDoubleBE(++idCounter, 0);
  idSalt.copy(id, 8);
  return id;
}

/** Sender i's Send frame, with its client message id to be patched in at SEND_ID_OFFSET. */
function sendTemplate(envelope: Uint8Array, mailbox: Uint8Array): Buffer {
  const t = Buffer.from(
    encodeRelayFrame({
      type: RelayFrameType.Send,
      requestId: 1,
      clientMessageId: new Uint8Array(16),
      envelope,
      routes: [{ entryIndex: 0, mailbox }],
    }),
  );
  if (!startsWith(t, [0xa6, 0x00, 0x01, 0x01, 0x18, 0x28, 0x02, 0x01, 0x03, 0x50])) throw new Error('unexpected Send layout');
  return t;
}

function sendFrom(template: Buffer): { frame: Buffer; id: Buffer } {
  const frame = Buffer.from(template);
  const id = nextClientId();
  id.copy(frame, SEND_ID_OFFSET);
  return { frame, id };
}

/** What one scenario's clients do; the relay and floor variants differ only in framing and routing. */
interface Pairs {
  /** Sends one ~1 KiB item from sender i, remembering `sentAt` for its latency. */
  send(i: number, sentAt: number): void;
  /** Called when sender i's send is acknowledged (Stored, or the floor's ack). */
  onAck: (i: number) => void;
  recorder: Recorder;
  close(): Promise<void>;
}

/**
 * 100 relay senders and receivers; receivers batch their Acks once per event-loop turn. The
 * message id of each Send is derived here as the relay derives it (sender mailbox and client
 * message id), so that a Deliver finds its send time directly, whether it arrives before or after
 * its Stored (the relay pushes deliveries while their commit runs).
 */
async function relayPairs(port: number, senders: Device[], receivers: Device[], envelopes: Uint8Array[]): Promise<Pairs> {
  const recorder = new Recorder();
  const sentAtByMessageId = new Map<string, number>();
  const pairs: Pairs = {
    send: () => {},
    onAck: () => {},
    recorder,
    close: async () => {},
  };
  const receiverSockets: WebSocket[] = [];
  for (const [i, r] of receivers.entries()) {
    const ack = ackBatcher(() => ws);
    const ws = await connectRelay(port, r, (data) => {
      if (!startsWith(data, DELIVER_HEAD)) {
        if (startsWith(data, OK_HEAD)) return; // the answer to an Ack
        failOnError(data);
        return;
      }
      const at = now();
      const k = data.toString('latin1', 8, 24);
      const sentAt = sentAtByMessageId.get(k);
      if (sentAt === undefined) throw new Error('a Deliver for a message id this benchmark did not send (or twice)');
      recorder.record(sentAt, at);
      sentAtByMessageId.delete(k);
      ack(new Uint8Array(data.subarray(8, 24)));
    });
    receiverSockets[i] = ws;
  }
  const senderSockets: WebSocket[] = [];
  for (const [i, s] of senders.entries()) {
    senderSockets[i] = await connectRelay(port, s, (data) => {
      if (!startsWith(data, STORED_HEAD)) {
        failOnError(data);
        return;
      }
      pairs.onAck(i);
    });
  }
  const templates = receivers.map((r, i) => sendTemplate(envelopes[i] as Uint8Array, r.device.certId));
  pairs.send = (i, sentAt) => {
    const { frame, id } = sendFrom(templates[i] as Buffer);
    const messageId = relayMessageId((senders[i] as Device).device.certId, id);
    sentAtByMessageId.set(String.fromCharCode.apply(null, messageId as unknown as number[]), sentAt);
    sendCorked(senderSockets[i] as WebSocket, frame);
  };
  pairs.close = () => closeAll([...senderSockets, ...receiverSockets]);
  return pairs;
}

/** The same clients against the floor: same Send frames out, decoded on receipt, Acks back. */
async function floorPairs(port: number, receivers: Device[], envelopes: Uint8Array[]): Promise<Pairs> {
  const recorder = new Recorder();
  const sentAtByClientId = new Map<string, number>();
  const pairs: Pairs = { send: () => {}, onAck: () => {}, recorder, close: async () => {} };
  const receiverSockets: WebSocket[] = [];
  for (let i = 0; i < receivers.length; i++) {
    const ack = ackBatcher(() => ws);
    const ws = await openWs(`ws://127.0.0.1:${port}/?role=r&i=${i}`, {}, (data) => {
      const at = now();
      const k = data.toString('latin1', SEND_ID_OFFSET, SEND_ID_OFFSET + 16);
      recorder.record(sentAtByClientId.get(k) as number, at);
      sentAtByClientId.delete(k);
      ack(new Uint8Array(data.subarray(SEND_ID_OFFSET, SEND_ID_OFFSET + 16)));
    });
    receiverSockets[i] = ws;
  }
  const senderSockets: WebSocket[] = [];
  for (let i = 0; i < receivers.length; i++) {
    senderSockets[i] = await openWs(`ws://127.0.0.1:${port}/?role=s&i=${i}`, {}, () => pairs.onAck(i));
  }
  const templates = receivers.map((r, i) => sendTemplate(envelopes[i] as Uint8Array, r.device.certId));
  pairs.send = (i, sentAt) => {
    const { frame, id } = sendFrom(templates[i] as Buffer);
    sentAtByClientId.set(id.toString('latin1'), sentAt);
    sendCorked(senderSockets[i] as WebSocket, frame);
  };
  pairs.close = () => closeAll([...senderSockets, ...receiverSockets]);
  return pairs;
}

async function closeAll(sockets: WebSocket[]): Promise<void> {
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === WebSocket.CLOSED) return resolve();
          ws.once('close', () => resolve());
          ws.close();
        }),
    ),
  );
}

/** Closed loop: every sender keeps `window` sends unacknowledged until it has sent `perSender`. */
function closedLoop(pairs: Pairs, perSender: number, window: number): Promise<{ count: number; seconds: number }> {
  const total = PAIRS * perSender;
  const sent = new Array<number>(PAIRS).fill(0);
  const outstanding = new Array<number>(PAIRS).fill(0);
  const start = now();
  const startDelivered = pairs.recorder.delivered;
  const fill = (i: number) => {
    while ((outstanding[i] as number) < window && (sent[i] as number) < perSender) {
      sent[i]!++;
      outstanding[i]!++;
      pairs.send(i, now());
    }
  };
  return new Promise((resolve) => {
    pairs.onAck = (i) => {
      outstanding[i]!--;
      fill(i);
    };
    const check = setInterval(() => {
      if (pairs.recorder.delivered - startDelivered >= total) {
        clearInterval(check);
        resolve({ count: total, seconds: (pairs.recorder.lastAt - start) / 1000 });
      }
    }, 5);
    for (let i = 0; i < PAIRS; i++) fill(i);
  });
}

/** Open loop: `rate` messages per second round-robin over the senders, latency from the scheduled time. */
function openLoop(pairs: Pairs, rate: number, seconds: number): Promise<{ count: number; seconds: number }> {
  const total = Math.round(rate * seconds);
  const start = now();
  const startDelivered = pairs.recorder.delivered;
  let sent = 0;
  pairs.onAck = () => {};
  return new Promise((resolve) => {
    const tick = setInterval(() => {
      const due = Math.min(total, Math.floor(((now() - start) * rate) / 1000));
      while (sent < due) {
        pairs.send(sent % PAIRS, start + (sent * 1000) / rate);
        sent++;
      }
      if (sent >= total && pairs.recorder.delivered - startDelivered >= total) {
        clearInterval(tick);
        resolve({ count: total, seconds: (pairs.recorder.lastAt - start) / 1000 });
      }
    }, 1);
  });
}

// ---------------------------------------------------------------------------------------------
// Results

interface Row {
  scenario: string;
  server: string;
  messages: number;
  perSecond: number;
  p50: number;
  p99: number;
  maxRssMb: number;
  cpuUsPerMessage: number;
  /** The main thread's share of it. */
  mainCpuUsPerMessage?: number;
  /** CPU of this process (the load generator, all clients) per message. */
  clientCpuUsPerMessage?: number;
  /** Busy share of the server's main thread and of the relay's writer thread during the run. */
  mainBusy?: number;
  writerBusy?: number;
  /** Group-commit statistics of the run (relay only). */
  commits?: CommitStats;
  note?: string;
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = values.slice().sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

const cpuMicros = (a: NodeJS.CpuUsage, b: NodeJS.CpuUsage) => b.user - a.user + (b.system - a.system);
const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '-');

async function measure(
  scenario: string,
  server: string,
  child: Child,
  pairs: Pairs,
  run: () => Promise<{ count: number; seconds: number }>,
): Promise<Row> {
  const before = await child.report();
  pairs.recorder.latencies.length = 0;
  const clientBefore = process.cpuUsage();
  const r = await run();
  const clientCpu = process.cpuUsage(clientBefore);
  const after = await child.report();
  if (process.env.VALISE_BENCH_THREADS) {
    process.stderr.write(`  ${server} ${scenario} load generator: ${((clientCpu.user + clientCpu.system) / r.count).toFixed(1)} µs/msg\n`);
    for (const [k, v] of Object.entries(after.threads ?? {})) {
      const d = v - (before.threads?.[k] ?? 0);
      if (d > 0) process.stderr.write(`  ${server} ${scenario} thread ${k}: ${(d / r.count).toFixed(1)} µs/msg\n`);
    }
  }
  return {
    scenario,
    server,
    messages: r.count,
    perSecond: r.count / r.seconds,
    p50: percentile(pairs.recorder.latencies, 50),
    p99: percentile(pairs.recorder.latencies, 99),
    maxRssMb: after.maxRssKb / 1024,
    cpuUsPerMessage: cpuMicros(before.cpu, after.cpu) / r.count,
    clientCpuUsPerMessage: (clientCpu.user + clientCpu.system) / r.count,
    ...(before.mainThreadCpuMicros !== undefined && after.mainThreadCpuMicros !== undefined
      ? { mainCpuUsPerMessage: (after.mainThreadCpuMicros - before.mainThreadCpuMicros) / r.count }
      : {}),
    ...busy(before, after),
    ...(before.commits && after.commits
      ? {
          commits: {
            transactions: after.commits.transactions - before.commits.transactions,
            batches: after.commits.batches - before.commits.batches,
            writes: after.commits.writes - before.commits.writes,
            seconds: after.commits.seconds - before.commits.seconds,
            waitSeconds: after.commits.waitSeconds - before.commits.waitSeconds,
          },
        }
      : {}),
  };
}

/** Utilisation between two reports (ELU objects are cumulative: the difference is the run's). */
function busy(before: ServerReport, after: ServerReport): { mainBusy?: number; writerBusy?: number } {
  const share = (a?: EventLoopUtilization, b?: EventLoopUtilization) =>
    a && b ? (b.active - a.active) / (b.active - a.active + (b.idle - a.idle)) : undefined;
  const out: { mainBusy?: number; writerBusy?: number } = {};
  const m = share(before.mainElu, after.mainElu);
  const w = share(before.writerElu, after.writerElu);
  if (m !== undefined) out.mainBusy = m;
  if (w !== undefined) out.writerBusy = w;
  return out;
}

async function main(): Promise<void> {
  useNodeCrypto();
  const quick = process.argv.includes('--quick');
  const write = !process.argv.includes('--no-write');
  const perSender = Number(process.env.VALISE_BENCH_PER_SENDER ?? (quick ? 60 : 300));
  const window = 32;
  const openSeconds = quick ? 1.5 : 5;
  const circularReps = quick ? 5 : 20;
  const log = (s: string) => process.stderr.write(`${s}\n`);

  log('enrolling devices and sealing envelopes ...');
  const root = generateOrgRoot();
  const rootHex = toHex(root.publicKey);
  const senders = Array.from({ length: PAIRS }, (_, i) => enrol(root, `Sender ${i}`, 'x25519'));
  const receivers = Array.from({ length: PAIRS }, (_, i) => enrol(root, `Receiver ${i}`, 'x25519'));
  const envelopes = senders.map((s, i) => envelopeNear1KiB(s, receivers[i] as Device));
  const envelopeBytes = envelopes[0]?.length ?? 0;
  const tmp = mkdtempSync(join(os.tmpdir(), 'valise-relay-bench-'));
  const rows: Row[] = [];
  let commitNote = '';

  try {
    // 1 + 2. Throughput, then latency at fixed offered rates, relay and floor, each on a fresh child.
    // VALISE_BENCH_SCENARIOS=throughput,10000 runs only those (for profiling).
    const pick = process.env.VALISE_BENCH_SCENARIOS?.split(',');
    const scenarios = (['throughput', 1_000, 5_000, 10_000] as const).filter((s) => pick === undefined || pick.includes(String(s)));
    const only = process.argv[process.argv.indexOf('--only') + 1];
    const servers = (['relay', 'floor'] as const).filter((s) => !process.argv.includes('--only') || s === only);
    // Each scenario runs `rounds` times, relay and floor in turn, and the median run is reported
    // (by rate for throughput, by p99 for offered loads): one run on a shared machine is noisy.
    const rounds = Number(process.env.VALISE_BENCH_ROUNDS ?? (quick ? 1 : 3));
    const runs = new Map<string, Row[]>();
    for (let round = 0; round < rounds; round++) {
      for (const scenario of scenarios) {
        for (const server of servers) {
          const child =
            server === 'relay'
              ? await startChild(['--serve-relay', mkdtempSync(join(tmp, 'r-')), rootHex])
              : await startChild(['--serve-floor']);
          const pairs =
            server === 'relay'
              ? await relayPairs(child.port, senders, receivers, envelopes)
              : await floorPairs(child.port, receivers, envelopes);
          log(`round ${round + 1}/${rounds}, ${server} ${scenario}: warming up ...`);
          await closedLoop(pairs, quick ? 10 : 100, window);
          let row: Row;
          if (scenario === 'throughput') {
            row = await measure(`throughput, ${PAIRS} pairs, window ${window}`, server, child, pairs, () =>
              closedLoop(pairs, perSender, window),
            );
          } else {
            row = await measure(`${scenario.toLocaleString('en')} msg/s offered`, server, child, pairs, () =>
              openLoop(pairs, scenario, openSeconds),
            );
          }
          log(
            `  ${fmt(row.perSecond, 0)} msg/s, p99 ${fmt(row.p99, 2)} ms, ${fmt(row.cpuUsPerMessage, 1)} µs/msg${row.commits ? `, ${row.commits.transactions} transactions of ${row.commits.batches} batches` : ''}`,
          );
          const key = `${server} ${scenario}`;
          runs.set(key, [...(runs.get(key) ?? []), row]);
          await pairs.close();
          await child.stop();
        }
      }
    }
    for (const scenario of scenarios) {
      for (const server of servers) {
        const all = runs.get(`${server} ${scenario}`) ?? [];
        const metric = (r: Row) => (scenario === 'throughput' ? r.perSecond : r.p99);
        const sorted = all.slice().sort((a, b) => metric(a) - metric(b));
        const row = sorted[Math.floor(sorted.length / 2)] as Row;
        if (all.length > 1) {
          const list = all.map((r) => (scenario === 'throughput' ? `${fmt(r.perSecond, 0)} msg/s` : `p99 ${fmt(r.p99, 2)} ms`)).join(', ');
          row.note = `median of ${all.length} runs (${list}); server CPU ${all.map((r) => fmt(r.cpuUsPerMessage, 1)).join(', ')} µs/msg`;
        }
        rows.push(row);
        if (server === 'relay' && scenario === 'throughput' && row.commits !== undefined) {
          const c = row.commits;
          commitNote = `relay group commit during the throughput run: ${c.transactions} transactions (taking ${c.batches} batches) of ${fmt(c.writes / c.transactions)} writes on average, ${fmt((c.seconds / c.transactions) * 1000, 2)} ms each (statements, WAL write and fsync); a batch takes ${fmt((c.waitSeconds / c.transactions) * 1000, 2)} ms on average from its first write to its commit being known`;
        }
      }
    }

    // 3. A circular to 134 X-Wing devices.
    log(`circular: enrolling ${CIRCULAR_RECIPIENTS} X-Wing devices and sealing ...`);
    const hq = enrol(root, 'Registry', 'xwing');
    const missions = Array.from({ length: CIRCULAR_RECIPIENTS }, (_, i) => enrol(root, `Mission ${i}`, 'xwing'));
    const circular = sealEnvelope(hq, missions, 4096);
    const child = await startChild(['--serve-relay', mkdtempSync(join(tmp, 'c-')), rootHex]);
    let oks = 0;
    let onAllOk: () => void = () => {};
    const recipientSockets: WebSocket[] = [];
    for (const m of missions) {
      const ws: WebSocket = await connectRelay(child.port, m, (data) => {
        const f = decodeRelayFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
        if (f.type === RelayFrameType.Deliver)
          ws.send(encodeRelayFrame({ type: RelayFrameType.Ack, requestId: requestIds++, messageIds: [f.messageId] }));
        else if (f.type === RelayFrameType.Ok && ++oks === CIRCULAR_RECIPIENTS) onAllOk();
      });
      recipientSockets.push(ws);
    }
    let onStored: () => void = () => {};
    const sender = await connectRelay(child.port, hq, (data) => {
      const f = decodeRelayFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      if (f.type === RelayFrameType.Stored) onStored();
      else if (f.type === RelayFrameType.Error) throw new Error(`relay error ${f.code}`);
    });
    const routes = missions.map((m, i) => ({ entryIndex: i, mailbox: m.device.certId }));
    const times: number[] = [];
    const storedTimes: number[] = [];
    let before: ServerReport | undefined;
    for (let rep = -2; rep < circularReps; rep++) {
      if (rep === 0) before = await child.report();
      oks = 0;
      const t0 = now();
      const done = new Promise<void>((resolve) => {
        onAllOk = resolve;
      });
      const stored = new Promise<void>((resolve) => {
        onStored = resolve;
      });
      sender.send(
        encodeRelayFrame({
          type: RelayFrameType.Send,
          requestId: requestIds++,
          clientMessageId: new Uint8Array(randomBytes(16)),
          envelope: circular,
          routes,
        }),
      );
      await stored;
      const t1 = now();
      await done;
      if (rep >= 0) {
        times.push(now() - t0);
        storedTimes.push(t1 - t0);
      }
    }
    const after = await child.report();
    rows.push({
      scenario: `circular to ${CIRCULAR_RECIPIENTS} X-Wing devices (${Math.round(circular.length / 1024)} KiB envelope), send to last Ack committed`,
      server: 'relay',
      messages: circularReps,
      perSecond: circularReps / (times.reduce((a, b) => a + b, 0) / 1000),
      p50: percentile(times, 50),
      p99: Math.max(...times),
      maxRssMb: after.maxRssKb / 1024,
      cpuUsPerMessage: cpuMicros((before as ServerReport).cpu, after.cpu) / circularReps,
      ...busy(before as ServerReport, after),
      note: `per circular (p99 column: max); Stored after ${fmt(percentile(storedTimes, 50))} ms (p50)`,
    });
    await closeAll([sender, ...recipientSockets]);
    await child.stop();
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }

  // Table and goals.
  const header =
    '| scenario | server | messages | msg/s | p50 ms | p99 ms | peak RSS MB | server CPU µs/msg (main thread) | busy: main / writer | load generator CPU µs/msg |';
  const lines = [header, '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'];
  const pct = (x?: number) => (x === undefined ? '' : `${Math.round(x * 100)}%`);
  for (const r of rows) {
    const b = r.writerBusy === undefined ? pct(r.mainBusy) : `${pct(r.mainBusy)} / ${pct(r.writerBusy)}`;
    lines.push(
      `| ${r.scenario} | ${r.server} | ${r.messages} | ${fmt(r.perSecond, 0)} | ${fmt(r.p50, 2)} | ${fmt(r.p99, 2)} | ${fmt(r.maxRssMb, 0)} | ${fmt(r.cpuUsPerMessage, 1)}${r.mainCpuUsPerMessage === undefined ? '' : ` (main ${fmt(r.mainCpuUsPerMessage, 0)})`} | ${b} | ${r.clientCpuUsPerMessage === undefined ? '' : fmt(r.clientCpuUsPerMessage, 1)} |`,
    );
  }
  const find = (scenario: string, server: string) => rows.find((r) => r.scenario.startsWith(scenario) && r.server === server);
  const relayT = find('throughput', 'relay');
  const floorT = find('throughput', 'floor');
  const relay10k = find('10,000', 'relay');
  const floor10k = find('10,000', 'floor');
  const ratio = relayT && floorT ? relayT.perSecond / floorT.perSecond : Number.NaN;
  const goals = [
    `- throughput: relay ${fmt(relayT?.perSecond ?? Number.NaN, 0)} msg/s = ${fmt(ratio * 100, 0)}% of the bare forwarder (goal: at least 50%) — ${ratio >= 0.5 ? 'met' : 'MISSED'}`,
    `- p99 delivery latency at 10,000 msg/s offered: ${fmt(relay10k?.p99 ?? Number.NaN, 2)} ms (goal: at most 5 ms; the bare forwarder: ${fmt(floor10k?.p99 ?? Number.NaN, 2)} ms) — ${(relay10k?.p99 ?? Infinity) <= 5 ? 'met' : 'MISSED'}`,
    `- server CPU per message (throughput run): ${fmt(relayT?.cpuUsPerMessage ?? Number.NaN, 1)} µs (goal: at most 50 µs) — ${(relayT?.cpuUsPerMessage ?? Infinity) <= 50 ? 'met' : 'MISSED'}`,
  ];
  if (relayT?.clientCpuUsPerMessage !== undefined && floorT?.clientCpuUsPerMessage !== undefined) {
    const relayTotal = relayT.cpuUsPerMessage + relayT.clientCpuUsPerMessage;
    const floorTotal = floorT.cpuUsPerMessage + floorT.clientCpuUsPerMessage;
    goals.push(
      '',
      `Machine budget at saturation (server + load generator CPU per message, on ${os.cpus().length} shared cores): relay ${fmt(relayT.cpuUsPerMessage, 1)} + ${fmt(relayT.clientCpuUsPerMessage, 1)} = ${fmt(relayTotal, 1)} µs, floor ${fmt(floorT.cpuUsPerMessage, 1)} + ${fmt(floorT.clientCpuUsPerMessage, 1)} = ${fmt(floorTotal, 1)} µs; their ratio, ${fmt((floorTotal / relayTotal) * 100, 0)}%, is about the rate ratio this machine allows.`,
    );
  }
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const out = [
    '# Relay benchmark',
    '',
    `${new Date().toISOString()}, Node ${process.version}, ${os.cpus().length} × ${cpu}. \`node --import tsx bench/relay.ts${quick ? ' --quick' : ''}\`.`,
    '',
    `Envelopes of ${envelopeBytes} bytes (DHKEM-X25519, one recipient) unless stated; ${PAIRS} senders and ${PAIRS} receivers on 127.0.0.1, clients in one process, each server in its own child process. The relay (built JavaScript, as \`valise relay serve\` runs it) authenticates every device, stores every message with SQLite (WAL, synchronous=FULL, group commit) before its Stored, pushes deliveries while their commit runs, and deletes on Ack; the floor is a bare \`ws\` forwarder that stores nothing. Both use \`ws\` with \`bufferutil\`. Latency: from send (at a fixed offered rate, from the scheduled send time) to receipt by the recipient. Server CPU: user + system time of the server process (all threads) over the run, per message, and that of its main thread alone. The load generator's CPU per message is shown because the servers and the load generator share the machine's ${os.cpus().length} cores: at saturation, server plus load generator CPU per message bounds the rate. Relay limits as defaults except the per-device rate and mailbox bounds, raised for the benchmark.`,
    '',
    ...lines,
    '',
    ...rows.filter((r) => r.note).map((r) => `- ${r.scenario}, ${r.server}: ${r.note}`),
    `- ${commitNote}`,
    '',
    '## Goals',
    '',
    ...goals,
    '',
  ].join('\n');
  process.stdout.write(`${out}\n`);
  if (write) writeFileSync(fileURLToPath(new URL('./RELAY-RESULTS.md', import.meta.url)), out);
}

const mode = process.argv[2];
if (mode === '--serve-relay') await serveRelay(process.argv[3] as string, process.argv[4] as string);
else if (mode === '--serve-floor') await serveFloor();
else await main();
