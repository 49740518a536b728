/**
 * Per-recipient fingerprinting of a text and tracing of a leak: the Tardos code of tardos.ts laid
 * onto the marking points of marks.ts, the tracing record that lets the sender and the records
 * office trace later, and the capacity report. Implements spec/fingerprint.md (security
 * property 5 of DESIGN.md); the marking channels are spec/marks.md.
 *
 * Code position j carries recipient i's bit X_ij at marking point perm[j], perm being the keyed
 * permutation of the plan's points: channels and paragraphs are interleaved over the code, so an
 * excerpt keeps a random sample of positions rather than a contiguous run of them.
 */
import { abytes, equalBytes, toHex, utf8 } from './bytes.js';
import { decodeStructure, encodeStructure, MapReader, StructType } from './cbor.js';
import { ArgumentError, DecodeError } from './errors.js';
import { Label, labelled } from './labels.js';
import { ALL_CHANNELS, applyMarks, CHANNELS, type ChannelId, type MarkPlan, planMarks, readMarks } from './marks.js';
import { getProvider } from './provider.js';
import {
  accusationThreshold,
  biasValues,
  cutoff,
  deriveBiases,
  deriveCodeword,
  estimateCapacity,
  ITEM_ID_LENGTH,
  keyedPermutation,
  prepareReading,
  RECIPIENT_ID_LENGTH,
  scoreCodeword,
  scoreRecipients,
  TARDOS_MAX_COALITION,
  TARDOS_MAX_POSITIONS,
  TRACING_KEY_LENGTH,
  tailBound,
} from './tardos.js';

/** Default design coalition size. */
export const DEFAULT_COALITION = 3;
/** Default total probability of accusing any innocent recipient, over all recipients. */
export const DEFAULT_EPSILON = 1e-6;
/** Most recipients of one fingerprinted item. */
export const MAX_TRACING_RECIPIENTS = 4096;
/** Longest recipient display name, in UTF-16 code units. */
export const MAX_RECIPIENT_NAME_LENGTH = 256;
/** ε is mantissa · 10^-exponent with 1 <= exponent <= this (10^22 is the largest exact power of ten). */
export const MAX_EPSILON_EXPONENT = 22;
/** ... and 1 <= mantissa <= this. */
export const MAX_EPSILON_MANTISSA = 0xffffffff;
/** Largest tracing record encoding: 4,096 recipients with maximal names fit in about 3.3 MB. */
export const MAX_TRACING_RECORD_SIZE = 4 * 1024 * 1024;
/** A channel whose read symbols all agree over at least this many points is treated as erased. */
export const ERASED_CHANNEL_MIN_POINTS = 16;
/** Suspects below the top this-many get no false-accusation bound (unless accused): it costs a root search each. */
export const BOUNDED_SUSPECTS = 5;

/** The channels in their canonical order (marks.ts's), the order of a tracing record's channel list. */
const CHANNEL_ORDER = ALL_CHANNELS;

export interface Recipient {
  /** 16 bytes, unique within the item. */
  id: Uint8Array;
  /** Display name, at most {@link MAX_RECIPIENT_NAME_LENGTH} UTF-16 code units. */
  name: string;
}

/** Everything tracing needs besides the original text. Secret: seal it for the sender and the records office only. */
export interface TracingRecord {
  /** 16 bytes. */
  itemId: Uint8Array;
  /** 32 bytes: whoever holds it can compute every recipient's codeword. */
  tracingKey: Uint8Array;
  /** In order; recipient i got copy i. */
  recipients: Recipient[];
  /** Design coalition size, 1..16. */
  c: number;
  /** Total false-accusation probability over all recipients, mantissa · 10^-exponent. */
  epsilon: number;
  /** Channels used, in the canonical order of {@link ALL_CHANNELS}. */
  channels: ChannelId[];
  /** Number of code positions (= marking points of the original). */
  positions: number;
  /** SHA-256(labelled("valise/v1/fingerprint/original", UTF-8 of the original)). */
  originalHash: Uint8Array;
}

