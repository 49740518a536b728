/**
 * The binary symmetric Tardos code: PRF-derived biases and codewords, the keyed permutation of
 * code positions onto marking points, the symmetric score, an accusation threshold computed from
 * what was actually read, and a capacity estimate. Implements spec/fingerprint.md §3–§5 and §8.
 *
 * Sources (facts and analyses only): G. Tardos, "Optimal probabilistic fingerprint codes"
 * (STOC 2003, J. ACM 2008); B. Škorić, S. Katzenbeisser, M. Celik, "Symmetric Tardos
 * fingerprinting codes for arbitrary alphabet sizes" (Des. Codes Cryptogr. 2008), which gives the
 * symmetric score (mean 0, variance 1 per position for an innocent; strategy-independent coalition
 * score 2/π per position for the arcsine bias density); B. Škorić et al., "Tardos fingerprinting is
 * better than we thought" (IEEE Trans. IT 2008); T. Laarhoven, B. de Weger, "Optimal symmetric
 * Tardos traitor tracing schemes" (Des. Codes Cryptogr. 2014), whose asymptotic length
 * (π²/2)·c²·ln(1/ε₁) our capacity estimate reproduces.
 *
 * Two departures from the papers, both for small codes that must hold on one document:
 * - The accusation threshold is not a fixed Z(ℓ, c, ε₁) from a table. Given the biases of the
 *   positions read from the leak and the symbols read, an innocent's score is a sum of independent
 *   two-point variables whose distributions are known exactly, so the threshold is the exact
 *   Chernoff bound of that sum, optimised over λ, set at ε₁ = ε/N. An excerpt therefore never
 *   raises the risk to innocents; it only lowers the chance of accusing the leaker.
 * - Everything that defines a codeword is integer arithmetic, so that every implementation derives
 *   the same bits: a bias is drawn as the angle of a uniform lattice point in a quarter disc (the
 *   same arcsine law as p = sin²(r), r uniform, without a libm `sin`), and kept as a 32-bit integer
 *   threshold P with p = P / 2³².
 *
 * Codeword bits come from ChaCha20 keystreams under HMAC-SHA-256-derived per-(item, recipient)
 * keys: one HMAC per recipient and one ChaCha20 block per 16 positions. (One HMAC per 8 positions,
 * 234,500 HMACs for 134 × 14,000, costs ~1.4 s with the pure-JS provider; the keystream ~45 ms.)
 */
import { chacha20 } from '@noble/ciphers/chacha.js';
import { abytes } from './bytes.js';
import { ArgumentError } from './errors.js';
import { Label, labelled } from './labels.js';
import { getProvider } from './provider.js';

/** Largest design coalition size, and largest coalition size the capacity estimate considers. */
export const TARDOS_MAX_COALITION = 16;
/** Most code positions of one item. */
export const TARDOS_MAX_POSITIONS = 1 << 20;
/** Length of a tracing key. */
export const TRACING_KEY_LENGTH = 32;
/** Length of an item id. */
export const ITEM_ID_LENGTH = 16;
/** Length of a recipient id. */
export const RECIPIENT_ID_LENGTH = 16;
/** Bias thresholds are out of 2^32: a position with threshold P has bias p = P / 2^32. */
export const BIAS_SCALE = 2 ** 32;
/** The cutoff is t = cutoffNumerator(c) / 2^16. */
export const CUTOFF_SCALE = 2 ** 16;

const NONCE = new Uint8Array(12);
const TWO16 = 2 ** 16;
const TWO34 = 2 ** 34;
const HALF = 2 ** 31;

function checkCoalition(c: number): number {
  if (!Number.isInteger(c) || c < 1 || c > TARDOS_MAX_COALITION) {
    throw new ArgumentError(`c: expected an integer 1..${TARDOS_MAX_COALITION}, got ${c}`);
  }
  return c;
}

function checkPositions(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > TARDOS_MAX_POSITIONS) {
    throw new ArgumentError(`positions: expected an integer 0..${TARDOS_MAX_POSITIONS}, got ${n}`);
  }
  return n;
}

