import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toHex, u32be } from '../src/bytes.js';
import { ErrorCode, ValiseError } from '../src/errors.js';
import { getProvider } from '../src/provider.js';
import {
  accusationThreshold,
  BIAS_SCALE,
  biasValues,
  cutoff,
  deriveBiases,
  deriveCodeword,
  estimateCapacity,
  keyedPermutation,
  prepareReading,
  type Reading,
  scoreCodeword,
  scoreRecipients,
  symmetricTerm,
  tailBound,
  worstCoalitionScore,
} from '../src/tardos.js';

const KEY = new Uint8Array(32).map((_, i) => i);
const ITEM = new Uint8Array(16).map((_, i) => 0xa0 + i);
const EPS1 = 1e-6 / 134;

function recipientId(i: number): Uint8Array {
  const id = new Uint8Array(16);
  id.set(u32be(i), 0);
  id[15] = 0x5a;
  return id;
}

/** A small seeded generator (xorshift128+ style) for simulated attacks; not a PRF. */
function rng(seed: number): () => number {
  let a = seed >>> 0 || 1;
  let b = (seed * 2654435761) >>> 0 || 2;
  return () => {
    let t = a ^ (a << 11);
    a = b;
    b = (b ^ (b >>> 19) ^ t ^ (t >>> 8)) >>> 0;
    t = b;
    return t / 2 ** 32;
  };
}

const digest = (parts: ArrayLike<number>[]) => {
  const h = getProvider().createSha256();
  for (const p of parts) h.update(new Uint8Array(new Uint32Array(Array.from(p)).buffer));
  return toHex(h.digest());
};

function codewords(n: number, count: number, c: number, item = ITEM) {
  const thresholds = deriveBiases(KEY, item, n, c);
  const ids = Array.from({ length: count }, (_, i) => recipientId(i));
  const words = ids.map((id) => deriveCodeword(KEY, item, id, thresholds));
  return { thresholds, ids, words };
}

type Strategy = 'interleave' | 'majority' | 'random' | 'minority';

function collude(words: Uint8Array[], strategy: Strategy, r: () => number): Int8Array {
  const n = words[0]!.length;
  const y = new Int8Array(n);
  const block = 37;
  for (let j = 0; j < n; j++) {
    let ones = 0;
    for (const w of words) ones += w[j]!;
    if (ones === 0 || ones === words.length) {
      y[j] = ones === 0 ? 0 : 1; // marking assumption: undetectable positions stay as they are
      continue;
    }
    switch (strategy) {
      case 'interleave':
        y[j] = words[Math.floor(j / block) % words.length]![j]!;
        break;
      case 'majority':
        y[j] = 2 * ones > words.length ? 1 : 2 * ones < words.length ? 0 : r() < 0.5 ? 1 : 0;
        break;
      case 'minority':
        y[j] = 2 * ones < words.length ? 1 : 0;
        break;
      case 'random':
        y[j] = words[Math.floor(r() * words.length)]![j]!;
        break;
    }
  }
  return y;
}

function accusedOf(reading: Reading, scores: Float64Array): number[] {
  const { threshold } = accusationThreshold(reading, EPS1);
  return [...scores.keys()].filter((i) => scores[i]! >= threshold);
}