export interface CapacityReport {
  /** Marking points the channels found. */
  points: number;
  /** Marks placed: one code position per point. */
  marks: number;
  /** Points per channel. */
  perChannel: Partial<Record<ChannelId, number>>;
  c: number;
  epsilon: number;
  /** Bias cutoff t (0: every bias is 1/2). */
  cutoff: number;
  /** How maxCoalition is estimated (spec §8): worst-strategy expected coalition score against the expected Chernoff threshold, 1σ margin. */
  method: 'analytic';
  /** Largest coalition size expected to be traced at ε (0: not even a single leaker). */
  maxCoalition: {
    /** The whole copy leaked, every channel read. */
    whole: number;
    /** Half the copy (the worse of the first and second halves of the text). */
    half: number;
    /** The whole copy after NFKC and a PDF copy: only channels that survive both. */
    robust: number;
  };
  /** maxCoalition.whole >= c. */
  meetsTarget: boolean;
  warnings: string[];
}

export interface FingerprintOptions {
  /** 32 random bytes, fresh for each item. */
  tracingKey: Uint8Array;
  /** 16 bytes. */
  itemId: Uint8Array;
  recipients: Recipient[];
  /** Design coalition size (default 3). */
  c?: number;
  /** Total false-accusation probability over all recipients (default 1e-6). */
  epsilon?: number;
  /** Channels to mark with (default: all, {@link ALL_CHANNELS}). */
  channels?: ChannelId[];
  /** Below the target c: 'warn' (default) adds a warning to the report, 'refuse' throws. */
  policy?: 'warn' | 'refuse';
}

export interface Evidence {
  /** Code position. */
  position: number;
  /** Index of the marking point in the plan. */
  point: number;
  channel: ChannelId;
  /** UTF-16 span of the point in the original. */
  start: number;
  end: number;
  /** Symbol read from the leak. */
  read: 0 | 1;
  /** The recipient's bit. */
  bit: 0 | 1;
  matched: boolean;
  /** Contribution to the score. */
  weight: number;
}

export interface Suspect {
  /** Index in the record's recipient list. */
  index: number;
  id: Uint8Array;
  name: string;
  score: number;
  /** Read positions where the recipient's bit equals the symbol read. */
  matches: number;
  accused: boolean;
  /**
   * N × P(an innocent scores >= this score), capped at 1: the chance that anyone innocent would
   * score this high. Computed for the accused and the top {@link BOUNDED_SUSPECTS}.
   */
  falseAccusationBound?: number;
  /** Every read position with the recipient's bit, for the accused only. */
  evidence?: Evidence[];
}

export interface TraceResult {
  /** Code positions of the item. */
  positions: number;
  /** Positions read from the leak (not erased). */
  read: number;
  /** Channels whose points all read the same symbol (normalised away), not counted as read. */
  erasedChannels: ChannelId[];
  /** Score needed to accuse: P(an innocent reaches it) <= ε / N. +Infinity if too little was read. */
  threshold: number;
  /** ε: the bound on accusing anyone innocent (the threshold's tail probability × N). */
  epsilon: number;
  /** ε / N. */
  epsilonPerRecipient: number;
  /** Every recipient, highest score first. */
  suspects: Suspect[];
  /** The suspects with score >= threshold. */
  accused: Suspect[];
}

// ---------------------------------------------------------------------------------------------
// Validation.

const POW10 = Array.from({ length: MAX_EPSILON_EXPONENT + 1 }, (_, e) => Number(`1e${e}`));

/** ε as mantissa · 10^-exponent with the smallest exponent (so the mantissa is not a multiple of 10); no floats on the wire. */
export function epsilonToDecimal(epsilon: number): { mantissa: number; exponent: number } {
  if (typeof epsilon === 'number' && epsilon > 0 && epsilon < 1) {
    for (let e = 1; e <= MAX_EPSILON_EXPONENT; e++) {
      const m = Math.round(epsilon * POW10[e]!);
      if (m > MAX_EPSILON_MANTISSA) break;
      if (m >= 1 && m / POW10[e]! === epsilon) return { mantissa: m, exponent: e };
    }
  }
  throw new ArgumentError(`epsilon: expected k·10^-e in (0, 1) with k < 2^32 and e <= ${MAX_EPSILON_EXPONENT}, got ${epsilon}`);
}

function isWellFormed(s: string): boolean {
  return new TextDecoder().decode(utf8(s)) === s;
}

function checkChannels(channels: readonly ChannelId[] | undefined): ChannelId[] {
  const list = channels ?? CHANNEL_ORDER;
  if (!Array.isArray(list) || list.length === 0) throw new ArgumentError('channels: expected a non-empty list');
  for (const ch of list) {
    if (!CHANNEL_ORDER.includes(ch) || !(ch in CHANNELS)) throw new ArgumentError(`channels: unknown channel ${String(ch)}`);
  }
  return CHANNEL_ORDER.filter((ch) => list.includes(ch));
}

