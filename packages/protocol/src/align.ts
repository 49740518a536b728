/**
 * Aligning a leaked text to the original it came from (spec/marks.md, "Alignment").
 *
 * Both texts are first reduced to a *skeleton*: every code point is NFKD-decomposed, combining
 * marks, format characters (zero-width characters, bidi controls, soft hyphen) and tatweel are
 * dropped, every letter a marking channel may substitute is folded back to its base form (Cyrillic
 * look-alikes to Latin, Farsi yeh and keheh to Arabic yeh and kaf, Arabic-Indic digits to ASCII, ...)
 * and runs of whitespace become one space (none at the ends). Two copies of one document marked differently have the
 * same skeleton except where the wording channel changed words, and so does a copy that was
 * normalised, reflowed or stripped of its invisible marks. Each skeleton character remembers the
 * raw UTF-16 span it came from, so that a reader can look at the raw characters around it.
 *
 * The skeletons are then aligned: unique k-grams of the original's skeleton seed exact matches in
 * the leak's skeleton, which are extended left and right as far as the characters agree, and small
 * gaps between two matches are aligned character by character (longest common subsequence). The
 * result maps each position of the original's skeleton to a position of the leak's, or to -1.
 * Excerpts, several excerpts in any order, and a few edited words all align; what does not align
 * is simply not read.
 */

/** A text reduced for alignment, with the raw span of every skeleton character. */
export interface Skeleton {
  /** The skeleton, one UTF-16 unit per entry of the arrays below. */
  readonly text: string;
  /** Raw UTF-16 index of the code point each skeleton unit came from. */
  readonly rawStart: Int32Array;
  /**
   * Raw end (exclusive) of that code point. For a run of whitespace, which becomes one space, only
   * the run's first character: the rest of the run belongs to the gap after the space.
   */
  readonly rawEnd: Int32Array;
}

/** Code points a marking channel substitutes, folded back to the character they stand for. */
const FOLD: ReadonlyMap<number, string> = new Map<number, string>([
  // Cyrillic look-alikes of Latin letters (marks-latin.ts).
  [0x0430, 'a'],
  [0x0441, 'c'],
  [0x0435, 'e'],
  [0x0456, 'i'],
  [0x0458, 'j'],
  [0x043e, 'o'],
  [0x0440, 'p'],
  [0x0455, 's'],
  [0x0445, 'x'],
  [0x0443, 'y'],
  [0x0410, 'A'],
  [0x0412, 'B'],
  [0x0421, 'C'],
  [0x0415, 'E'],
  [0x041d, 'H'],
  [0x0406, 'I'],
  [0x0408, 'J'],
  [0x041c, 'M'],
  [0x041e, 'O'],
  [0x0420, 'P'],
  [0x0405, 'S'],
  [0x0422, 'T'],
  [0x0425, 'X'],
  // Arabic letter-form variants (marks-arabic.ts).
  [0x06cc, '\u064a'],
  [0x06a9, '\u0643'],
  // Punctuation variants.
  [0x2019, "'"],
  [0x2010, '-'],
  [0x060c, ','],
]);
// Arabic-Indic and Extended Arabic-Indic (Persian) digits.
for (let d = 0; d < 10; d++) {
  (FOLD as Map<number, string>).set(0x0660 + d, String(d));
  (FOLD as Map<number, string>).set(0x06f0 + d, String(d));
}

const DROPPED = /[\p{M}\p{Cf}\u0640]/u;
const SPACE = /\s/u;
const foldCache = new Map<number, string>();
const FOLD_CACHE_LIMIT = 8192;

/** The skeleton of one code point above U+007F: possibly empty, possibly several units. */
export function foldCodePoint(cp: number): string {
  const cached = foldCache.get(cp);
  if (cached !== undefined) return cached;
  let out = FOLD.get(cp);
  if (out === undefined) {
    out = '';
    for (const ch of String.fromCodePoint(cp).normalize('NFKD')) {
      if (DROPPED.test(ch)) continue;
      if (SPACE.test(ch)) out += ' ';
      else out += FOLD.get(ch.codePointAt(0) as number) ?? ch;
    }
  }
  // Bounded, so that a text made of many distinct code points cannot grow it without limit.
  if (foldCache.size < FOLD_CACHE_LIMIT) foldCache.set(cp, out);
  return out;
}