/**
 * The bias cutoff numerator T(c) = floor(2^16 / (6c²)) for c >= 3; biases lie in [t, 1 - t] with
 * t = T / 2^16 (c = 3: t ≈ 0.0185). 0 for c <= 2, where every bias is 1/2.
 *
 * Why 1/(6c²) (spec §3.2): for the code lengths one document offers (10²–10⁴ positions) the
 * length needed to trace c colluders at ε₁ = 1e-6/134 is flat in t near its minimum, which lies
 * near 1/(6c²) for c = 3..8 when rare large score terms are weighed strictly (c = 3: 1,120
 * positions at t = 0.015–0.02, 1,190 at 0.005, 1,350 at Tardos' 1/(300c)), and costs at most ~2%
 * against the minimum of the capacity estimate itself. A smaller cutoff makes rare huge terms that
 * inflate the threshold, a larger one lets a coalition push its score towards 0.
 */
export function cutoffNumerator(c: number): number {
  checkCoalition(c);
  return c <= 2 ? 0 : Math.floor(CUTOFF_SCALE / (6 * c * c));
}

/** The cutoff t as a number (0 for c <= 2). */
export function cutoff(c: number): number {
  return cutoffNumerator(c) / CUTOFF_SCALE;
}

/** key = HMAC-SHA-256(tracingKey, labelled(label, parts...)), the key of one ChaCha20 keystream. */
function streamKey(tracingKey: Uint8Array, label: Label, ...parts: Uint8Array[]): Uint8Array {
  return getProvider().hmacSha256(tracingKey, labelled(label, ...parts));
}

const CHUNK_BLOCKS = 64;

/** Big-endian 32-bit words of ChaCha20(key, zeros(12)) from block 0, produced a chunk at a time. */
class WordStream {
  private readonly buf = new Uint8Array(CHUNK_BLOCKS * 64);
  private pos = this.buf.length;
  private block = 0;
  constructor(private readonly key: Uint8Array) {}

  next(): number {
    const b = this.buf;
    if (this.pos === b.length) {
      b.fill(0);
      chacha20(this.key, NONCE, b, b, this.block);
      this.block += CHUNK_BLOCKS;
      this.pos = 0;
    }
    const p = this.pos;
    this.pos = p + 4;
    return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
  }
}

/** floor(N / d) for integers 0 <= N < 2^51, 0 < d < 2^35, exactly (a double division may be off by one). */
function floorDiv(N: number, d: number): number {
  let q = Math.floor(N / d);
  if (q * d > N) q--;
  else if ((q + 1) * d <= N) q++;
  return q;
}

/**
 * The bias thresholds P_0..P_{n-1} of an item's n code positions (spec §3.2). For c <= 2 every
 * P_j = 2^31. Otherwise, with T = cutoffNumerator(c) and the word stream of
 * HMAC-SHA-256(tracingKey, labelled("valise/v1/fingerprint/bias", itemId)), each word w gives the
 * odd lattice point X = 2·(w & 0xffff) + 1, Y = 2·(w >>> 16) + 1, a = X², s = X² + Y²; it is
 * accepted iff s < 2^34, a·2^16 >= T·s and (s - a)·2^16 >= T·s, and then gives the next
 * P = floor(a·2^32 / s). Accepted points have a uniform angle in [r_t, π/2 - r_t], so p = a / s
 * follows the arcsine density 1/(π·sqrt(p(1-p))) restricted to [t, 1 - t].
 */
export function deriveBiases(tracingKey: Uint8Array, itemId: Uint8Array, n: number, c: number): Uint32Array {
  abytes(tracingKey, 'tracingKey', TRACING_KEY_LENGTH);
  abytes(itemId, 'itemId', ITEM_ID_LENGTH);
  checkPositions(n);
  const T = cutoffNumerator(c);
  const out = new Uint32Array(n);
  if (T === 0) return out.fill(HALF);
  const stream = new WordStream(streamKey(tracingKey, Label.FingerprintBias, itemId));
  for (let j = 0; j < n; ) {
    const w = stream.next();
    const X = 2 * (w & 0xffff) + 1;
    const Y = 2 * (w >>> 16) + 1;
    const a = X * X;
    const s = a + Y * Y;
    if (s >= TWO34) continue;
    const ts = T * s;
    if (a * TWO16 < ts || (s - a) * TWO16 < ts) continue;
    // P = floor(a·2^32 / s) in two exact base-2^16 steps (a·2^32 itself exceeds 2^53).
    const n1 = a * TWO16;
    const q1 = floorDiv(n1, s);
    const q2 = floorDiv((n1 - q1 * s) * TWO16, s);
    out[j++] = q1 * TWO16 + q2;
  }
  return out;
}