function checkRecipients(recipients: readonly Recipient[]): void {
  if (!Array.isArray(recipients) || recipients.length < 1 || recipients.length > MAX_TRACING_RECIPIENTS) {
    throw new ArgumentError(`recipients: expected 1..${MAX_TRACING_RECIPIENTS} recipients`);
  }
  const seen = new Set<string>();
  recipients.forEach((r, i) => {
    const id = toHex(abytes(r?.id, `recipients[${i}].id`, RECIPIENT_ID_LENGTH));
    if (seen.has(id)) throw new ArgumentError(`recipients[${i}].id: duplicate recipient id`);
    seen.add(id);
    if (typeof r.name !== 'string' || r.name.length > MAX_RECIPIENT_NAME_LENGTH || !isWellFormed(r.name)) {
      throw new ArgumentError(`recipients[${i}].name: expected well-formed text of at most ${MAX_RECIPIENT_NAME_LENGTH} code units`);
    }
  });
}

function checkCoalitionSize(c: number): number {
  if (!Number.isInteger(c) || c < 1 || c > TARDOS_MAX_COALITION)
    throw new ArgumentError(`c: expected an integer 1..${TARDOS_MAX_COALITION}, got ${c}`);
  return c;
}

function checkRecord(record: TracingRecord): void {
  abytes(record?.itemId, 'record.itemId', ITEM_ID_LENGTH);
  abytes(record.tracingKey, 'record.tracingKey', TRACING_KEY_LENGTH);
  checkRecipients(record.recipients);
  checkCoalitionSize(record.c);
  epsilonToDecimal(record.epsilon);
  const canonical = checkChannels(record.channels);
  if (canonical.length !== record.channels.length || canonical.some((ch, i) => ch !== record.channels[i])) {
    throw new ArgumentError('record.channels: expected distinct channels in canonical order');
  }
  if (!Number.isInteger(record.positions) || record.positions < 0 || record.positions > TARDOS_MAX_POSITIONS) {
    throw new ArgumentError(`record.positions: expected an integer 0..${TARDOS_MAX_POSITIONS}`);
  }
  abytes(record.originalHash, 'record.originalHash', 32);
}

/** SHA-256(labelled("valise/v1/fingerprint/original", UTF-8(original))). */
export function originalHash(original: string): Uint8Array {
  if (typeof original !== 'string') throw new ArgumentError('original: expected a string');
  return getProvider().sha256(labelled(Label.FingerprintOriginal, utf8(original)));
}

// ---------------------------------------------------------------------------------------------
// Tracing record codec (spec §6).

/** Encodes a tracing record (structure type 30). Deterministic: equal records give equal bytes. */
export function encodeTracingRecord(record: TracingRecord): Uint8Array {
  checkRecord(record);
  const { mantissa, exponent } = epsilonToDecimal(record.epsilon);
  return encodeStructure(StructType.TracingRecord, [
    [2, record.itemId],
    [3, record.tracingKey],
    [
      4,
      record.recipients.map(
        (r) =>
          new Map<number, Uint8Array | string>([
            [0, r.id],
            [1, r.name],
          ]),
      ),
    ],
    [5, record.c],
    [6, mantissa],
    [7, exponent],
    [8, [...record.channels]],
    [9, record.positions],
    [10, record.originalHash],
  ]);
}