/** The skeleton of `raw` (see the module comment). Linear in the length of `raw`. */
export function skeleton(raw: string): Skeleton {
  const n = raw.length;
  let cap = n + 16;
  let units = new Uint16Array(cap);
  let starts = new Int32Array(cap);
  let ends = new Int32Array(cap);
  let m = 0;
  const push = (u: number, s: number, e: number): void => {
    if (m === cap) {
      cap *= 2;
      const u2 = new Uint16Array(cap);
      u2.set(units);
      units = u2;
      const s2 = new Int32Array(cap);
      s2.set(starts);
      starts = s2;
      const e2 = new Int32Array(cap);
      e2.set(ends);
      ends = e2;
    }
    units[m] = u;
    starts[m] = s;
    ends[m] = e;
    m++;
  };
  let lastSpace = false;
  for (let i = 0; i < n; ) {
    const c = raw.charCodeAt(i);
    if (c < 0x80) {
      if (c === 0x20 || (c >= 0x09 && c <= 0x0d)) {
        if (!lastSpace && m > 0) push(0x20, i, i + 1);
        lastSpace = true;
      } else {
        push(c, i, i + 1);
        lastSpace = false;
      }
      i++;
      continue;
    }
    let cp = c;
    let len = 1;
    if (c >= 0xd800 && c < 0xdc00 && i + 1 < n) {
      const d = raw.charCodeAt(i + 1);
      if (d >= 0xdc00 && d < 0xe000) {
        cp = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
        len = 2;
      }
    }
    const f = foldCodePoint(cp);
    for (let k = 0; k < f.length; k++) {
      const u = f.charCodeAt(k);
      if (u === 0x20) {
        if (lastSpace || m === 0) continue;
        lastSpace = true;
      } else lastSpace = false;
      push(u, i, i + len);
    }
    i += len;
  }
  if (m > 0 && units[m - 1] === 0x20) m--; // no trailing space either
  let text = '';
  const CHUNK = 8192;
  for (let k = 0; k < m; k += CHUNK) text += String.fromCharCode(...units.subarray(k, Math.min(m, k + CHUNK)));
  return { text, rawStart: starts.slice(0, m), rawEnd: ends.slice(0, m) };
}

/** For each raw position p (0..n), the first skeleton index whose raw start is at or after p. */
export function skeletonIndexAtOrAfter(sk: Skeleton, rawLength: number): Int32Array {
  const out = new Int32Array(rawLength + 1);
  let j = 0;
  for (let p = 0; p <= rawLength; p++) {
    while (j < sk.rawStart.length && (sk.rawStart[j] as number) < p) j++;
    out[p] = j;
  }
  return out;
}

/** Length of the k-grams that seed the alignment. Long enough to be unique in a document. */
export const ANCHOR_LENGTH = 12;
const BASE = 0x01000193;
let POW = 1;
for (let t = 0; t < ANCHOR_LENGTH - 1; t++) POW = Math.imul(POW, BASE);

function hashAt(s: string, i: number): number {
  let h = 0;
  for (let t = 0; t < ANCHOR_LENGTH; t++) h = (Math.imul(h, BASE) + s.charCodeAt(i + t)) | 0;
  return h;
}

/** The original's unique k-grams: hash -> position, or -1 when the hash occurs more than once. */
export type AnchorIndex = ReadonlyMap<number, number>;

export function buildAnchorIndex(o: string): AnchorIndex {
  const index = new Map<number, number>();
  if (o.length < ANCHOR_LENGTH) return index;
  let h = hashAt(o, 0);
  for (let i = 0; ; i++) {
    index.set(h, index.has(h) ? -1 : i);
    if (i + ANCHOR_LENGTH >= o.length) break;
    h = (Math.imul(h - Math.imul(o.charCodeAt(i), POW), BASE) + o.charCodeAt(i + ANCHOR_LENGTH)) | 0;
  }
  return index;
}

/** Gaps between two exact matches that are at most this long on both sides are aligned by LCS. */
const MAX_GAP = 64;

interface Segment {
  /** Start in the original's skeleton. */
  o: number;
  /** Start in the leak's skeleton. */
  l: number;
  len: number;
}

/**
 * Aligns the leak's skeleton `l` to the original's skeleton `o` (indexed by `index`).
 * Returns, for every position of `o`, the aligned position in `l` or -1. A position is aligned
 * only to an equal character.
 *
 * 1. Cores: runs of unique k-grams of `o` found in `l` on one diagonal (exact, trustworthy).
 * 2. Each core is extended left and right while the characters agree, but not into another core.
 * 3. Where the extensions of two neighbouring cores on different diagonals overlap, the overlap
 *    matches the original in two places (typically where two excerpts were joined, "The " at the
 *    start of one paragraph and of another): it is left unaligned, in both.
 * 4. Small gaps between two aligned stretches are aligned by a longest common subsequence.
 * Where the leak holds a passage of the original twice, the first occurrence (in leak order) wins.
 */
