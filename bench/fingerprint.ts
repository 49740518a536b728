/**
 * Fingerprinting benchmark (spec/fingerprint.md, spec/marks.md): speed of marking and tracing, and
 * the robustness matrix (detection rate and innocents accused per attack and text).
 *
 *   node --import tsx bench/fingerprint.ts              # everything, ~5–10 minutes on 2 cores
 *   node --import tsx bench/fingerprint.ts --quick      # 100 trials per cell, a smoke test
 *   options: --trials N (per cell, default 1000)  --workers K (default: CPU count, at most 4)
 *            --no-write (leave bench/FINGERPRINT-RESULTS.md alone)  --no-timing  --no-matrix
 *
 * The matrix runs every trial through the real tracing code (code derivation, reading, erased
 * channels, threshold, scores of all 134 recipients). What differs is how the reading is made:
 * - real text: the colluders' marked copies are generated (`applyMarks`), attacked with
 *   `attacks.ts` and read with `readMarks`;
 * - code level: the reading is simulated from the colluders' symbols with a per-point model of
 *   the attack, calibrated on the same text (see `simulate` below); it is checked against real
 *   text in the validation table. Real text is used for all 1 KB trials and a sample of the 4 and
 *   16 KB trials; the output says how many of each.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker } from 'node:worker_threads';
import { skeleton } from '../packages/protocol/src/align.js';
import * as attacks from '../packages/protocol/src/attacks.js';
import {
  fingerprintDocument,
  originalHash,
  recipientSymbols,
  type TracingContext,
  type TracingRecord,
  traceLeak,
  traceReading,
} from '../packages/protocol/src/fingerprint.js';
import { ALL_CHANNELS, applyMarks, type MarkPlan, planMarks, readMarks } from '../packages/protocol/src/marks.js';
import { useNodeCrypto } from '../packages/protocol/src/node.js';
import { nobleProvider, useProvider } from '../packages/protocol/src/provider.js';
import { deterministicRandomForTesting, type RandomSource } from '../packages/protocol/src/random.js';
import {
  accusationThreshold,
  deriveBiases,
  deriveCodeword,
  keyedPermutation,
  prepareReading,
  scoreRecipients,
} from '../packages/protocol/src/tardos.js';

const N_RECIPIENTS = 134;
const EPSILON = 1e-6;
const CORPUS = new URL('../packages/protocol/test/fixtures/corpus/', import.meta.url);

// ---------------------------------------------------------------------------------------------
// Texts.

const corpus = (name: string) => readFileSync(new URL(name, CORPUS), 'utf8');
const utf8Length = (s: string) => Buffer.byteLength(s, 'utf8');

interface Column {
  id: string;
  title: string;
  /** Base texts trials cycle through. */
  windows: string[];
}

/** Paragraph-aligned windows of about `target` UTF-8 bytes (0.95–1.3x), one per starting paragraph. */
function windowsOf(text: string, target: number): string[] {
  const paras = text.split('\n\n');
  const out: string[] = [];
  for (let k = 0; k < paras.length; k++) {
    let w = '';
    for (let i = k; i < paras.length && utf8Length(w) < 0.95 * target; i++) w = w ? `${w}\n\n${paras[i]}` : (paras[i] as string);
    const n = utf8Length(w);
    if (n >= 0.95 * target && n <= 1.3 * target && !out.includes(w)) out.push(w);
  }
  return out;
}

function columns(): Column[] {
  const arA = corpus('ar-cable-economic.txt');
  const arB = corpus('ar-circular-consular.txt');
  const enA = corpus('en-memo-security.txt');
  const enB = corpus('en-cable-political.txt');
  const interleaveLists = (a: string[], b: string[]) => {
    const out: string[] = [];
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      if (i < a.length) out.push(a[i] as string);
      if (i < b.length) out.push(b[i] as string);
    }
    return out;
  };
  const spread = (ws: string[], k: number) =>
    ws.length <= k ? ws : Array.from({ length: k }, (_, i) => ws[Math.floor((i * ws.length) / k)] as string);
  const fix16 = (a: string, b: string) => [a, windowsOf(`${b}\n\n${a}`, 16 * 1024)[0] ?? a];
  return [
    { id: 'ar-1k', title: 'Arabic 1 KB', windows: spread(interleaveLists(windowsOf(arA, 1024), windowsOf(arB, 1024)), 24) },
    { id: 'ar-4k', title: 'Arabic 4 KB', windows: spread(interleaveLists(windowsOf(arA, 4096), windowsOf(arB, 4096)), 12) },
    { id: 'ar-16k', title: 'Arabic 16 KB', windows: fix16(arA, arB) },
    { id: 'en-1k', title: 'English 1 KB', windows: spread(interleaveLists(windowsOf(enA, 1024), windowsOf(enB, 1024)), 24) },
    { id: 'en-4k', title: 'English 4 KB', windows: spread(interleaveLists(windowsOf(enA, 4096), [enB]), 12) },
    { id: 'en-16k', title: 'English 16 KB', windows: fix16(enA, enB) },
  ];
}

