/**
 * What a leaker can do to a marked text, as functions (spec/marks.md, "Attack simulations"). Used
 * by the tests and by the robustness benchmark; deterministic given their random source.
 *
 * Single-copy transformations: excerpts, Unicode normalisation, whitespace changes, stripping of
 * zero-width characters and tatweel, a simulated copy from a PDF, a simulated retyping (or print
 * and OCR), and a few edited words. Collusion over several marked copies of one document:
 * interleaving segments of each, a per-mark majority vote, and a per-mark random choice.
 */
import { type Skeleton, skeleton } from './align.js';
import { ArgumentError } from './errors.js';
import { joiningType } from './marks-arabic.js';
import { HOMOGLYPHS } from './marks-latin.js';
import type { RandomSource } from './random.js';

/** Uniform integers in [0, n) from a random source, without modulo bias. */
function uniformSource(random: RandomSource): (n: number) => number {
  let buf: Uint8Array = new Uint8Array(0);
  let off = 0;
  const u32 = (): number => {
    if (off + 4 > buf.length) {
      buf = random(1024);
      off = 0;
    }
    const v =
      ((buf[off] as number) * 0x1000000 +
        (((buf[off + 1] as number) << 16) | ((buf[off + 2] as number) << 8) | (buf[off + 3] as number))) >>>
      0;
    off += 4;
    return v;
  };
  return (n) => {
    if (!Number.isSafeInteger(n) || n <= 0 || n > 2 ** 32) throw new ArgumentError(`uniform: bad bound ${n}`);
    const limit = Math.floor(2 ** 32 / n) * n;
    for (;;) {
      const v = u32();
      if (v < limit) return v % n;
    }
  };
}

function checkFraction(fraction: number, op: string): void {
  if (!(fraction > 0 && fraction <= 1)) throw new ArgumentError(`${op}: fraction must be in (0, 1], got ${fraction}`);
}

/**
 * A contiguous part of `text` of about `fraction` of its length, starting at a random place, cut
 * at whitespace so that no word is split.
 */
export function excerpt(text: string, fraction: number, random: RandomSource): string {
  checkFraction(fraction, 'excerpt');
  const len = Math.round(text.length * fraction);
  if (len >= text.length) return text;
  let start = uniformSource(random)(text.length - len + 1);
  while (start > 0 && !/\s/.test(text[start - 1] as string)) start--;
  let end = Math.min(text.length, start + len);
  while (end < text.length && !/\s/.test(text[end] as string)) end++;
  return text.slice(start, end).trim();
}

/**
 * `parts` excerpts of about `fraction / parts` of the text each, one from each of `parts` equal
 * stretches of it (so they never overlap), in random order, joined by blank lines.
 */
export function excerpts(text: string, fraction: number, parts: number, random: RandomSource): string {
  checkFraction(fraction, 'excerpts');
  if (!Number.isSafeInteger(parts) || parts < 1) throw new ArgumentError(`excerpts: parts must be a positive integer, got ${parts}`);
  const out: string[] = [];
  const size = Math.floor(text.length / parts);
  for (let i = 0; i < parts; i++) {
    const stretch = text.slice(i * size, i === parts - 1 ? text.length : (i + 1) * size);
    out.push(excerpt(stretch, Math.min(1, fraction), random));
  }
  const uniform = uniformSource(random);
  for (let i = out.length - 1; i > 0; i--) {
    const j = uniform(i + 1);
    [out[i], out[j]] = [out[j] as string, out[i] as string];
  }
  return out.join('\n\n');
}

export const nfc = (text: string): string => text.normalize('NFC');
export const nfkc = (text: string): string => text.normalize('NFKC');

/** Every run of whitespace (line breaks included) becomes one space; the ends are trimmed. */
export const collapseWhitespace = (text: string): string => text.replace(/\s+/gu, ' ').trim();

const ZERO_WIDTH = /[\u200b-\u200d\u2060\ufeff]/g;
/** Removes ZWSP, ZWNJ, ZWJ, WORD JOINER and BOM. */
export const stripZeroWidth = (text: string): string => text.replace(ZERO_WIDTH, '');
/** Removes every tatweel (U+0640), including those the original had. */
export const stripKashida = (text: string): string => text.replace(/\u0640/g, '');