/** The biases p_j = P_j / 2^32 as numbers. */
export function biasValues(thresholds: Uint32Array): Float64Array {
  const out = new Float64Array(thresholds.length);
  for (let j = 0; j < thresholds.length; j++) out[j] = thresholds[j]! / BIAS_SCALE;
  return out;
}

/** The keystream words u_0..u_{n-1} of one recipient's codeword stream. */
function codewordWords(tracingKey: Uint8Array, itemId: Uint8Array, recipientId: Uint8Array, n: number): Uint8Array {
  const key = streamKey(tracingKey, Label.FingerprintCodeword, itemId, recipientId);
  return chacha20(key, NONCE, new Uint8Array(4 * n));
}

/**
 * One recipient's codeword (spec §3.3): bit j is 1 iff u_j < P_j, where u_j is word j of the
 * stream of HMAC-SHA-256(tracingKey, labelled("valise/v1/fingerprint/codeword", itemId,
 * recipientId)). So bit j is 1 with probability exactly p_j, independently of every other bit.
 */
export function deriveCodeword(tracingKey: Uint8Array, itemId: Uint8Array, recipientId: Uint8Array, thresholds: Uint32Array): Uint8Array {
  abytes(tracingKey, 'tracingKey', TRACING_KEY_LENGTH);
  abytes(itemId, 'itemId', ITEM_ID_LENGTH);
  abytes(recipientId, 'recipientId', RECIPIENT_ID_LENGTH);
  const n = checkPositions(thresholds.length);
  const ks = codewordWords(tracingKey, itemId, recipientId, n);
  const out = new Uint8Array(n);
  for (let j = 0, p = 0; j < n; j++, p += 4) {
    const u = ((ks[p]! << 24) | (ks[p + 1]! << 16) | (ks[p + 2]! << 8) | ks[p + 3]!) >>> 0;
    out[j] = u < thresholds[j]! ? 1 : 0;
  }
  return out;
}

/**
 * A uniformly random permutation of 0..n-1 (spec §3.4): Fisher–Yates from i = n - 1 down to 1,
 * each swap index drawn from the word stream of HMAC-SHA-256(key, labelled(
 * "valise/v1/fingerprint/permutation", itemId)) by rejection (a word w is used iff
 * w < 2^32 - (2^32 mod (i + 1)), giving w mod (i + 1)), so no index is favoured.
 */
export function keyedPermutation(key: Uint8Array, itemId: Uint8Array, n: number): Uint32Array {
  abytes(key, 'key', TRACING_KEY_LENGTH);
  abytes(itemId, 'itemId', ITEM_ID_LENGTH);
  checkPositions(n);
  const perm = new Uint32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  if (n < 2) return perm;
  const stream = new WordStream(streamKey(key, Label.FingerprintPermutation, itemId));
  for (let i = n - 1; i >= 1; i--) {
    const bound = i + 1;
    const limit = BIAS_SCALE - (BIAS_SCALE % bound);
    let w = stream.next();
    while (w >= limit) w = stream.next();
    const j = w % bound;
    const t = perm[i]!;
    perm[i] = perm[j]!;
    perm[j] = t;
  }
  return perm;
}

// ---------------------------------------------------------------------------------------------
// Scores.

/**
 * The symmetric score of one position (spec §4). With q the probability that an innocent's bit
 * equals the read symbol y (q = p if y = 1, 1 - p if y = 0), a match scores +sqrt((1-q)/q) and a
 * mismatch -sqrt(q/(1-q)); an erased position scores 0. For y = 1 these are Tardos' g1(p) and
 * g0(p); y = 0 is the same with the roles of the symbols exchanged.
 */