// ---------------------------------------------------------------------------------------------
// Attacks.

interface Attack {
  id: string;
  title: string;
  colluders: 1 | 2 | 3;
  /** The real attack on the colluders' marked copies. */
  run: (copies: string[], random: RandomSource) => string;
  /** How the code-level simulation models it. */
  model: 'deterministic' | { excerpt: number } | 'interleave' | 'majority' | 'random';
}

const ATTACKS: Attack[] = [
  { id: 'none', title: 'none (whole copy)', colluders: 1, run: (c) => c[0] as string, model: 'deterministic' },
  { id: 'ex50', title: 'excerpt 50%', colluders: 1, run: (c, r) => attacks.excerpt(c[0] as string, 0.5, r), model: { excerpt: 0.5 } },
  { id: 'ex25', title: 'excerpt 25%', colluders: 1, run: (c, r) => attacks.excerpt(c[0] as string, 0.25, r), model: { excerpt: 0.25 } },
  { id: 'nfc', title: 'NFC', colluders: 1, run: (c) => attacks.nfc(c[0] as string), model: 'deterministic' },
  { id: 'nfkc', title: 'NFKC', colluders: 1, run: (c) => attacks.nfkc(c[0] as string), model: 'deterministic' },
  { id: 'ws', title: 'whitespace collapse', colluders: 1, run: (c) => attacks.collapseWhitespace(c[0] as string), model: 'deterministic' },
  { id: 'zw', title: 'zero-width strip', colluders: 1, run: (c) => attacks.stripZeroWidth(c[0] as string), model: 'deterministic' },
  { id: 'kash', title: 'kashida strip', colluders: 1, run: (c) => attacks.stripKashida(c[0] as string), model: 'deterministic' },
  { id: 'pdf', title: 'PDF copy (includes NFKC)', colluders: 1, run: (c) => attacks.pdfCopy(c[0] as string), model: 'deterministic' },
  { id: 'retype', title: 'retype / OCR', colluders: 1, run: (c) => attacks.retype(c[0] as string), model: 'deterministic' },
  { id: 'int2', title: '2 colluders, interleave', colluders: 2, run: (c, r) => attacks.interleave(c, r), model: 'interleave' },
  { id: 'maj2', title: '2 colluders, majority', colluders: 2, run: (c) => attacks.majority(c), model: 'majority' },
  { id: 'rnd2', title: '2 colluders, random choice', colluders: 2, run: (c, r) => attacks.randomChoice(c, r), model: 'random' },
  { id: 'int3', title: '3 colluders, interleave', colluders: 3, run: (c, r) => attacks.interleave(c, r), model: 'interleave' },
  { id: 'maj3', title: '3 colluders, majority', colluders: 3, run: (c) => attacks.majority(c), model: 'majority' },
  { id: 'rnd3', title: '3 colluders, random choice', colluders: 3, run: (c, r) => attacks.randomChoice(c, r), model: 'random' },
];

// ---------------------------------------------------------------------------------------------
// One item: a context built the way prepareTracing builds it, without re-planning per trial.

const RECIPIENTS = Array.from({ length: N_RECIPIENTS }, (_, i) => {
  const id = new Uint8Array(16);
  new DataView(id.buffer).setUint32(12, i + 1);
  id[0] = 0xbe;
  return { id, name: `Mission ${i + 1}` };
});

function uniform(random: RandomSource): (n: number) => number {
  return (n) => {
    const limit = Math.floor(2 ** 32 / n) * n;
    for (;;) {
      const b = random(4);
      const v = ((b[0] as number) * 2 ** 24 + ((b[1] as number) << 16) + ((b[2] as number) << 8) + (b[3] as number)) >>> 0;
      if (v < limit) return v % n;
    }
  };
}