/** True if text[i] joins the next letter (initial or medial form), looking past combining marks. */
function joinsNext(text: string, i: number): boolean {
  let k = i + 1;
  while (k < text.length && /\p{M}/u.test(text[k] as string)) k++;
  const c = text.charCodeAt(k);
  return k < text.length && (joiningType(c) !== 0 || c === 0x0640);
}

/** Re-wraps paragraphs (separated by blank lines) at `width` columns, one line break per line. */
function reflow(text: string, width: number): string {
  return text
    .split(/\n[ \t]*\n/)
    .map((para) => {
      const words = para.split(/\s+/u).filter((w) => w.length > 0);
      const lines: string[] = [];
      let line = '';
      for (const w of words) {
        if (line && line.length + 1 + w.length > width) {
          lines.push(line);
          line = w;
        } else line = line ? `${line} ${w}` : w;
      }
      if (line) lines.push(line);
      return lines.join('\n');
    })
    .filter((p) => p.length > 0)
    .join('\n');
}

/**
 * A copy from a PDF viewer, as text extraction from a typical PDF of the document gives it:
 * 1. zero-width characters and soft hyphens are gone (they produce no glyph to extract);
 * 2. no-break and other fixed-width spaces are plain spaces;
 * 3. Farsi yeh in initial or medial position comes back as Arabic yeh: the font draws both with one
 *    glyph there, and its ToUnicode map sends that glyph to U+064A. Final and isolated Farsi yeh,
 *    keheh, kaf and Arabic yeh keep their own glyphs and come back unchanged;
 * 4. ligatures and presentation forms are decomposed as NFKC does (the whole text is NFKC);
 * 5. lines are re-wrapped at about 80 columns, a line break where the PDF broke the line, and
 *    paragraphs are separated by a single line break (blank lines are lost).
 * Tatweel, Cyrillic letters, typographic apostrophes, Unicode hyphens and every visible character
 * are kept: they are glyphs, and the ToUnicode map gives them back.
 */
export function pdfCopy(text: string, options: { width?: number } = {}): string {
  const width = options.width ?? 80;
  let t = text.replace(/[\u200b-\u200d\u2060\ufeff\u00ad]/g, '').replace(/[\u00a0\u2000-\u200a\u202f\u205f\u3000]/g, ' ');
  let out = '';
  for (let i = 0; i < t.length; i++) out += t[i] === '\u06cc' && joinsNext(t, i) ? '\u064a' : t[i];
  t = out.normalize('NFKC');
  return reflow(t, width);
}

const CYRILLIC_TO_LATIN: ReadonlyMap<string, string> = new Map([...HOMOGLYPHS].map(([latin, cyrillic]) => [cyrillic, latin]));

/**
 * A careful retyping of what the page shows (or print and OCR): invisible characters and tatweel
 * are lost, look-alike letters come back as the letter they look like (Cyrillic look-alikes in
 * Latin words as Latin, Farsi yeh in initial or medial position as Arabic yeh, keheh as kaf),
 * typographic apostrophes and Unicode hyphens as the keyboard's. What is visibly different is typed
 * as seen: words, digits, commas. Spacing is retyped: one space between words, paragraphs kept.
 */
export function retype(text: string): string {
  let t = text.replace(/[\p{Cf}\u0640]/gu, '');
  t = t.replace(/[\p{L}\p{M}]+/gu, (word) => (/[A-Za-z]/.test(word) ? [...word].map((c) => CYRILLIC_TO_LATIN.get(c) ?? c).join('') : word));
  let out = '';
  for (let i = 0; i < t.length; i++) {
    const c = t[i] as string;
    out += c === '\u06cc' && joinsNext(t, i) ? '\u064a' : c === '\u06a9' ? '\u0643' : c === '\u2019' ? "'" : c === '\u2010' ? '-' : c;
  }
  return out
    .split(/\n[ \t]*\n/)
    .map((p) => p.replace(/\s+/gu, ' ').trim())
    .filter((p) => p.length > 0)
    .join('\n\n')
    .normalize('NFC');
}