/** Decodes a tracing record strictly; every failure is a {@link DecodeError}. */
export function decodeTracingRecord(bytes: Uint8Array): TracingRecord {
  const what = 'TracingRecord';
  const r = decodeStructure(bytes, StructType.TracingRecord, MAX_TRACING_RECORD_SIZE, what);
  const itemId = r.bytes(2, 'itemId', { len: ITEM_ID_LENGTH });
  const tracingKey = r.bytes(3, 'tracingKey', { len: TRACING_KEY_LENGTH });
  const rawRecipients = r.array(4, 'recipients', MAX_TRACING_RECIPIENTS);
  if (rawRecipients.length === 0) throw new DecodeError(`${what}.recipients: empty`);
  const seen = new Set<string>();
  const recipients = rawRecipients.map((v, i) => {
    const e = MapReader.from(v, `${what}.recipients[${i}]`);
    const id = e.bytes(0, 'id', { len: RECIPIENT_ID_LENGTH });
    const name = e.text(1, 'name', MAX_RECIPIENT_NAME_LENGTH);
    e.done();
    const hex = toHex(id);
    if (seen.has(hex)) throw new DecodeError(`${what}.recipients[${i}]: duplicate id`);
    seen.add(hex);
    return { id, name };
  });
  const c = r.uint(5, 'c', TARDOS_MAX_COALITION);
  if (c < 1) throw new DecodeError(`${what}.c: must be at least 1`);
  const mantissa = r.uint(6, 'epsilonMantissa', MAX_EPSILON_MANTISSA);
  const exponent = r.uint(7, 'epsilonExponent', MAX_EPSILON_EXPONENT);
  if (exponent < 1 || mantissa < 1 || mantissa >= POW10[exponent]! || mantissa % 10 === 0) {
    throw new DecodeError(`${what}.epsilon: not a canonical mantissa · 10^-exponent in (0, 1)`);
  }
  const rawChannels = r.array(8, 'channels', CHANNEL_ORDER.length);
  let last = -1;
  const channels = rawChannels.map((v) => {
    const k = typeof v === 'string' ? CHANNEL_ORDER.indexOf(v as ChannelId) : -1;
    if (k <= last) throw new DecodeError(`${what}.channels: unknown, repeated or out-of-order channel`);
    last = k;
    return v as ChannelId;
  });
  if (channels.length === 0) throw new DecodeError(`${what}.channels: empty`);
  const positions = r.uint(9, 'positions', TARDOS_MAX_POSITIONS);
  const hash = r.bytes(10, 'originalHash', { len: 32 });
  r.done();
  return { itemId, tracingKey, recipients, c, epsilon: mantissa / POW10[exponent]!, channels, positions, originalHash: hash };
}

// ---------------------------------------------------------------------------------------------
// Capacity.

function pointBiases(thresholds: Uint32Array, perm: Uint32Array): Float64Array {
  const b = biasValues(thresholds);
  const out = new Float64Array(b.length);
  for (let j = 0; j < b.length; j++) out[perm[j]!] = b[j]!;
  return out;
}

function capacityReport(plan: MarkPlan, byPoint: Float64Array, c: number, epsilon: number, n: number): CapacityReport {
  const m = plan.points.length;
  const eps1 = epsilon / n;
  const perChannel: Partial<Record<ChannelId, number>> = {};
  for (const pt of plan.points) perChannel[pt.channel] = (perChannel[pt.channel] ?? 0) + 1;
  const select = (keep: (i: number) => boolean) => {
    const out: number[] = [];
    for (let i = 0; i < m; i++) if (keep(i)) out.push(byPoint[i]!);
    return out;
  };
  const mid = plan.original.length / 2;
  const whole = estimateCapacity(byPoint, eps1);
  const half = Math.min(
    estimateCapacity(
      select((i) => plan.points[i]!.start < mid),
      eps1,
    ),
    estimateCapacity(
      select((i) => plan.points[i]!.start >= mid),
      eps1,
    ),
  );
  const robust = estimateCapacity(
    select((i) => {
      const s = CHANNELS[plan.points[i]!.channel].survives;
      return s.nfkc && s.pdfCopy;
    }),
    eps1,
  );
  const warnings: string[] = [];
  if (whole < c) {
    warnings.push(
      whole === 0
        ? `${m} marks cannot trace even a single leaker at ε = ${epsilon} (target: coalitions of ${c})`
        : `${m} marks can trace coalitions of at most ${whole} at ε = ${epsilon} (target: ${c})`,
    );
  }
  if (half < Math.min(c, whole)) warnings.push(`half the text traces coalitions of at most ${half}`);
  if (robust < Math.min(c, whole)) warnings.push(`after NFKC and a PDF copy the text traces coalitions of at most ${robust}`);
  return {
    points: m,
    marks: m,
    perChannel,
    c,
    epsilon,
    cutoff: cutoff(c),
    method: 'analytic',
    maxCoalition: { whole, half, robust },
    meetsTarget: whole >= c,
    warnings,
  };
}

// ---------------------------------------------------------------------------------------------
// Fingerprinting and tracing.

/**
 * Makes one invisibly different copy of `text` per recipient, the tracing record and the
 * capacity report (spec §7). Copy i is for `recipients[i]`.
 */