describe('Tardos code derivation', () => {
  it('is deterministic and matches the pinned vectors (both providers)', () => {
    const t1 = deriveBiases(KEY, ITEM, 64, 3);
    expect(deriveBiases(KEY, ITEM, 64, 3)).toEqual(t1);
    const x = deriveCodeword(KEY, ITEM, recipientId(1), t1);
    expect(deriveCodeword(KEY, ITEM, recipientId(1), t1)).toEqual(x);
    const perm = keyedPermutation(KEY, ITEM, 64);
    expect(keyedPermutation(KEY, ITEM, 64)).toEqual(perm);
    // Pinned: any change to the PRF inputs, labels, sampling or rejection rules changes these.
    expect([...t1.subarray(0, 4)]).toEqual(PINNED.thresholds);
    expect(x.join('')).toBe(PINNED.codeword);
    expect([...perm.subarray(0, 8)]).toEqual(PINNED.permutation);
    expect(digest([deriveBiases(KEY, ITEM, 5000, 5)])).toBe(PINNED.biasDigestC5);
  });

  it('gives prefixes: the first n biases do not depend on how many are asked for', () => {
    const long = deriveBiases(KEY, ITEM, 3000, 3);
    expect(deriveBiases(KEY, ITEM, 1000, 3)).toEqual(long.subarray(0, 1000));
  });

  it('separates items, recipients and uses', () => {
    const other = ITEM.slice();
    other[0]! ^= 1;
    expect(deriveBiases(KEY, other, 64, 3)).not.toEqual(deriveBiases(KEY, ITEM, 64, 3));
    const t = deriveBiases(KEY, ITEM, 256, 3);
    expect(deriveCodeword(KEY, ITEM, recipientId(1), t)).not.toEqual(deriveCodeword(KEY, ITEM, recipientId(2), t));
    expect(deriveCodeword(KEY, other, recipientId(1), t)).not.toEqual(deriveCodeword(KEY, ITEM, recipientId(1), t));
  });

  it('fixes every bias at 1/2 for c <= 2 and keeps them in [t, 1 - t] otherwise', () => {
    for (const c of [1, 2]) expect(deriveBiases(KEY, ITEM, 100, c).every((P) => P === 2 ** 31)).toBe(true);
    for (const c of [3, 5, 16]) {
      const t = cutoff(c);
      for (const p of biasValues(deriveBiases(KEY, ITEM, 4000, c))) {
        expect(p).toBeGreaterThanOrEqual(t - 2 ** -32);
        expect(p).toBeLessThanOrEqual(1 - t + 2 ** -32);
      }
    }
  });

  it('draws biases from the arcsine law with the cutoff (Kolmogorov–Smirnov, 20,000 draws)', () => {
    const c = 3;
    const t = cutoff(c);
    const rt = Math.asin(Math.sqrt(t));
    const cdf = (p: number) => (Math.asin(Math.sqrt(p)) - rt) / (Math.PI / 2 - 2 * rt);
    const ps = [...biasValues(deriveBiases(KEY, ITEM, 20000, c))].sort((a, b) => a - b);
    let d = 0;
    ps.forEach((p, i) => {
      const f = cdf(p);
      d = Math.max(d, Math.abs(f - i / ps.length), Math.abs(f - (i + 1) / ps.length));
    });
    expect(d).toBeLessThan(1.95 / Math.sqrt(ps.length)); // 99.9% critical value
  });

  it('sets each codeword bit with probability exactly its bias', () => {
    const { thresholds, words } = codewords(400, 300, 3);
    let ones = 0;
    let expected = 0;
    let variance = 0;
    for (const w of words) for (const x of w) ones += x;
    for (const P of thresholds) {
      const p = P / BIAS_SCALE;
      expected += words.length * p;
      variance += words.length * p * (1 - p);
    }
    expect(Math.abs(ones - expected) / Math.sqrt(variance)).toBeLessThan(5);
  });

  it('keyedPermutation is a permutation, for any n', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3000 }), fc.uint8Array({ minLength: 16, maxLength: 16 }), (n, item) => {
        const perm = keyedPermutation(KEY, item, n);
        expect(perm.length).toBe(n);
        const seen = new Uint8Array(n);
        for (const v of perm) seen[v]! += 1;
        expect(seen.every((v) => v === 1)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it('keyedPermutation is unbiased (chi-square over the 24 permutations of 4)', () => {
    const counts = new Map<string, number>();
    const trials = 4800;
    for (let i = 0; i < trials; i++) {
      const item = new Uint8Array(16);
      item.set(u32be(i));
      const k = keyedPermutation(KEY, item, 4).join('');
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    expect(counts.size).toBe(24);
    const e = trials / 24;
    let chi2 = 0;
    for (const v of counts.values()) chi2 += (v - e) ** 2 / e;
    expect(chi2).toBeLessThan(49.7); // 99.9% point of chi-square with 23 degrees of freedom
  });

  it('rejects bad arguments with ArgumentError', () => {
    const bad = [
      () => deriveBiases(KEY.subarray(1), ITEM, 10, 3),
      () => deriveBiases(KEY, ITEM.subarray(1), 10, 3),
      () => deriveBiases(KEY, ITEM, -1, 3),
      () => deriveBiases(KEY, ITEM, 10, 0),
      () => deriveBiases(KEY, ITEM, 10, 17),
      () => deriveCodeword(KEY, ITEM, new Uint8Array(15), new Uint32Array(3)),
      () => keyedPermutation(KEY, ITEM, 1.5),
      () => accusationThreshold(prepareReading(new Uint32Array(1), new Int8Array(1)), 0),
      () => prepareReading(new Uint32Array(2), new Int8Array(3)),
    ];
    for (const f of bad) {
      expect(f).toThrow();
      try {
        f();
      } catch (e) {
        expect(ValiseError.is(e, ErrorCode.Argument)).toBe(true);
      }
    }
  });
});

describe('symmetric score and threshold', () => {
  it('gives an innocent mean 0 and variance 1 per position', () => {
    // Exact, from the two-point law, for many biases and both symbols.
    for (const p of [0.02, 0.1, 0.3, 0.5, 0.77, 0.98]) {
      for (const y of [0, 1]) {
        const m = p * symmetricTerm(p, y, 1) + (1 - p) * symmetricTerm(p, y, 0);
        const v = p * symmetricTerm(p, y, 1) ** 2 + (1 - p) * symmetricTerm(p, y, 0) ** 2;
        expect(m).toBeCloseTo(0, 12);
        expect(v).toBeCloseTo(1, 12);
      }
    }
    // Empirically: 1,500 innocents against a coalition's forgery over 600 positions.
    const n = 600;
    const { thresholds, words } = codewords(n, 1503, 3);
    const y = collude(words.slice(0, 3), 'majority', rng(1));
    const reading = prepareReading(thresholds, y);
    const z = words.slice(3).map((w) => scoreCodeword(reading, w).score / Math.sqrt(n));
    const mean = z.reduce((a, b) => a + b, 0) / z.length;
    const variance = z.reduce((a, b) => a + (b - mean) ** 2, 0) / (z.length - 1);
    expect(Math.abs(mean)).toBeLessThan(0.12); // 4.6 standard errors
    expect(variance).toBeGreaterThan(0.85);
    expect(variance).toBeLessThan(1.15);
  });

  it('bounds the exact tail: the Chernoff bound is never below the true probability', () => {
    // 14 positions: enumerate all 2^14 innocent codewords with their probabilities.
    const n = 14;
    const thresholds = deriveBiases(KEY, ITEM, n, 3);
    const y = new Int8Array(n).map((_, j) => (j % 3 === 0 ? 0 : 1));
    const reading = prepareReading(thresholds, y);
    const scores: [number, number][] = [];
    for (let mask = 0; mask < 1 << n; mask++) {
      let s = 0;
      let pr = 1;
      for (let k = 0; k < n; k++) {
        const match = (mask >> k) & 1;
        s += match ? reading.match[k]! : reading.mismatch[k]!;
        pr *= match ? reading.q[k]! : 1 - reading.q[k]!;
      }
      scores.push([s, pr]);
    }
    for (const s of [0.5, 1, 2, 4, 6, 8, 10, 14, 20]) {
      const exact = scores.filter(([v]) => v >= s).reduce((a, [, pr]) => a + pr, 0);
      expect(tailBound(reading, s)).toBeGreaterThanOrEqual(exact * (1 - 1e-9));
    }
    for (const eps of [0.2, 0.05, 0.01, 1e-3]) {
      const { threshold } = accusationThreshold(reading, eps);
      const exact = scores.filter(([v]) => v >= threshold).reduce((a, [, pr]) => a + pr, 0);
      expect(exact).toBeLessThanOrEqual(eps);
      if (Number.isFinite(threshold)) expect(tailBound(reading, threshold)).toBeLessThanOrEqual(eps * (1 + 1e-6));
    }
  });

  it('is conservative in simulation: 20,000 innocents never exceed the bound', () => {
    const n = 120;
    const { thresholds, words } = codewords(n, 20003, 3);
    const y = collude(words.slice(0, 3), 'random', rng(2));
    const reading = prepareReading(thresholds, y);
    for (const eps of [0.05, 0.01, 1e-3]) {
      const { threshold } = accusationThreshold(reading, eps);
      let over = 0;
      for (const w of words.slice(3)) if (scoreCodeword(reading, w).score >= threshold) over++;
      // The observed rate must not exceed the bound (plus 4 binomial standard deviations).
      const trials = words.length - 3;
      expect(over / trials).toBeLessThanOrEqual(eps + 4 * Math.sqrt((eps * (1 - eps)) / trials));
    }
  });

  it('scoreRecipients equals scoring each derived codeword', () => {
    const { thresholds, ids, words } = codewords(500, 20, 3);
    const y = collude(words.slice(0, 2), 'random', rng(3));
    for (let j = 0; j < y.length; j += 7) y[j] = -1;
    const reading = prepareReading(thresholds, y);
    const { scores, matches } = scoreRecipients(KEY, ITEM, ids, thresholds, reading);
    words.forEach((w, i) => {
      const r = scoreCodeword(reading, w);
      expect(scores[i]).toBeCloseTo(r.score, 9);
      expect(matches[i]).toBe(r.matches);
    });
  });

  it('accuses nobody when nothing, or too little, was read', () => {
    const { thresholds, ids } = codewords(200, 10, 3);
    const none = prepareReading(thresholds, new Int8Array(200).fill(-1));
    expect(accusationThreshold(none, EPS1).threshold).toBe(Number.POSITIVE_INFINITY);
    expect([...scoreRecipients(KEY, ITEM, ids, thresholds, none).scores]).toEqual(new Array(10).fill(0));
    const few = new Int8Array(200).fill(-1);
    few.fill(1, 0, 5);
    expect(accusationThreshold(prepareReading(thresholds, few), EPS1).threshold).toBe(Number.POSITIVE_INFINITY);
  });

  it('accuses nobody on an unmarked reading (every symbol the same)', () => {
    const { thresholds, ids } = codewords(3000, 134, 3);
    for (const v of [0, 1]) {
      const reading = prepareReading(thresholds, new Int8Array(3000).fill(v));
      const { scores } = scoreRecipients(KEY, ITEM, ids, thresholds, reading);
      expect(accusedOf(reading, scores)).toEqual([]);
    }
  });
});

describe('tracing in simulation (134 recipients, ε = 1e-6)', () => {
  it('names a single leaker from a whole copy and from a 20% excerpt', () => {
    const n = 1500;
    const { thresholds, ids, words } = codewords(n, 134, 3);
    const r = rng(4);
    for (const leaker of [0, 77, 133]) {
      const whole = Int8Array.from(words[leaker]!);
      const excerpt = whole.map((v) => (r() < 0.2 ? v : -1));
      for (const y of [whole, excerpt]) {
        const reading = prepareReading(thresholds, y);
        const { scores } = scoreRecipients(KEY, ITEM, ids, thresholds, reading);
        expect(accusedOf(reading, scores)).toEqual([leaker]);
      }
    }
  });

  it('traces a coalition of 3 (interleave, majority, random, minority): >= 1 colluder, no innocent', () => {
    const n = 2500;
    const r = rng(5);
    let trials = 0;
    for (let trial = 0; trial < 6; trial++) {
      const item = ITEM.slice();
      item[15] = trial;
      const { thresholds, ids, words } = codewords(n, 134, 3, item);
      for (const strategy of ['interleave', 'majority', 'random', 'minority'] as const) {
        const coalition = [trial, 40 + trial, 100 + trial];
        const y = collude(
          coalition.map((i) => words[i]!),
          strategy,
          r,
        );
        const reading = prepareReading(thresholds, y);
        const { scores } = scoreRecipients(KEY, item, ids, thresholds, reading);
        const accused = accusedOf(reading, scores);
        expect(accused.length).toBeGreaterThan(0);
        for (const i of accused) expect(coalition).toContain(i);
        trials++;
      }
    }
    expect(trials).toBe(24);
  });
});

describe('capacity estimate', () => {
  it('reproduces 2/π per position for the coalition score, and grows with the code length', () => {
    // Arcsine biases without a cutoff (a fine quantile grid): 2/π whatever the strategy.
    const grid = Array.from({ length: 20000 }, (_, i) => Math.sin(((i + 0.5) / 20000) * (Math.PI / 2)) ** 2);
    for (const c of [1, 2, 3, 4, 6]) expect(worstCoalitionScore(grid, c) / grid.length).toBeCloseTo(2 / Math.PI, 2);
    // With the cutoff the worst strategy costs a little.
    const b = biasValues(deriveBiases(KEY, ITEM, 20000, 3));
    for (const c of [2, 3, 4]) {
      const mu = worstCoalitionScore(b, c) / b.length;
      expect(mu).toBeGreaterThan(0.6);
      expect(mu).toBeLessThan(0.8);
    }
    const caps = [30, 400, 1500, 6000, 20000].map((m) => estimateCapacity(b.subarray(0, m), EPS1));
    expect(caps[0]).toBe(0);
    for (let i = 1; i < caps.length; i++) expect(caps[i]!).toBeGreaterThanOrEqual(caps[i - 1]!);
    expect(caps[2]).toBeGreaterThanOrEqual(3);
    expect(caps[4]).toBeGreaterThanOrEqual(8);
  });

  it('finds that p = 1/2 (c <= 2) cannot trace 3 colluders however long the code', () => {
    const b = biasValues(deriveBiases(KEY, ITEM, 20000, 2));
    expect(worstCoalitionScore(b, 3)).toBeLessThanOrEqual(0);
    expect(estimateCapacity(b, EPS1)).toBe(2);
  });
});

const PINNED = {
  thresholds: [1844498198, 3499679961, 236519191, 1392170399],
  codeword: '0101100001000101101001111111000100011001101001100001111100100010',
  permutation: [50, 1, 11, 30, 51, 60, 46, 16],
  biasDigestC5: '2e6a4eac96798e7d55a273127c5754f38eaac4d356c5604e1b796b53d82af818',
};
