/**
 * A small timing harness for `npm run bench`.
 *
 * Rows of one table are measured round-robin: every row is warmed up and calibrated first, then
 * sample 1 of every row is taken, then sample 2 of every row, and so on. Drift on a shared machine
 * (another tenant, thermal throttling) then hits every row alike, which keeps the ratios between
 * rows stable even when absolute times are not (DESIGN.md, performance principles).
 */

/** One operation to time. It may be synchronous or return a promise (peers are async). */
export type Op = () => unknown;

export interface Row {
  /** Unique within its table; other rows point at it for their ratios. */
  key: string;
  impl: string;
  kem: string;
  /** Makes this row's environment current (e.g. selects the crypto provider). Runs before every batch. */
  activate?: () => void;
  /** Runs once before warm-up and throws if the operation does not do what it claims. */
  check?: () => unknown;
  op: Op;
  /** Key of the floor row this row is compared with, if any. */
  floor?: string;
}

export interface Table {
  /** Used by the command-line filter, with `title` and every row's impl and KEM. */
  id: string;
  title: string;
  /** What the rows do, for the reader of the table. */
  note?: string;
  rows: Row[];
  /** Peer columns: label and the key of the peer row each ratio is taken against. */
  peers: { label: string; key: string }[];
}

export interface Stats {
  /** Per-operation time of each sample, in milliseconds. */
  samplesMs: number[];
  medianMs: number;
  minMs: number;
  maxMs: number;
  opsPerSec: number;
  iterationsPerSample: number;
}

export interface HarnessOptions {
  warmupMs: number;
  sampleMs: number;
  samples: number;
  /** Fewer samples (never below 5) for rows whose single operation takes longer than this. */
  slowOpMs: number;
  slowSamples: number;
  log?: (line: string) => void;
}

export const DEFAULT_OPTIONS: HarnessOptions = { warmupMs: 300, sampleMs: 60, samples: 15, slowOpMs: 250, slowSamples: 7 };
export const QUICK_OPTIONS: HarnessOptions = { warmupMs: 100, sampleMs: 50, samples: 5, slowOpMs: 100, slowSamples: 5 };

let sink: unknown;
/** Keeps the last result reachable so that no engine can drop the work as dead code. */
export function lastResult(): unknown {
  return sink;
}

const isPromise = (v: unknown): v is Promise<unknown> => typeof (v as { then?: unknown } | null)?.then === 'function';

/** Runs `n` operations back to back and returns the elapsed time in nanoseconds. */
async function batch(op: Op, n: number, async: boolean): Promise<number> {
  const t0 = process.hrtime.bigint();
  if (async) {
    for (let i = 0; i < n; i++) sink = await op();
  } else {
    for (let i = 0; i < n; i++) sink = op();
  }
  return Number(process.hrtime.bigint() - t0);
}

interface Calibrated {
  row: Row;
  async: boolean;
  iterations: number;
  samples: number;
  times: number[];
}

async function calibrate(row: Row, o: HarnessOptions): Promise<Calibrated> {
  row.activate?.();
  const first = row.op();
  const async = isPromise(first);
  sink = async ? await first : first;
  // Warm up until both the time and the count are reached; estimate from the second half only.
  let count = 1;
  let spentNs = 0;
  let lateNs = 0;
  let lateCount = 0;
  while (spentNs < o.warmupMs * 1e6 || count < 2) {
    const ns = await batch(row.op, 1, async);
    spentNs += ns;
    count++;
    if (spentNs >= (o.warmupMs * 1e6) / 2) {
      lateNs += ns;
      lateCount++;
    }
  }
  const perOpMs = lateNs / Math.max(1, lateCount) / 1e6;
  const iterations = Math.max(1, Math.round(o.sampleMs / Math.max(perOpMs, 1e-6)));
  const samples = perOpMs > o.slowOpMs ? Math.max(5, o.slowSamples) : Math.max(5, o.samples);
  return { row, async, iterations, samples, times: [] };
}