export function symmetricTerm(p: number, y: number, x: number): number {
  if (y !== 0 && y !== 1) return 0;
  const q = y === 1 ? p : 1 - p;
  return x === y ? Math.sqrt((1 - q) / q) : -Math.sqrt(q / (1 - q));
}

/**
 * What a reading contributes: for each read position (symbol 0 or 1) its index, the probability
 * q that an innocent matches, and the match and mismatch weights.
 */
export interface Reading {
  /** Number of code positions. */
  readonly positions: number;
  /** Indices of the read (non-erased) positions, ascending. */
  readonly index: Uint32Array;
  /** Read symbol of each read position. */
  readonly symbol: Uint8Array;
  /** Probability that an innocent's bit equals the read symbol. */
  readonly q: Float64Array;
  /** Score of a matching bit, +sqrt((1-q)/q). */
  readonly match: Float64Array;
  /** Score of a mismatching bit, -sqrt(q/(1-q)). */
  readonly mismatch: Float64Array;
}

/** Builds the {@link Reading} of `symbols` (0, 1, or -1 = erased, per code position). */
export function prepareReading(thresholds: Uint32Array, symbols: Int8Array | Uint8Array): Reading {
  if (symbols.length !== thresholds.length) {
    throw new ArgumentError(`symbols: expected ${thresholds.length} code positions, got ${symbols.length}`);
  }
  let r = 0;
  for (let j = 0; j < symbols.length; j++) if (symbols[j] === 0 || symbols[j] === 1) r++;
  const index = new Uint32Array(r);
  const symbol = new Uint8Array(r);
  const q = new Float64Array(r);
  const match = new Float64Array(r);
  const mismatch = new Float64Array(r);
  for (let j = 0, k = 0; j < symbols.length; j++) {
    const y = symbols[j];
    if (y !== 0 && y !== 1) continue;
    const p = thresholds[j]! / BIAS_SCALE;
    const qk = y === 1 ? p : 1 - p;
    index[k] = j;
    symbol[k] = y;
    q[k] = qk;
    match[k] = Math.sqrt((1 - qk) / qk);
    mismatch[k] = -Math.sqrt(qk / (1 - qk));
    k++;
  }
  return { positions: thresholds.length, index, symbol, q, match, mismatch };
}

/** Score and number of matching read positions of one codeword against a reading. */
export function scoreCodeword(reading: Reading, codeword: Uint8Array): { score: number; matches: number } {
  if (codeword.length !== reading.positions) {
    throw new ArgumentError(`codeword: expected ${reading.positions} bits, got ${codeword.length}`);
  }
  let score = 0;
  let matches = 0;
  const { index, symbol, match, mismatch } = reading;
  for (let k = 0; k < index.length; k++) {
    if (codeword[index[k]!] === symbol[k]) {
      score += match[k]!;
      matches++;
    } else score += mismatch[k]!;
  }
  return { score, matches };
}

/**
 * Scores of many recipients at once, deriving only what the reading needs: one HMAC and the
 * keystream up to the last read position per recipient.
 */
export function scoreRecipients(
  tracingKey: Uint8Array,
  itemId: Uint8Array,
  recipientIds: readonly Uint8Array[],
  thresholds: Uint32Array,
  reading: Reading,
): { scores: Float64Array; matches: Uint32Array } {
  abytes(tracingKey, 'tracingKey', TRACING_KEY_LENGTH);
  abytes(itemId, 'itemId', ITEM_ID_LENGTH);
  if (reading.positions !== thresholds.length) throw new ArgumentError('reading: made for another code length');
  const { index, symbol, match, mismatch } = reading;
  const scores = new Float64Array(recipientIds.length);
  const matches = new Uint32Array(recipientIds.length);
  const last = index.length === 0 ? -1 : index[index.length - 1]!;
  for (let i = 0; i < recipientIds.length; i++) {
    const id = abytes(recipientIds[i], `recipientIds[${i}]`, RECIPIENT_ID_LENGTH);
    if (last < 0) continue;
    const ks = codewordWords(tracingKey, itemId, id, last + 1);
    let s = 0;
    let m = 0;
    for (let k = 0; k < index.length; k++) {
      const j = index[k]!;
      const p = 4 * j;
      const u = ((ks[p]! << 24) | (ks[p + 1]! << 16) | (ks[p + 2]! << 8) | ks[p + 3]!) >>> 0;
      const x = u < thresholds[j]! ? 1 : 0;
      if (x === symbol[k]) {
        s += match[k]!;
        m++;
      } else s += mismatch[k]!;
    }
    scores[i] = s;
    matches[i] = m;
  }
  return { scores, matches };
}