export function fingerprintDocument(
  text: string,
  opts: FingerprintOptions,
): { copies: string[]; record: TracingRecord; report: CapacityReport } {
  if (typeof text !== 'string') throw new ArgumentError('text: expected a string');
  const tracingKey = abytes(opts?.tracingKey, 'tracingKey', TRACING_KEY_LENGTH);
  const itemId = abytes(opts.itemId, 'itemId', ITEM_ID_LENGTH);
  checkRecipients(opts.recipients);
  const c = checkCoalitionSize(opts.c ?? DEFAULT_COALITION);
  const epsilon = opts.epsilon ?? DEFAULT_EPSILON;
  epsilonToDecimal(epsilon);
  const channels = checkChannels(opts.channels);
  const policy = opts.policy ?? 'warn';
  if (policy !== 'warn' && policy !== 'refuse') throw new ArgumentError(`policy: expected 'warn' or 'refuse'`);

  const plan = planMarks(text, channels);
  const m = plan.points.length;
  if (m > TARDOS_MAX_POSITIONS) throw new ArgumentError(`text: ${m} marking points exceed the limit of ${TARDOS_MAX_POSITIONS}`);
  const thresholds = deriveBiases(tracingKey, itemId, m, c);
  const perm = keyedPermutation(tracingKey, itemId, m);
  const report = capacityReport(plan, pointBiases(thresholds, perm), c, epsilon, opts.recipients.length);
  if (policy === 'refuse' && !report.meetsTarget) {
    throw new ArgumentError(`fingerprintDocument: refused: ${report.warnings[0] ?? 'below the target coalition size'}`);
  }
  const symbols = new Uint8Array(m);
  const copies = opts.recipients.map((r) => {
    const x = deriveCodeword(tracingKey, itemId, r.id, thresholds);
    for (let j = 0; j < m; j++) symbols[perm[j]!] = x[j]!;
    return applyMarks(plan, symbols);
  });
  const record: TracingRecord = {
    itemId: Uint8Array.from(itemId),
    tracingKey: Uint8Array.from(tracingKey),
    recipients: opts.recipients.map((r) => ({ id: Uint8Array.from(r.id), name: r.name })),
    c,
    epsilon,
    channels,
    positions: m,
    originalHash: originalHash(text),
  };
  return { copies, record, report };
}

/**
 * What tracing one item needs besides a reading: the record, the plan of the original, the biases
 * and the permutation; optionally every recipient's codeword, derived once for many readings.
 */
export interface TracingContext {
  readonly record: TracingRecord;
  readonly plan: MarkPlan;
  /** Bias thresholds P_j of the code positions. */
  readonly thresholds: Uint32Array;
  /** Code position j is carried by point perm[j]. */
  readonly perm: Uint32Array;
  /** Every recipient's codeword, by code position (when prepared with `codewords: true`). */
  readonly codewords?: readonly Uint8Array[];
}

/**
 * Checks the record against the original and derives what every trace of this item shares
 * (spec §7, tracing steps 1–3). With `codewords: true` every recipient's codeword is derived now,
 * which pays off when the same item is traced against many leaks.
 */
export function prepareTracing(original: string, record: TracingRecord, options: { codewords?: boolean } = {}): TracingContext {
  checkRecord(record);
  if (!equalBytes(originalHash(original), record.originalHash)) throw new ArgumentError('original: does not match the tracing record');
  const plan = planMarks(original, record.channels);
  const m = plan.points.length;
  if (m !== record.positions) {
    throw new ArgumentError(`original: the marking engine finds ${m} points where the record has ${record.positions}`);
  }
  const { tracingKey, itemId } = record;
  const thresholds = deriveBiases(tracingKey, itemId, m, record.c);
  const perm = keyedPermutation(tracingKey, itemId, m);
  const ctx: TracingContext = { record, plan, thresholds, perm };
  if (!options.codewords) return ctx;
  return { ...ctx, codewords: record.recipients.map((r) => deriveCodeword(tracingKey, itemId, r.id, thresholds)) };
}

/** The symbol each marking point carries in the copy of recipient `index` (to re-issue a copy, or to test). */
export function recipientSymbols(ctx: TracingContext, index: number): Uint8Array {
  const r = ctx.record.recipients[index];
  if (r === undefined) throw new ArgumentError(`index: no recipient ${index}`);
  const x = ctx.codewords?.[index] ?? deriveCodeword(ctx.record.tracingKey, ctx.record.itemId, r.id, ctx.thresholds);
  const out = new Uint8Array(x.length);
  for (let j = 0; j < x.length; j++) out[ctx.perm[j]!] = x[j]!;
  return out;
}