/** Replaces `count` random words (three letters or more) by other words of the same text. */
export function editWords(text: string, count: number, random: RandomSource): string {
  const words = [...text.matchAll(/[\p{L}\p{M}\u0640]{3,}/gu)];
  if (words.length < 2 || count <= 0) return text;
  const uniform = uniformSource(random);
  const chosen = new Map<number, string>();
  while (chosen.size < Math.min(count, words.length)) {
    const i = uniform(words.length);
    if (chosen.has(i)) continue;
    let j = uniform(words.length);
    while ((words[j] as RegExpMatchArray)[0] === (words[i] as RegExpMatchArray)[0] && words.length > 1) j = (j + 1) % words.length;
    chosen.set(i, (words[j] as RegExpMatchArray)[0]);
  }
  let out = '';
  let cursor = 0;
  for (const [i, w] of [...chosen].sort((a, b) => a[0] - b[0])) {
    const m = words[i] as RegExpMatchArray;
    out += text.slice(cursor, m.index) + w;
    cursor = (m.index as number) + m[0].length;
  }
  return out + text.slice(cursor);
}

// ---------------------------------------------------------------------------------------------
// Collusion. Several marked copies of one document have the same skeleton except where wording
// differs, so they can be walked in step: each skeleton character is a unit whose *core* is the
// raw character (possibly a look-alike) and whose *extra* is whatever invisible characters follow
// it (tatweel, zero-width); where the skeletons differ (wording), the differing stretch is one
// *region* unit. A collusion attack picks, unit by unit, which copy's core, extra or region to
// keep. Picking core and extra separately makes every mark an independent choice.

type Unit = { readonly cores: string[]; readonly extras: string[] } | { readonly regions: string[] };

const RESYNC_ANCHOR = 8;
const RESYNC_WINDOW = 400;

function walkCopies(copies: readonly string[], visit: (u: Unit) => void): void {
  const n = copies.length;
  const sk: Skeleton[] = copies.map((c) => skeleton(c));
  const len = sk.map((s) => s.text.length);
  const pos = new Array<number>(n).fill(0);
  const rawAt = (i: number, j: number): number =>
    j < (len[i] as number) ? ((sk[i] as Skeleton).rawStart[j] as number) : (copies[i] as string).length;
  visit({ cores: copies.map(() => ''), extras: copies.map((c, i) => c.slice(0, rawAt(i, 0))) });
  // Where the skeletons differ, find where they agree again: an anchor (a few skeleton characters
  // of copy 0, unique in every copy's window) with the least total displacement, then give back
  // the common tail, so that the region is no longer than the difference itself.
  const resync = (): number[] | null => {
    const texts = sk.map((s) => s.text);
    const s0 = texts[0] as string;
    const p0 = pos[0] as number;
    const windows = texts.map((t, i) => t.slice(pos[i] as number, (pos[i] as number) + 2 * RESYNC_WINDOW + RESYNC_ANCHOR));
    let best: number[] | null = null;
    let bestSum = Number.POSITIVE_INFINITY;
    for (let d0 = 0; d0 <= RESYNC_WINDOW && d0 < bestSum && p0 + d0 + RESYNC_ANCHOR <= s0.length; d0++) {
      const anchor = s0.slice(p0 + d0, p0 + d0 + RESYNC_ANCHOR);
      const ds: number[] = [];
      for (const w of windows) {
        const at = w.indexOf(anchor);
        if (at < 0 || w.lastIndexOf(anchor) !== at) break;
        ds.push(at);
      }
      if (ds.length < n) continue;
      const sum = ds.reduce((a, b) => a + b, 0);
      if (sum < bestSum) {
        best = ds;
        bestSum = sum;
      }
    }
    if (!best) return null;
    const ds = best;
    while (ds.every((d) => d > 0)) {
      const c = s0.charCodeAt(p0 + (ds[0] as number) - 1);
      if (!ds.every((d, i) => (texts[i] as string).charCodeAt((pos[i] as number) + d - 1) === c)) break;
      for (let i = 0; i < n; i++) ds[i] = (ds[i] as number) - 1;
    }
    return ds;
  };
  for (;;) {
    const ended = pos.some((p, i) => p >= (len[i] as number));
    if (ended) break;
    const c0 = (sk[0] as Skeleton).text.charCodeAt(pos[0] as number);
    let same = true;
    for (let i = 1; i < n && same; i++) same = (sk[i] as Skeleton).text.charCodeAt(pos[i] as number) === c0;
    if (same) {
      const cores: string[] = [];
      const extras: string[] = [];
      for (let i = 0; i < n; i++) {
        const s = sk[i] as Skeleton;
        const j = pos[i] as number;
        const start = s.rawStart[j] as number;
        const next = rawAt(i, j + 1);
        const coreEnd = Math.max(start, Math.min(s.rawEnd[j] as number, next));
        cores.push((copies[i] as string).slice(start, coreEnd));
        extras.push((copies[i] as string).slice(coreEnd, next));
        pos[i] = j + 1;
      }
      visit({ cores, extras });
      continue;
    }
    const ds = resync() ?? len.map((l, i) => l - (pos[i] as number));
    visit({ regions: copies.map((c, i) => c.slice(rawAt(i, pos[i] as number), rawAt(i, (pos[i] as number) + (ds[i] as number)))) });
    for (let i = 0; i < n; i++) pos[i] = (pos[i] as number) + (ds[i] as number);
  }
  if (pos.some((p, i) => p < (len[i] as number))) visit({ regions: copies.map((c, i) => c.slice(rawAt(i, pos[i] as number))) });
}