// ---------------------------------------------------------------------------------------------
// The threshold: an exact Chernoff bound of the innocent's score given the reading.

/**
 * K(λ) = Σ log(q e^{λ·match} + (1-q) e^{λ·mismatch}), the log moment generating function of an
 * innocent's score, with K'(λ) and K''(λ). Written as λ·match + log(q + (1-q) e^{-λ·d}),
 * d = match - mismatch, which never overflows for λ >= 0.
 */
function logMgf(reading: Reading, lambda: number): { K: number; dK: number; d2K: number } {
  const { q, match, mismatch } = reading;
  let K = 0;
  let dK = 0;
  let d2K = 0;
  for (let k = 0; k < q.length; k++) {
    const a = match[k]!;
    const b = mismatch[k]!;
    const qk = q[k]!;
    const e = (1 - qk) * Math.exp(-lambda * (a - b));
    const z = qk + e;
    const m1 = (a * qk + b * e) / z;
    K += lambda * a + Math.log(z);
    dK += m1;
    d2K += (a * a * qk + b * b * e) / z - m1 * m1;
  }
  return { K, dK, d2K };
}

/**
 * The root of a non-decreasing f on (0, ∞) with f(0+) < 0, by Newton steps kept inside a
 * bracket (bisection when a step leaves it). `f` returns the value and the derivative.
 */
function solveIncreasing(f: (x: number) => { v: number; dv: number }, start: number): { lo: number; hi: number; x: number } {
  let lo = 0;
  let hi = start;
  let fx = f(hi);
  for (let i = 0; i < 200 && fx.v < 0; i++) {
    lo = hi;
    hi *= 2;
    fx = f(hi);
  }
  let x = hi;
  for (let i = 0; i < 100 && hi - lo > 1e-12 * hi; i++) {
    if (fx.v === 0) return { lo: x, hi: x, x };
    let next = fx.dv > 0 ? x - fx.v / fx.dv : Number.NaN;
    if (!(next > lo && next < hi)) next = (lo + hi) / 2;
    x = next;
    fx = f(x);
    if (fx.v < 0) lo = x;
    else hi = x;
    if (Math.abs(fx.v) < 1e-13 * (1 + Math.abs(x * fx.dv))) break;
  }
  return { lo, hi, x };
}

/** The largest score an innocent can reach (all read positions matching) and log(1/P(that)). */
function extremes(reading: Reading): { maxScore: number; logInvAllMatch: number } {
  let maxScore = 0;
  let logInv = 0;
  for (let k = 0; k < reading.q.length; k++) {
    maxScore += reading.match[k]!;
    logInv -= Math.log(reading.q[k]!);
  }
  return { maxScore, logInvAllMatch: logInv };
}

/** A score threshold with the λ at which the Chernoff bound was evaluated. */
export interface AccusationThreshold {
  /** Accuse iff score >= threshold. +Infinity when no threshold can meet ε₁ (too little was read). */
  threshold: number;
  /** The λ of the bound exp(K(λ) - λ·threshold) <= ε₁ (0 if none). */
  lambda: number;
  /** Number of read positions. */
  read: number;
}

/** Relative (and absolute) margin added to every computed threshold, far above the rounding error of K. */
const THRESHOLD_MARGIN = 1e-9;

/**
 * The smallest Z of the form (K(λ) + L) / λ, L = ln(1/ε₁), over λ > 0 (spec §5): for every λ,
 * P(innocent score >= Z) <= exp(K(λ) - λZ) = ε₁ (Chernoff), so any λ gives a valid threshold
 * and optimising λ only makes it tighter. Z(λ) falls while h(λ) = λK'(λ) - K(λ) - L < 0 and rises
 * after (h' = λK'' >= 0), so λ* is the root of h. If an innocent matching every read position is
 * itself more likely than ε₁ (Σ ln(1/q) <= L), h has no root and no threshold exists: the result
 * is +Infinity and nobody is accused.
 */