function item(text: string, plan: MarkPlan, random: RandomSource): TracingContext {
  const tracingKey = random(32).slice();
  const itemId = random(16).slice();
  const m = plan.points.length;
  const record: TracingRecord = {
    itemId,
    tracingKey,
    recipients: RECIPIENTS,
    c: 3,
    epsilon: EPSILON,
    channels: [...ALL_CHANNELS],
    positions: m,
    originalHash: originalHash(text),
  };
  const thresholds = deriveBiases(tracingKey, itemId, m, 3);
  return {
    record,
    plan,
    thresholds,
    perm: keyedPermutation(tracingKey, itemId, m),
    codewords: RECIPIENTS.map((r) => deriveCodeword(tracingKey, itemId, r.id, thresholds)),
  };
}

// ---------------------------------------------------------------------------------------------
// The code-level reading model.

interface TextModel {
  plan: MarkPlan;
  /** Per deterministic attack: what each point reads when the copy carries 0 / 1 there. */
  outcome: Map<string, [Int8Array, Int8Array]>;
  /** Skeleton index of each point's start and end. */
  skStart: Int32Array;
  skEnd: Int32Array;
  skLength: number;
}

function buildModel(text: string, plan: MarkPlan): TextModel {
  const m = plan.points.length;
  const zeros = applyMarks(plan, new Uint8Array(m));
  const ones = applyMarks(plan, new Uint8Array(m).fill(1));
  const outcome = new Map<string, [Int8Array, Int8Array]>();
  const fixed = deterministicRandomForTesting('unused');
  for (const a of ATTACKS) {
    if (a.model !== 'deterministic') continue;
    outcome.set(a.id, [readMarks(plan, a.run([zeros], fixed)), readMarks(plan, a.run([ones], fixed))]);
  }
  const sk = skeleton(text);
  const at = (raw: number) => {
    let lo = 0;
    let hi = sk.rawStart.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((sk.rawStart[mid] as number) < raw) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  return {
    plan,
    outcome,
    skStart: Int32Array.from(plan.points, (p) => at(p.start)),
    skEnd: Int32Array.from(plan.points, (p) => at(Math.max(p.start, p.end - 1))),
    skLength: sk.text.length,
  };
}

/**
 * The reading of the attacked leak, simulated from the colluders' point symbols:
 * - deterministic single-copy attacks: per point, the reading calibrated on an all-0 and an
 *   all-1 copy of the same text (exact as long as points do not interact);
 * - excerpt: a window placed as `attacks.excerpt` places it; points inside read, others erased;
 * - interleave: segments of 40–400 skeleton characters as `attacks.interleave` draws them; a point
 *   takes its segment's copy, and is erased if it straddles two segments whose copies differ;
 * - majority: the majority symbol, a tie going to the first copy (as `attacks.majority` votes per
 *   character, which decides both variants of a point the same way);
 * - random choice: where copies differ, each of a tri-state point's two variants is taken from an
 *   independently chosen copy, so the point reads 0 or 1 when exactly one variant survives and is
 *   erased otherwise; a binary (wording template) point takes one random copy's symbol.
 */
function simulate(model: TextModel, attack: Attack, text: string, symbols: Uint8Array[], random: RandomSource): Int8Array {
  const m = model.plan.points.length;
  const out = new Int8Array(m);
  const s0 = symbols[0] as Uint8Array;
  const u = uniform(random);
  const n = symbols.length;
  if (attack.model === 'deterministic') {
    const [o0, o1] = model.outcome.get(attack.id) as [Int8Array, Int8Array];
    for (let i = 0; i < m; i++) out[i] = s0[i] === 1 ? (o1[i] as number) : (o0[i] as number);
    return out;
  }
  if (typeof attack.model === 'object') {
    const len = Math.round(text.length * attack.model.excerpt);
    let a = u(text.length - len + 1);
    while (a > 0 && !/\s/.test(text[a - 1] as string)) a--;
    let b = Math.min(text.length, a + len);
    while (b < text.length && !/\s/.test(text[b] as string)) b++;
    model.plan.points.forEach((p, i) => {
      out[i] = p.start >= a && p.end <= b ? (s0[i] as number) : -1;
    });
    return out;
  }
  const agree = (i: number) => symbols.every((s) => s[i] === s0[i]);
  if (attack.model === 'majority') {
    for (let i = 0; i < m; i++) {
      let ones = 0;
      for (const s of symbols) ones += s[i] as number;
      out[i] = 2 * ones > n ? 1 : 2 * ones < n ? 0 : (s0[i] as number);
    }
    return out;
  }
  if (attack.model === 'random') {
    model.plan.points.forEach((p, i) => {
      if (agree(i)) out[i] = s0[i] as number;
      else if (p.alt !== undefined) out[i] = (symbols[u(n)] as Uint8Array)[i] as number;
      else {
        const e0 = (symbols[u(n)] as Uint8Array)[i] === 0;
        const e1 = (symbols[u(n)] as Uint8Array)[i] === 1;
        out[i] = e0 && !e1 ? 0 : e1 && !e0 ? 1 : -1;
      }
    });
    return out;
  }
  // Interleave: the copy of each skeleton position.
  const copyAt = new Uint8Array(model.skLength + 1);
  let cur = u(n);
  let budget = 40 + u(361);
  for (let k = 0; k <= model.skLength; k++) {
    copyAt[k] = cur;
    budget -= 1;
    if (budget <= 0 && n > 1) {
      cur = (cur + 1 + u(n - 1)) % n;
      budget = 40 + u(361);
    }
  }
  for (let i = 0; i < m; i++) {
    const ca = copyAt[model.skStart[i] as number] as number;
    const cb = copyAt[model.skEnd[i] as number] as number;
    const ya = (symbols[ca] as Uint8Array)[i] as number;
    out[i] = ca === cb || ya === (symbols[cb] as Uint8Array)[i] ? ya : -1;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Trials.

interface CellStats {
  trials: number;
  detected: number;
  /** Trials in which every colluder was accused. */
  allColluders: number;
  /** Accusations of non-colluders, summed over trials. */
  innocentsAccused: number;
  /** Innocent-user trials: (recipients - colluders) per trial. */
  innocentTrials: number;
  /** Sum of read positions. */
  read: number;
  /** Deterministic attacks, real trials: points where the simulated reading equals the real one. */
  agree: number;
  compared: number;
}

const emptyStats = (): CellStats => ({
  trials: 0,
  detected: 0,
  allColluders: 0,
  innocentsAccused: 0,
  innocentTrials: 0,
  read: 0,
  agree: 0,
  compared: 0,
});

function addStats(a: CellStats, b: CellStats): void {
  for (const k of Object.keys(a) as (keyof CellStats)[]) a[k] += b[k];
}

interface Job {
  column: number;
  mode: 'real' | 'sim';
  from: number;
  to: number;
}

const planCache = new Map<string, MarkPlan>();
const modelCache = new Map<string, TextModel>();
function planOf(text: string): MarkPlan {
  let p = planCache.get(text);
  if (!p) {
    p = planMarks(text);
    planCache.set(text, p);
  }
  return p;
}
function modelOf(text: string): TextModel {
  let md = modelCache.get(text);
  if (!md) {
    md = buildModel(text, planOf(text));
    modelCache.set(text, md);
  }
  return md;
}

function runJob(cols: Column[], job: Job): CellStats[] {
  const col = cols[job.column] as Column;
  const stats = ATTACKS.map(emptyStats);
  for (let t = job.from; t < job.to; t++) {
    const text = col.windows[t % col.windows.length] as string;
    const plan = planOf(text);
    const model = modelOf(text);
    const random = deterministicRandomForTesting(`valise-bench-fingerprint/${col.id}/${t}`);
    const u = uniform(random);
    const ctx = item(text, plan, random);
    ATTACKS.forEach((attack, a) => {
      const colluders: number[] = [];
      while (colluders.length < attack.colluders) {
        const i = u(N_RECIPIENTS);
        if (!colluders.includes(i)) colluders.push(i);
      }
      const symbols = colluders.map((i) => recipientSymbols(ctx, i));
      let read: Int8Array;
      const st = stats[a] as CellStats;
      if (job.mode === 'real') {
        const copies = symbols.map((s) => applyMarks(plan, s));
        read = readMarks(plan, attack.run(copies, random));
        if (attack.model === 'deterministic') {
          const sim = simulate(model, attack, text, symbols, random);
          for (let i = 0; i < read.length; i++) if (sim[i] === read[i]) st.agree++;
          st.compared += read.length;
        }
      } else read = simulate(model, attack, text, symbols, random);
      const result = traceReading(ctx, read, { details: false });
      const accused = result.accused.map((s) => s.index);
      st.trials++;
      if (accused.some((i) => colluders.includes(i))) st.detected++;
      if (colluders.every((i) => accused.includes(i))) st.allColluders++;
      st.innocentsAccused += accused.filter((i) => !colluders.includes(i)).length;
      st.innocentTrials += N_RECIPIENTS - colluders.length;
      st.read += result.read;
    });
  }
  return stats;
}

if (!isMainThread) {
  useNodeCrypto();
  const cols = columns();
  parentPort?.on('message', (job: Job | null) => {
    if (job === null) process.exit(0);
    parentPort?.postMessage({ job, stats: runJob(cols, job) });
  });
}

// ---------------------------------------------------------------------------------------------
// Timing.

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

function time(op: () => unknown, runs: number, warmup = 2): { median: number; min: number; max: number } {
  for (let i = 0; i < warmup; i++) op();
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    op();
    xs.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
}

const fmt = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));

function firstBytes(text: string, bytes: number): string {
  let w = '';
  for (const p of text.split('\n\n')) {
    const next = w ? `${w}\n\n${p}` : p;
    if (utf8Length(next) > bytes) break;
    w = next;
  }
  return w;
}

interface TimingRow {
  what: string;
  provider: string;
  median: number;
  min: number;
  max: number;
  goal?: number;
}

function timing(quick: boolean): { rows: TimingRow[]; notes: string[] } {
  const rows: TimingRow[] = [];
  const notes: string[] = [];
  const runs = quick ? 5 : 11;
  const ar10 = firstBytes(corpus('ar-cable-economic.txt'), 10 * 1024);
  const en10 = firstBytes(corpus('en-memo-security.txt'), 10 * 1024);
  // A long text: the corpus repeated until it has about 14,000 marking points.
  const all = [
    'ar-cable-economic.txt',
    'en-memo-security.txt',
    'ar-circular-consular.txt',
    'mixed-brief.txt',
    'en-cable-political.txt',
  ].map(corpus);
  let long = '';
  for (let i = 0; planMarks(long).points.length < 14000 && i < 20; i++)
    long = long ? `${long}\n\n${all[i % all.length]}` : (all[0] as string);
  const longPlan = planMarks(long);
  const key = new Uint8Array(32).fill(7);
  const itemId = new Uint8Array(16).fill(9);
  const opts = { tracingKey: key, itemId, recipients: RECIPIENTS };
  const ar10Points = planMarks(ar10).points.length;
  const en10Points = planMarks(en10).points.length;
  notes.push(
    `Texts: Arabic 10 KB = first ${utf8Length(ar10)} bytes of ar-cable-economic (${ar10Points} points); English 10 KB = first ${utf8Length(en10)} bytes of en-memo-security (${en10Points} points); long = the corpus repeated, ${utf8Length(long)} bytes, ${longPlan.points.length} points.`,
  );
  const providers: [string, () => void][] = [
    ['node', () => useNodeCrypto()],
    ['noble', () => useProvider(nobleProvider)],
  ];
  const longCopy = fingerprintDocument(long, { ...opts, recipients: RECIPIENTS.slice(0, 1) });
  const longRecord: TracingRecord = { ...longCopy.record, recipients: RECIPIENTS };
  for (const [name, activate] of providers) {
    activate();
    for (const [label, text] of [
      ['Arabic', ar10],
      ['English', en10],
    ] as const) {
      const r = time(() => fingerprintDocument(text, opts), runs);
      rows.push({
        what: `fingerprintDocument: ${label} 10 KB, 134 recipients (plan, code, capacity, 134 copies)`,
        provider: name,
        ...r,
        goal: 100,
      });
    }
    // Code level: 134 recipients × 14,000 positions, whole-copy reading of one recipient.
    const m = 14000;
    const codeOnly = () => {
      const th = deriveBiases(key, itemId, m, 3);
      keyedPermutation(key, itemId, m);
      const x = deriveCodeword(key, itemId, (RECIPIENTS[5] as { id: Uint8Array }).id, th);
      const reading = prepareReading(th, Int8Array.from(x));
      const { threshold } = accusationThreshold(reading, EPSILON / N_RECIPIENTS);
      const { scores } = scoreRecipients(
        key,
        itemId,
        RECIPIENTS.map((r) => r.id),
        th,
        reading,
      );
      if (!((scores[5] as number) >= threshold)) throw new Error('leaker not accused');
    };
    rows.push({
      what: 'trace, code level: 134 recipients × 14,000 positions (biases, permutation, threshold, 134 scores)',
      provider: name,
      ...time(codeOnly, runs),
      goal: 1000,
    });
    const leak = longCopy.copies[0] as string;
    rows.push({
      what: `traceLeak: whole copy of the long text (${longPlan.points.length} points), 134 recipients, end to end`,
      provider: name,
      ...time(
        () => {
          const res = traceLeak(leak, long, longRecord);
          if (res.accused[0]?.index !== 0) throw new Error('leaker not accused');
        },
        Math.max(3, runs - 6),
      ),
      goal: 1000,
    });
  }
  useNodeCrypto();
  return { rows, notes };
}

// ---------------------------------------------------------------------------------------------
// Main.

function parseArgs(argv: string[]) {
  const get = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const quick = argv.includes('--quick');
  const trials = Number(get('--trials') ?? (quick ? 100 : 1000));
  const workers = Number(get('--workers') ?? Math.min(4, Math.max(1, os.cpus().length)));
  return {
    quick,
    trials,
    workers,
    write: !argv.includes('--no-write'),
    doTiming: !argv.includes('--no-timing'),
    doMatrix: !argv.includes('--no-matrix'),
  };
}

/** Real-text trials per column: all of the 1 KB ones, a sample of the longer texts. */
function realTrials(col: Column, trials: number): number {
  if (col.id.endsWith('1k')) return trials;
  if (col.id.endsWith('4k')) return Math.min(trials, Math.max(20, Math.round(trials / 4)));
  return Math.min(trials, Math.max(10, Math.round(trials / 10)));
}

async function matrix(
  trials: number,
  workers: number,
): Promise<{ cols: Column[]; real: CellStats[][]; sim: CellStats[][]; seconds: number }> {
  const cols = columns();
  const jobs: Job[] = [];
  const chunk = 25;
  cols.forEach((col, c) => {
    const r = realTrials(col, trials);
    for (let t = 0; t < r; t += chunk) jobs.push({ column: c, mode: 'real', from: t, to: Math.min(r, t + chunk) });
    // Simulated trials use other trial numbers (other keys) than the real ones.
    for (let t = r; t < trials; t += chunk) jobs.push({ column: c, mode: 'sim', from: t, to: Math.min(trials, t + chunk) });
  });
  // Longest jobs first.
  const weight = (j: Job) =>
    (j.to - j.from) * (j.mode === 'real' ? 4 : 1) * (cols[j.column]?.id.endsWith('16k') ? 8 : cols[j.column]?.id.endsWith('4k') ? 3 : 1);
  jobs.sort((a, b) => weight(b) - weight(a));
  const real = cols.map(() => ATTACKS.map(emptyStats));
  const sim = cols.map(() => ATTACKS.map(emptyStats));
  const t0 = Date.now();
  let done = 0;
  await new Promise<void>((resolve, reject) => {
    let next = 0;
    let live = 0;
    const startWorker = () => {
      // Workers do not inherit tsx's loader: register it first, then load this very file.
      const boot = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => { m.register(); return import(${JSON.stringify(import.meta.url)}); })`;
      const w = new Worker(boot, { eval: true });
      live++;
      const feed = () => {
        if (next < jobs.length) w.postMessage(jobs[next++]);
        else w.postMessage(null);
      };
      w.on('message', (msg: { job: Job; stats: CellStats[] }) => {
        const target = msg.job.mode === 'real' ? real : sim;
        msg.stats.forEach((s, a) => {
          addStats((target[msg.job.column] as CellStats[])[a] as CellStats, s);
        });
        done++;
        if (done % 10 === 0 || done === jobs.length)
          process.stderr.write(`\r  matrix: ${done}/${jobs.length} jobs, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
        feed();
      });
      w.on('error', reject);
      w.on('exit', () => {
        if (--live === 0) resolve();
      });
      feed();
    };
    for (let i = 0; i < Math.min(workers, jobs.length); i++) startWorker();
  });
  process.stderr.write('\n');
  return { cols, real, sim, seconds: (Date.now() - t0) / 1000 };
}