function checkCopies(copies: readonly string[], op: string): void {
  if (!Array.isArray(copies) || copies.length === 0 || copies.some((c) => typeof c !== 'string')) {
    throw new ArgumentError(`${op}: expected a non-empty array of strings`);
  }
}

/** The most frequent string; a tie goes to the copy listed first. */
function vote(options: readonly string[]): string {
  const count = new Map<string, number>();
  let best = options[0] as string;
  let bestCount = 0;
  for (const o of options) {
    const c = (count.get(o) ?? 0) + 1;
    count.set(o, c);
    if (c > bestCount) {
      bestCount = c;
      best = o;
    } else if (c === bestCount && options.indexOf(o) < options.indexOf(best)) best = o;
  }
  return best;
}

/**
 * Segments of the copies in turn: a random copy for the first segment, another for the next, and
 * so on, each segment between `minSegment` and `maxSegment` skeleton characters long (default 40
 * to 400). The result reads like one copy of the document.
 */
export function interleave(
  copies: readonly string[],
  random: RandomSource,
  options: { minSegment?: number; maxSegment?: number } = {},
): string {
  checkCopies(copies, 'interleave');
  const min = options.minSegment ?? 40;
  const max = options.maxSegment ?? 400;
  if (!(min >= 1 && max >= min)) throw new ArgumentError('interleave: need 1 <= minSegment <= maxSegment');
  const uniform = uniformSource(random);
  const n = copies.length;
  let cur = uniform(n);
  let budget = min + uniform(max - min + 1);
  const out: string[] = [];
  walkCopies(copies, (u) => {
    if ('regions' in u) {
      out.push(u.regions[cur] as string);
      budget -= Math.max(1, (u.regions[cur] as string).length);
    } else {
      out.push((u.cores[cur] as string) + (u.extras[cur] as string));
      budget -= 1;
    }
    if (budget <= 0 && n > 1) {
      cur = (cur + 1 + uniform(n - 1)) % n;
      budget = min + uniform(max - min + 1);
    }
  });
  return out.join('');
}

/** For every mark, the variant most copies show (a tie goes to the copy listed first). */
export function majority(copies: readonly string[]): string {
  checkCopies(copies, 'majority');
  const out: string[] = [];
  walkCopies(copies, (u) => {
    if ('regions' in u) out.push(vote(u.regions));
    else out.push(vote(u.cores) + vote(u.extras));
  });
  return out.join('');
}

/** For every mark, the variant of a copy chosen at random (independently for every mark). */
export function randomChoice(copies: readonly string[], random: RandomSource): string {
  checkCopies(copies, 'randomChoice');
  const uniform = uniformSource(random);
  const n = copies.length;
  const out: string[] = [];
  walkCopies(copies, (u) => {
    if ('regions' in u) out.push(u.regions[uniform(n)] as string);
    else out.push((u.cores[uniform(n)] as string) + (u.extras[uniform(n)] as string));
  });
  return out.join('');
}