export function accusationThreshold(reading: Reading, epsilon1: number): AccusationThreshold {
  if (!(epsilon1 > 0 && epsilon1 < 1)) throw new ArgumentError(`epsilon1: expected a number in (0, 1), got ${epsilon1}`);
  const read = reading.q.length;
  const L = -Math.log(epsilon1);
  const { logInvAllMatch } = extremes(reading);
  if (read === 0 || logInvAllMatch <= L * (1 + 1e-12)) return { threshold: Number.POSITIVE_INFINITY, lambda: 0, read };
  const { lo, hi, x } = solveIncreasing(
    (lambda) => {
      const { K, dK, d2K } = logMgf(reading, lambda);
      return { v: lambda * dK - K - L, dv: lambda * d2K };
    },
    Math.sqrt((2 * L) / read),
  );
  // Any λ > 0 gives a valid threshold; keep the smallest of the candidates.
  let best = Number.POSITIVE_INFINITY;
  let bestLambda = 0;
  for (const lambda of [x, lo, hi]) {
    if (!(lambda > 0)) continue;
    const z = (logMgf(reading, lambda).K + L) / lambda;
    if (z < best) {
      best = z;
      bestLambda = lambda;
    }
  }
  return { threshold: best * (1 + THRESHOLD_MARGIN) + THRESHOLD_MARGIN, lambda: bestLambda, read };
}

/**
 * An upper bound on P(innocent score >= s) given the reading: min over λ >= 0 of exp(K(λ) - λs)
 * (the λ solving K'(λ) = s), which is exact at the extremes: 1 for s <= 0, P(all match) at the
 * maximum score, 0 above it.
 */
export function tailBound(reading: Reading, s: number): number {
  if (!(s > 0)) return 1;
  const { maxScore, logInvAllMatch } = extremes(reading);
  if (s > maxScore * (1 + 1e-12)) return 0;
  if (s >= maxScore) return Math.exp(-logInvAllMatch);
  const { lo, hi, x } = solveIncreasing((lambda) => {
    const { dK, d2K } = logMgf(reading, lambda);
    return { v: dK - s, dv: d2K };
  }, 1);
  let best = 1;
  for (const lambda of [x, lo, hi]) best = Math.min(best, Math.exp(logMgf(reading, lambda).K - lambda * s));
  return best;
}

// ---------------------------------------------------------------------------------------------
// Capacity: the largest coalition a set of positions can be expected to trace.

/**
 * Expected total score of a coalition of size c over the given positions, under the worst
 * collusion strategy that respects the marking assumption (spec §8): at a position where α of the
 * c colluders hold a 1, the coalition total is (2y - 1)(α - cp)/sqrt(p(1-p)); y is forced for
 * α = 0 and α = c, and for every other α the coalition picks the symbol that hurts it least in
 * expectation over all positions (it sees α but not p). Without a cutoff this is 2/π per position
 * whatever the strategy; with the cutoff a little less.
 */
export function worstCoalitionScore(biases: ArrayLike<number>, c: number): number {
  checkCoalition(c);
  const free = new Float64Array(c + 1);
  let forced = 0;
  for (let j = 0; j < biases.length; j++) {
    const p = biases[j]!;
    const s = Math.sqrt(p * (1 - p));
    // pa = P(α) = C(c, α) p^α (1-p)^(c-α), stepped up from P(0).
    let pa = (1 - p) ** c;
    const ratio = p / (1 - p);
    for (let alpha = 0; alpha <= c; alpha++) {
      const g = (pa * (alpha - c * p)) / s;
      if (alpha === 0) forced -= g;
      else if (alpha === c) forced += g;
      else free[alpha]! += g;
      pa = (pa * ratio * (c - alpha)) / (alpha + 1);
    }
  }
  let total = forced;
  for (let alpha = 1; alpha < c; alpha++) total -= Math.abs(free[alpha]!);
  return total;
}