/**
 * Traces a leaked text (a copy, an excerpt, a normalised or stitched text) back to recipients
 * (spec §5, §7). Accuses exactly the recipients whose score reaches the threshold, which no
 * innocent reaches with probability above ε / N given what was read. `original` is the text that
 * was given to {@link fingerprintDocument}.
 */
export function traceLeak(leakedText: string, original: string, record: TracingRecord): TraceResult {
  if (typeof leakedText !== 'string') throw new ArgumentError('leakedText: expected a string');
  const ctx = prepareTracing(original, record);
  return traceReading(ctx, readMarks(ctx.plan, leakedText));
}

/**
 * Tracing from a reading of the plan's points (0, 1 or -1 per point, as `readMarks` gives it):
 * spec §7, tracing steps 4–7. With `details: false` the suspects carry no false-accusation bound
 * and no evidence (scores, threshold and accusations are the same), for bulk simulations.
 */
export function traceReading(ctx: TracingContext, read: Int8Array, options: { details?: boolean } = {}): TraceResult {
  const details = options.details ?? true;
  const { record, plan, thresholds, perm } = ctx;
  const m = plan.points.length;
  if (!(read instanceof Int8Array) || read.length !== m) throw new ArgumentError(`read: expected ${m} symbols`);
  const { tracingKey, itemId, recipients } = record;
  const n = recipients.length;

  // A channel that reads one symbol everywhere was normalised away (or never marked). Dropping it
  // depends on the leak only, never on a codeword, so the bound for innocents is unchanged.
  const count = new Map<ChannelId, number>();
  const ones = new Map<ChannelId, number>();
  for (let i = 0; i < m; i++) {
    const y = read[i];
    if (y !== 0 && y !== 1) continue;
    const ch = plan.points[i]!.channel;
    count.set(ch, (count.get(ch) ?? 0) + 1);
    ones.set(ch, (ones.get(ch) ?? 0) + y);
  }
  const erasedChannels = record.channels.filter((ch) => {
    const k = count.get(ch) ?? 0;
    const o = ones.get(ch) ?? 0;
    return k >= ERASED_CHANNEL_MIN_POINTS && (o === 0 || o === k);
  });
  const symbols = new Int8Array(m);
  for (let j = 0; j < m; j++) {
    const point = perm[j]!;
    const y = read[point]!;
    symbols[j] = (y === 0 || y === 1) && !erasedChannels.includes(plan.points[point]!.channel) ? y : -1;
  }

  const epsilon1 = record.epsilon / n;
  const reading = prepareReading(thresholds, symbols);
  const { threshold } = accusationThreshold(reading, epsilon1);
  let scores: Float64Array;
  let matches: Uint32Array;
  if (ctx.codewords) {
    scores = new Float64Array(n);
    matches = new Uint32Array(n);
    ctx.codewords.forEach((x, i) => {
      const r = scoreCodeword(reading, x);
      scores[i] = r.score;
      matches[i] = r.matches;
    });
  } else {
    ({ scores, matches } = scoreRecipients(
      tracingKey,
      itemId,
      recipients.map((r) => r.id),
      thresholds,
      reading,
    ));
  }
  const order = [...scores.keys()].sort((a, b) => scores[b]! - scores[a]! || a - b);
  const suspects = order.map((i, rank): Suspect => {
    const r = recipients[i]!;
    const score = scores[i]!;
    const accused = score >= threshold;
    const s: Suspect = { index: i, id: r.id, name: r.name, score, matches: matches[i]!, accused };
    if (details && (accused || rank < BOUNDED_SUSPECTS)) s.falseAccusationBound = Math.min(1, n * tailBound(reading, score));
    if (details && accused) {
      const x = ctx.codewords?.[i] ?? deriveCodeword(tracingKey, itemId, r.id, thresholds);
      s.evidence = Array.from(reading.index, (j, k): Evidence => {
        const point = perm[j]!;
        const pt = plan.points[point]!;
        const bit = x[j]! as 0 | 1;
        const y = reading.symbol[k]! as 0 | 1;
        const matched = bit === y;
        return {
          position: j,
          point,
          channel: pt.channel,
          start: pt.start,
          end: pt.end,
          read: y,
          bit,
          matched,
          weight: matched ? reading.match[k]! : reading.mismatch[k]!,
        };
      });
    }
    return s;
  });
  return {
    positions: m,
    read: reading.index.length,
    erasedChannels,
    threshold,
    epsilon: record.epsilon,
    epsilonPerRecipient: epsilon1,
    suspects,
    accused: suspects.filter((s) => s.accused),
  };
}