function pct(x: number, n: number): string {
  if (n === 0) return '—';
  const p = (100 * x) / n;
  return p === 100 ? '100%' : p >= 99.95 ? '>99.9%' : `${p.toFixed(1)}%`;
}

function table(header: string[], rows: string[][], align: ('l' | 'r')[]): string[] {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (align[i] === 'r' ? c.padStart(w[i] as number) : c.padEnd(w[i] as number))).join(' | ')} |`;
  return [
    line(header),
    `| ${w.map((n, i) => (align[i] === 'r' ? `${'-'.repeat(n - 1)}:` : '-'.repeat(n))).join(' | ')} |`,
    ...rows.map(line),
  ];
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const out: string[] = [];
  const cpus = os.cpus();
  out.push('# Fingerprinting benchmark', '');
  out.push(
    `${new Date().toISOString()} · Node ${process.version} · ${os.platform()} ${os.arch()} · ${cpus[0]?.model ?? 'CPU'} × ${cpus.length}`,
    '',
  );
  out.push(
    `Parameters: N = ${N_RECIPIENTS} recipients, ε = ${EPSILON} (total, so ε₁ = ε/N per innocent), design coalition c = 3 (arcsine biases, cutoff t = 1213/65536 ≈ 0.0185), all channels. See spec/fingerprint.md.`,
    '',
  );
  const goals: string[] = [];
  if (args.doTiming) {
    process.stderr.write('timing...\n');
    const { rows, notes } = timing(args.quick);
    out.push('## Speed', '', ...notes, '', 'Median of 11 runs after 2 warm-up runs (5 with --quick); min–max over the runs.', '');
    out.push(
      ...table(
        ['operation', 'provider', 'median ms', 'min–max ms', 'goal'],
        rows.map((r) => [
          r.what,
          r.provider,
          fmt(r.median),
          `${fmt(r.min)}–${fmt(r.max)}`,
          r.goal ? `< ${r.goal} ms ${r.median < r.goal ? '✓' : '✗'}` : '',
        ]),
        ['l', 'l', 'r', 'r', 'l'],
      ),
      '',
    );
    for (const r of rows)
      if (r.goal)
        goals.push(`- ${r.median < r.goal ? 'met' : 'MISSED'}: ${r.what} (${r.provider}): ${fmt(r.median)} ms, goal < ${r.goal} ms`);
    console.log(out.join('\n'));
  }
  if (args.doMatrix) {
    process.stderr.write(`matrix: ${args.trials} trials per cell on ${args.workers} workers...\n`);
    const { cols, real, sim, seconds } = await matrix(args.trials, args.workers);
    const start = out.length;
    const combined = cols.map((_, c) =>
      ATTACKS.map((_, a) => {
        const s = emptyStats();
        addStats(s, (real[c] as CellStats[])[a] as CellStats);
        addStats(s, (sim[c] as CellStats[])[a] as CellStats);
        return s;
      }),
    );
    out.push('## Robustness matrix', '');
    out.push(
      `Each cell: **detection rate** (at least one of the leaking recipients accused) over the cell's trials, then in brackets the **number of innocent recipients ever accused** over all of them. Every trial is a fresh item (new tracing key and item id, so a new code), one of the cell's texts, leakers drawn at random among the ${N_RECIPIENTS} recipients, and a full trace of all ${N_RECIPIENTS} at ε = ${EPSILON}. ${args.trials} trials per cell, so ${args.trials * (N_RECIPIENTS - 3)}–${args.trials * (N_RECIPIENTS - 1)} innocent-user trials per cell.`,
      '',
      `How the leak is read: ${cols.map((c) => `${c.title}: ${realTrials(c, args.trials)} real-text + ${args.trials - realTrials(c, args.trials)} code-level`).join('; ')} trials per cell. Real text = the leakers' marked copies are generated, attacked with \`attacks.ts\` and read with \`readMarks\`; code level = the reading is simulated from the leakers' codewords with a per-point model of the attack calibrated on the same text (validated below). Tracing is the real code in both. Matrix time: ${seconds.toFixed(0)} s on ${args.workers} workers.`,
      '',
      `Texts: ${cols.map((c) => `${c.title} = ${c.windows.length} paragraph-aligned window${c.windows.length > 1 ? 's' : ''} of the corpus (${c.windows.map((w) => utf8Length(w)).reduce((a, b) => Math.min(a, b), Infinity)}–${c.windows.map((w) => utf8Length(w)).reduce((a, b) => Math.max(a, b), 0)} bytes)`).join('; ')}. Trials cycle through a column's windows.`,
      '',
    );
    out.push(
      ...table(
        ['attack', ...cols.map((c) => c.title)],
        ATTACKS.map((a, ai) => [
          a.title,
          ...cols.map((_, c) => {
            const s = (combined[c] as CellStats[])[ai] as CellStats;
            return `${pct(s.detected, s.trials)} (${s.innocentsAccused})`;
          }),
        ]),
        ['l', ...cols.map(() => 'r' as const)],
      ),
      '',
    );
    out.push(
      '### Code positions read (mean per trial)',
      '',
      'After alignment and after dropping channels whose points all read the same symbol (normalised away).',
      '',
    );
    out.push(
      ...table(
        ['attack', ...cols.map((c) => c.title)],
        ATTACKS.map((a, ai) => [
          a.title,
          ...cols.map((_, c) => {
            const s = (combined[c] as CellStats[])[ai] as CellStats;
            return s.trials ? (s.read / s.trials).toFixed(0) : '—';
          }),
        ]),
        ['l', ...cols.map(() => 'r' as const)],
      ),
      '',
    );
    out.push(
      '### All leakers accused',
      '',
      'Share of trials in which every leaking recipient was accused (for one leaker, the same as the detection rate).',
      '',
    );
    out.push(
      ...table(
        ['attack', ...cols.map((c) => c.title)],
        ATTACKS.filter((a) => a.colluders > 1).map((a) => {
          const ai = ATTACKS.indexOf(a);
          return [
            a.title,
            ...cols.map((_, c) => {
              const s = (combined[c] as CellStats[])[ai] as CellStats;
              return pct(s.allColluders, s.trials);
            }),
          ];
        }),
        ['l', ...cols.map(() => 'r' as const)],
      ),
      '',
    );
    out.push(
      '### Validation of the code-level readings',
      '',
      'For the columns with code-level trials: detection rate and mean positions read on real text vs code level, and for the deterministic attacks the share of points where the simulated reading equals the real one (same copy, same attack).',
      '',
    );
    const vcols = cols.map((c, i) => ({ c, i })).filter(({ c }) => realTrials(c, args.trials) < args.trials);
    out.push(
      ...table(
        ['attack', ...vcols.map(({ c }) => `${c.title}: real / code-level detection · read · agreement`)],
        ATTACKS.map((a, ai) => [
          a.title,
          ...vcols.map(({ i }) => {
            const r = (real[i] as CellStats[])[ai] as CellStats;
            const s = (sim[i] as CellStats[])[ai] as CellStats;
            const agree = r.compared ? ` · ${pct(r.agree, r.compared)}` : '';
            return `${pct(r.detected, r.trials)} / ${pct(s.detected, s.trials)} · ${r.trials ? (r.read / r.trials).toFixed(0) : '—'} / ${s.trials ? (s.read / s.trials).toFixed(0) : '—'}${agree}`;
          }),
        ]),
        ['l', ...vcols.map(() => 'r' as const)],
      ),
      '',
    );
    // Goals that the matrix decides.
    const cell = (col: string, att: string) => {
      const c = cols.findIndex((x) => x.id === col);
      return (combined[c] as CellStats[])[ATTACKS.findIndex((x) => x.id === att)] as CellStats;
    };
    const g1 = cell('ar-1k', 'pdf');
    goals.push(
      `- ${g1.detected === g1.trials && g1.innocentsAccused === 0 ? 'met' : g1.innocentsAccused === 0 && g1.detected / g1.trials >= 0.99 ? 'met (≥ 99%)' : 'MISSED'}: single leaker named from 1 KB of Arabic after NFKC + PDF copy: ${pct(g1.detected, g1.trials)} of ${g1.trials}, ${g1.innocentsAccused} innocents accused`,
    );
    for (const [col, label] of [
      ['ar-16k', '16 KB Arabic'],
      ['en-4k', '4 KB English'],
    ] as const) {
      for (const att of ['int3', 'maj3', 'rnd3']) {
        const s = cell(col, att);
        const title = ATTACKS.find((a) => a.id === att)?.title;
        goals.push(
          `- ${s.detected === s.trials && s.innocentsAccused === 0 ? 'met' : s.innocentsAccused === 0 && s.detected / s.trials >= 0.99 ? 'met (≥ 99%)' : 'MISSED'}: coalition of 3 (${title}) traced from ${label}: ${pct(s.detected, s.trials)} of ${s.trials}, ${s.innocentsAccused} innocents accused`,
        );
      }
    }
    let innocents = 0;
    let innocentTrials = 0;
    for (const row of combined)
      for (const s of row) {
        innocents += s.innocentsAccused;
        innocentTrials += s.innocentTrials;
      }
    goals.push(
      `- ${innocents === 0 ? 'met' : 'MISSED'}: no innocent accused: ${innocents} accusations of innocents in ${innocentTrials} innocent-user trials (ε = ${EPSILON} bounds the expected number by ${((innocentTrials * EPSILON) / N_RECIPIENTS).toFixed(3)})`,
    );
    console.log(out.slice(start).join('\n'));
  }
  if (goals.length) {
    const g = ['## Goals', '', ...goals, ''];
    out.push(...g);
    console.log(g.join('\n'));
  }
  if (args.write && args.doMatrix && args.doTiming) {
    const path = fileURLToPath(new URL('./FINGERPRINT-RESULTS.md', import.meta.url));
    writeFileSync(path, out.join('\n'));
    console.log('(written to bench/FINGERPRINT-RESULTS.md)');
  }
}

if (isMainThread) {
  useNodeCrypto();
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