/**
 * The threshold tracing is expected to compute for these positions: the Chernoff threshold
 * (spec §5) of K̄(λ) = Σ [p·K_j(λ; y = 1) + (1 - p)·K_j(λ; y = 0)], the log-MGF averaged over a
 * reading that carries each symbol with its bias (as one copy does). A coalition's reading gives
 * a threshold within a few per cent of it. K̄ is convex with K̄(0) = 0, so the root of
 * λK̄' - K̄ - L is found as in {@link accusationThreshold}.
 */
export function expectedThreshold(biases: ArrayLike<number>, epsilon1: number): number {
  const n = biases.length;
  if (n === 0) return Number.POSITIVE_INFINITY;
  const L = -Math.log(epsilon1);
  // Per position and symbol: the symbol's probability w, and q, a, b as in a reading.
  const w = new Float64Array(2 * n);
  const q = new Float64Array(2 * n);
  const a = new Float64Array(2 * n);
  const b = new Float64Array(2 * n);
  let logInv = 0;
  for (let j = 0; j < n; j++) {
    const p = biases[j]!;
    logInv += p * Math.log(1 / p) + (1 - p) * Math.log(1 / (1 - p));
    for (let y = 0; y < 2; y++) {
      const qk = y === 1 ? p : 1 - p;
      w[2 * j + y] = qk;
      q[2 * j + y] = qk;
      a[2 * j + y] = Math.sqrt((1 - qk) / qk);
      b[2 * j + y] = -Math.sqrt(qk / (1 - qk));
    }
  }
  if (logInv <= L) return Number.POSITIVE_INFINITY;
  const averaged = (lambda: number) => {
    let K = 0;
    let dK = 0;
    let d2K = 0;
    for (let k = 0; k < 2 * n; k++) {
      const ak = a[k]!;
      const bk = b[k]!;
      const qk = q[k]!;
      const wk = w[k]!;
      const e = (1 - qk) * Math.exp(-lambda * (ak - bk));
      const z = qk + e;
      const m1 = (ak * qk + bk * e) / z;
      K += wk * (lambda * ak + Math.log(z));
      dK += wk * m1;
      d2K += wk * ((ak * ak * qk + bk * bk * e) / z - m1 * m1);
    }
    return { K, dK, d2K };
  };
  const { lo, hi, x } = solveIncreasing(
    (lambda) => {
      const { K, dK, d2K } = averaged(lambda);
      return { v: lambda * dK - K - L, dv: lambda * d2K };
    },
    Math.sqrt((2 * L) / n),
  );
  let best = Number.POSITIVE_INFINITY;
  for (const lambda of [x, lo, hi]) if (lambda > 0) best = Math.min(best, (averaged(lambda).K + L) / lambda);
  return best;
}

/** Standard deviations of margin the capacity estimate asks for. */
export const CAPACITY_SIGMAS = 1;

/**
 * Whether a coalition of size c is expected to be traced from the given positions (spec §8): the
 * average colluder score under the worst strategy, minus {@link CAPACITY_SIGMAS} of its standard
 * deviation (the coalition total has variance at most c per position, so the average has at most
 * n/c), reaches the expected threshold. The best colluder, who is the one accused, scores more than
 * the average, which the margin leaves as slack.
 */
export function coalitionTraceable(biases: ArrayLike<number>, c: number, threshold: number): boolean {
  const n = biases.length;
  if (n === 0 || !Number.isFinite(threshold)) return false;
  const mean = worstCoalitionScore(biases, c) / c;
  return mean - CAPACITY_SIGMAS * Math.sqrt(n / c) >= threshold;
}

/**
 * The largest c' <= maxC such that coalitions of every size 1..c' are expected to be traced from
 * these positions at ε₁ (0 if not even a single leaker is). An estimate: in simulation a size at
 * the estimate is traced in about 90–100% of trials under the worst strategies, and often a size
 * or two more is traced too.
 */
export function estimateCapacity(biases: ArrayLike<number>, epsilon1: number, maxC = TARDOS_MAX_COALITION): number {
  const z = expectedThreshold(biases, epsilon1);
  let c = 0;
  while (c < maxC && coalitionTraceable(biases, c + 1, z)) c++;
  return c;
}