function median(sorted: number[]): number {
  const n = sorted.length;
  const mid = Math.floor(n / 2);
  return n % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Measures every row of a table, round-robin; returns stats by row key. */
export async function measure(rows: Row[], o: HarnessOptions): Promise<Map<string, Stats>> {
  const cal: Calibrated[] = [];
  for (const row of rows) {
    row.activate?.();
    if (row.check) await row.check();
    const c = await calibrate(row, o);
    o.log?.(`  calibrated ${row.impl} ${row.kem}: ${c.iterations} op(s) per sample, ${c.samples} samples`);
    cal.push(c);
  }
  const rounds = Math.max(...cal.map((c) => c.samples));
  for (let s = 0; s < rounds; s++) {
    for (const c of cal) {
      if (c.times.length >= c.samples) continue;
      c.row.activate?.();
      const ns = await batch(c.row.op, c.iterations, c.async);
      c.times.push(ns / c.iterations / 1e6);
    }
  }
  const out = new Map<string, Stats>();
  for (const c of cal) {
    const sorted = [...c.times].sort((a, b) => a - b);
    const med = median(sorted);
    out.set(c.row.key, {
      samplesMs: c.times,
      medianMs: med,
      minMs: sorted[0] as number,
      maxMs: sorted[sorted.length - 1] as number,
      opsPerSec: 1000 / med,
      iterationsPerSample: c.iterations,
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Formatting

function fmtMs(ms: number): string {
  if (ms >= 100) return ms.toFixed(0);
  if (ms >= 10) return ms.toFixed(1);
  if (ms >= 1) return ms.toFixed(2);
  return ms.toFixed(3);
}

function fmtOps(ops: number): string {
  if (ops >= 100) return Math.round(ops).toLocaleString('en-US');
  if (ops >= 10) return ops.toFixed(1);
  return ops.toFixed(2);
}

export function ratio(stats: Map<string, Stats>, key: string, ref: string | undefined): number | undefined {
  if (ref === undefined) return undefined;
  const a = stats.get(key);
  const b = stats.get(ref);
  if (a === undefined || b === undefined) return undefined;
  return a.medianMs / b.medianMs;
}

export const fmtRatio = (r: number | undefined): string => (r === undefined ? '—' : `${r.toFixed(2)}x`);

/** A markdown table: one line per measured row, padded as the repository's formatter (biome) lays tables out. */
export function renderTable(table: Table, stats: Map<string, Stats>): string {
  const peers = table.peers.filter((p) => stats.has(p.key)); // a filtered run may leave a peer out
  const head = ['impl', 'KEM', 'ms/op (median)', 'min–max ms/op', 'ops/s', 'vs floor', ...peers.map((p) => `vs ${p.label}`)];
  const body: string[][] = [];
  for (const row of table.rows) {
    const s = stats.get(row.key);
    if (s === undefined) continue;
    body.push([
      row.impl,
      row.kem,
      fmtMs(s.medianMs),
      `${fmtMs(s.minMs)}–${fmtMs(s.maxMs)}`,
      fmtOps(s.opsPerSec),
      row.floor === undefined ? (row.key.startsWith('floor') ? '(floor)' : '—') : fmtRatio(ratio(stats, row.key, row.floor)),
      ...peers.map((p) => (p.key === row.key ? '(peer)' : fmtRatio(ratio(stats, row.key, p.key)))),
    ]);
  }
  return markdownTable(head, body, 2);
}

/** A padded markdown table; the first `leftColumns` columns are left-aligned, the rest right-aligned. */
export function markdownTable(head: string[], body: string[][], leftColumns: number): string {
  const widths = head.map((h, i) => Math.max(3, h.length, ...body.map((r) => (r[i] ?? '').length)));
  const cell = (text: string, i: number) => (i < leftColumns ? text.padEnd(widths[i] as number) : text.padStart(widths[i] as number));
  const line = (cells: string[]) => `| ${cells.map(cell).join(' | ')} |`;
  const rule = `| ${widths.map((w, i) => (i < leftColumns ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`;
  return [line(head), rule, ...body.map(line)].join('\n');
}