export function alignSkeletons(o: string, index: AnchorIndex, l: string): Int32Array {
  const nO = o.length;
  const nL = l.length;
  const K = ANCHOR_LENGTH;
  // 1. Cores.
  const cores: Segment[] = [];
  if (nL >= K) {
    let h = hashAt(l, 0);
    for (let j = 0; ; j++) {
      const i = index.get(h);
      if (i !== undefined && i >= 0 && l.startsWith(o.slice(i, i + K), j)) {
        const last = cores[cores.length - 1];
        if (last && last.o - last.l === i - j && j <= last.l + last.len) last.len = Math.max(last.len, j + K - last.l);
        else if (last && last.o - last.l === i - j && l.slice(last.l + last.len, j) === o.slice(last.o + last.len, i))
          last.len = j + K - last.l;
        else if (!last || j >= last.l + last.len) cores.push({ o: i, l: j, len: K });
        // else: a k-gram overlapping a core on another diagonal; later ones will start their own core.
      }
      if (j + K >= nL) break;
      h = (Math.imul(h - Math.imul(l.charCodeAt(j), POW), BASE) + l.charCodeAt(j + K)) | 0;
    }
  }
  // 2. Extensions, bounded by the neighbouring cores.
  const segs: Segment[] = cores.map((c, k) => {
    const lo = k > 0 ? (cores[k - 1] as Segment).l + (cores[k - 1] as Segment).len : 0;
    const hi = k + 1 < cores.length ? (cores[k + 1] as Segment).l : nL;
    let a = c.o;
    let b = c.l;
    while (b > lo && a > 0 && o.charCodeAt(a - 1) === l.charCodeAt(b - 1)) {
      a--;
      b--;
    }
    let end = c.l + c.len;
    while (end < hi && c.o + (end - c.l) < nO && o.charCodeAt(c.o + (end - c.l)) === l.charCodeAt(end)) end++;
    return { o: a, l: b, len: end - b };
  });
  // 3. Overlapping extensions on different diagonals: the overlap is ambiguous.
  const contested = new Uint8Array(segs.length + 1);
  for (let k = 0; k + 1 < segs.length; k++) {
    const x = segs[k] as Segment;
    const y = segs[k + 1] as Segment;
    const xEnd = x.l + x.len;
    if (y.l >= xEnd) continue;
    if (x.o - x.l === y.o - y.l) continue; // the same alignment seen from both sides
    const cut0 = y.l;
    const cut1 = xEnd;
    x.len = cut0 - x.l;
    const shift = cut1 - y.l;
    y.o += shift;
    y.l += shift;
    y.len -= shift;
    contested[k + 1] = 1;
  }
  // 4. Record, first occurrence first; then fill small uncontested gaps.
  const f = new Int32Array(nO).fill(-1);
  const g = new Int32Array(nL).fill(-1);
  for (const s of segs) {
    for (let t = 0; t < s.len; t++) {
      if (f[s.o + t] === -1 && g[s.l + t] === -1) {
        f[s.o + t] = s.l + t;
        g[s.l + t] = s.o + t;
      }
    }
  }
  for (let k = 0; k + 1 < segs.length; k++) {
    if (contested[k + 1]) continue;
    const x = segs[k] as Segment;
    const y = segs[k + 1] as Segment;
    const o0 = x.o + x.len;
    const l0 = x.l + x.len;
    const gapO = y.o - o0;
    const gapL = y.l - l0;
    if (gapO > 0 && gapL > 0 && gapO <= MAX_GAP && gapL <= MAX_GAP) fillGap(o, l, o0, y.o, l0, y.l, f, g);
  }
  return f;
}

/** Aligns o[o0, o1) with l[l0, l1) by a longest common subsequence and records the pairs. */
function fillGap(o: string, l: string, o0: number, o1: number, l0: number, l1: number, f: Int32Array, g: Int32Array): void {
  const m = o1 - o0;
  const n = l1 - l0;
  const w = n + 1;
  const dp = new Uint8Array((m + 1) * w);
  for (let a = m - 1; a >= 0; a--) {
    for (let b = n - 1; b >= 0; b--) {
      dp[a * w + b] =
        o.charCodeAt(o0 + a) === l.charCodeAt(l0 + b)
          ? (dp[(a + 1) * w + b + 1] as number) + 1
          : Math.max(dp[(a + 1) * w + b] as number, dp[a * w + b + 1] as number);
    }
  }
  let a = 0;
  let b = 0;
  while (a < m && b < n) {
    if (o.charCodeAt(o0 + a) === l.charCodeAt(l0 + b) && dp[a * w + b] === (dp[(a + 1) * w + b + 1] as number) + 1) {
      if (f[o0 + a] === -1 && g[l0 + b] === -1) {
        f[o0 + a] = l0 + b;
        g[l0 + b] = o0 + a;
      }
      a++;
      b++;
    } else if ((dp[(a + 1) * w + b] as number) >= (dp[a * w + b + 1] as number)) a++;
    else b++;
  }
}
