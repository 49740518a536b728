/**
 * Text marking channels for per-recipient fingerprinting (spec/marks.md; DESIGN.md security
 * property 5).
 *
 * `planMarks` finds the marking points of a document, `applyMarks` writes one symbol (0 or 1) per
 * point into a copy, `readMarks` reads the symbols back from a leaked text (an excerpt, a
 * normalised, reflowed or partly stripped copy, or a mix of several copies), and `removeMarks`
 * turns a marked copy back into the original. Which symbol each recipient gets at each point is
 * the collusion-secure code's business (tardos.ts, fingerprint.ts); here a point is only a place
 * that can show either of two variants.
 *
 * Points come in two kinds. Tri-state points (every channel except wording templates) have two
 * variants that both differ from the original: symbol 0 shows the first, symbol 1 the second, and
 * a text showing neither (the original, or a copy whose marks were stripped) reads as erased (-1),
 * never as a bit. Binary points (wording templates only, `point.alt` set) show option A for symbol
 * 0 and option B for symbol 1; the original is option A and so reads as 0.
 */
import {
  type AnchorIndex,
  alignSkeletons,
  buildAnchorIndex,
  foldCodePoint,
  type Skeleton,
  skeleton,
  skeletonIndexAtOrAfter,
} from './align.js';
import { ArgumentError } from './errors.js';
import { kashidaSites, letterformSites } from './marks-arabic.js';
import { analyseText, CHANNEL_ORDER, type ChannelId, type Edit, Reservations, type Site, siteSpan } from './marks-core.js';
import { homoglyphSites, punctuationSites } from './marks-latin.js';
import { orthographicSites, renderTemplates, type Template, templateSites } from './marks-wording.js';
import { zeroWidthSites } from './marks-zero-width.js';

export type { ChannelId } from './marks-core.js';

export interface MarkPoint {
  channel: ChannelId;
  /** Position in the plan's stable order (points sorted by span, then channel). */
  index: number;
  /** UTF-16 span in the original that the point's variants touch (informational). */
  start: number;
  end: number;
  /** Wording templates only: option B, which replaces `original.slice(start, end)` for symbol 1. */
  alt?: string;
}

export interface MarkPlan {
  /** The unmarked text: the template with every `{{A|B}}` rendered as A. */
  original: string;
  points: MarkPoint[];
}

export const CHANNELS: Record<ChannelId, { survives: { nfkc: boolean; pdfCopy: boolean; ocr: boolean }; description: string }> = {
  kashida: {
    survives: { nfkc: true, pdfCopy: true, ocr: false },
    description: 'Arabic tatweel (U+0640) in one of two gaps between joined letters of a word (tri-state).',
  },
  'arabic-letterforms': {
    survives: { nfkc: true, pdfCopy: false, ocr: false },
    description:
      'Farsi yeh U+06CC / Arabic yeh U+064A and keheh U+06A9 / kaf U+0643 in initial or medial position, where they look the same; ' +
      'a pair of letters, one swapped (tri-state). PDF copy keeps keheh but may map yeh back (spec/marks.md).',
  },
  'latin-homoglyphs': {
    survives: { nfkc: true, pdfCopy: true, ocr: false },
    description: 'One of two Latin letters of a word replaced by its Cyrillic look-alike (tri-state). Detectable by spell checkers.',
  },
  'punctuation-variants': {
    survives: { nfkc: true, pdfCopy: true, ocr: false },
    description: "Apostrophe ' / \u2019 and hyphen - / U+2010: one of two consecutive occurrences swapped (tri-state).",
  },
  'zero-width': {
    survives: { nfkc: true, pdfCopy: false, ocr: false },
    description: 'ZERO WIDTH SPACE right before or right after a space between words (tri-state). Fragile: trivially stripped.',
  },
  wording: {
    survives: { nfkc: true, pdfCopy: true, ocr: true },
    description:
      'Author templates {{A|B}} (binary: the original shows A) and orthographic variants (per cent/percent, Mr/Mr., -ise/-ize, serial comma, ' +
      'Arabic/Latin comma, Arabic-Indic/Western digits): one of two occurrences varied (tri-state).',
  },
};

/** Every channel; also the default of {@link planMarks}. */
export const ALL_CHANNELS: readonly ChannelId[] = CHANNEL_ORDER;

// ---------------------------------------------------------------------------------------------
// The compiled form of a plan: every edit, sorted, with what a reader needs to find it again.

interface EditRef {
  readonly edit: Edit;
  readonly point: number;
  /** The symbol that applies this edit. */
  readonly symbol: 0 | 1;
  readonly key: number;
}

type ReadInfo =
  | { readonly kind: 'insert'; readonly jl: number; readonly jr: number }
  | { readonly kind: 'subst'; readonly js: number; readonly je: number; readonly orig: string }
  | {
      readonly kind: 'text';
      readonly js: number;
      readonly je: number;
      readonly orig: string;
      readonly origSk: string;
      readonly varSk: string;
      /** Compare with spaces removed (the variants differ in more than spacing). */
      readonly loose: boolean;
    };

interface Compiled {
  readonly original: string;
  readonly sites: readonly Site[];
  /** All edits, in text order. */
  readonly edits: readonly EditRef[];
  /** Per point: index into `edits` of e0 (or -1) and of e1. */
  readonly e0: Int32Array;
  readonly e1: Int32Array;
  readonly reads: readonly ReadInfo[];
  /** `edits` flattened for applyMarks: offset, end of the replaced text, text, point, symbol. */
  readonly flat: {
    readonly at: Int32Array;
    readonly end: Int32Array;
    readonly ins: readonly string[];
    readonly point: Int32Array;
    readonly symbol: Uint8Array;
  };
  readonly skel: Skeleton;
  /** Built on first use: exact copies and planning never need it. */
  anchors: AnchorIndex | null;
}

const compiledPlans = new WeakMap<MarkPlan, Compiled>();

/** Sort key: an insertion at gap g comes before a substitution of original[g]. */
const editKey = (e: Edit): number => 2 * e.at + (e.kind === 'insert' || (e.kind === 'text' && e.del === 0) ? 0 : 1);

/** How a reader finds the edit in a skeleton, or null if it could not (then the point is not used). */
function readInfo(e: Edit, original: string, sk: Skeleton, at: Int32Array): ReadInfo | null {
  const n = sk.text.length;
  if (e.kind === 'insert') {
    const jr = at[e.at] as number;
    const jl = jr - 1;
    if (jl < 0 || jr >= n) return null;
    // The original must not already show the inserted character there.
    if (original.slice(sk.rawEnd[jl], sk.rawStart[jr]).includes(e.ins)) return null;
    return { kind: 'insert', jl, jr };
  }
  if (e.kind === 'subst') {
    const js = at[e.at] as number;
    for (let k = 0; k < e.del; k++) {
      const j = js + k;
      if (j >= n || sk.rawStart[j] !== e.at + k || sk.rawEnd[j] !== e.at + k + 1) return null;
      if (j + 1 < n && sk.rawStart[j + 1] === e.at + k) return null;
      const u = e.ins.charCodeAt(k);
      if ((u < 0x80 ? String.fromCharCode(u) : foldCodePoint(u)) !== sk.text[j]) return null;
    }
    return { kind: 'subst', js, je: js + e.del, orig: original.slice(e.at, e.at + e.del) };
  }
  const js = at[e.at] as number;
  const je = at[e.at + e.del] as number;
  const origSk = sk.text.slice(js, je);
  const varSk = skeleton(e.ins).text;
  if (origSk === varSk || (js === 0 && je >= n)) return null;
  const loose = origSk.replace(/ /g, '') !== varSk.replace(/ /g, '');
  return { kind: 'text', js, je, orig: original.slice(e.at, e.at + e.del), origSk, varSk, loose };
}

interface Prepared {
  readonly site: Site;
  readonly infos: Array<ReadInfo | null>;
  readonly span: { start: number; end: number };
  readonly key: number;
}

/** Finds the sites of every requested channel and keeps those a reader can find again. */
function findSites(
  original: string,
  channels: ReadonlySet<ChannelId>,
  templates: readonly Template[],
): { prepared: Prepared[]; skel: Skeleton } {
  const skel = skeleton(original);
  const at = skeletonIndexAtOrAfter(skel, original.length);
  const infos = new Map<Edit, ReadInfo | null>();
  const infoOf = (e: Edit): ReadInfo | null => {
    let r = infos.get(e);
    if (r === undefined) {
      r = readInfo(e, original, skel, at);
      infos.set(e, r);
    }
    return r;
  };
  const info = analyseText(original);
  // Only edits a reader can find are ever claimed: a site refused here must not block another one,
  // or a plan re-derived from fewer channels would place its points differently.
  const res = new Reservations(original.length, (e) => infoOf(e) !== null);
  for (let i = 0; i < original.length; ) {
    if (!info.excluded[i]) {
      i++;
      continue;
    }
    const s = i;
    while (i < original.length && info.excluded[i]) i++;
    res.reserveRange(s, i);
  }
  const sites: Site[] = [];
  for (const ch of CHANNEL_ORDER) {
    if (!channels.has(ch)) continue;
    if (ch === 'wording') sites.push(...templateSites(templates, res), ...orthographicSites(info, res));
    else if (ch === 'punctuation-variants') sites.push(...punctuationSites(info, res));
    else if (ch === 'arabic-letterforms') sites.push(...letterformSites(info, res));
    else if (ch === 'kashida') sites.push(...kashidaSites(info, res));
    else if (ch === 'latin-homoglyphs') sites.push(...homoglyphSites(info, res));
    else sites.push(...zeroWidthSites(info, res));
  }
  const prepared: Prepared[] = sites.map((site) => ({
    site,
    // A template the reader cannot find is kept (the author asked for it) and reads as erased.
    infos: [site.e0 ? infoOf(site.e0) : null, infoOf(site.e1)],
    span: siteSpan(site),
    key: editKey(site.e0 ?? site.e1),
  }));
  // Reservations keep two sites off the same gap or character, so the first edit's key breaks every tie.
  prepared.sort((x, y) => x.span.start - y.span.start || x.span.end - y.span.end || x.key - y.key);
  return { prepared, skel };
}

const UNREADABLE: ReadInfo = { kind: 'insert', jl: -1, jr: -1 };

function compile(original: string, prepared: readonly Prepared[], skel: Skeleton): Compiled {
  const edits: EditRef[] = [];
  const reads: ReadInfo[] = [];
  prepared.forEach((p, point) => {
    if (p.site.e0) edits.push({ edit: p.site.e0, point, symbol: 0, key: editKey(p.site.e0) });
    edits.push({ edit: p.site.e1, point, symbol: 1, key: editKey(p.site.e1) });
  });
  // Keep `reads` parallel to `edits` while sorting.
  const order = edits.map((_, i) => i).sort((a, b) => (edits[a] as EditRef).key - (edits[b] as EditRef).key);
  const sorted = order.map((i) => edits[i] as EditRef);
  const e0 = new Int32Array(prepared.length).fill(-1);
  const e1 = new Int32Array(prepared.length);
  sorted.forEach((r, x) => {
    const p = prepared[r.point] as Prepared;
    if (r.symbol === 0 && p.site.e0 !== null) {
      e0[r.point] = x;
      reads.push(p.infos[0] ?? UNREADABLE);
    } else {
      e1[r.point] = x;
      reads.push(p.infos[1] ?? UNREADABLE);
    }
  });
  const flat = {
    at: Int32Array.from(sorted, (r) => r.edit.at),
    end: Int32Array.from(sorted, (r) => r.edit.at + r.edit.del),
    ins: sorted.map((r) => r.edit.ins),
    point: Int32Array.from(sorted, (r) => r.point),
    symbol: Uint8Array.from(sorted, (r) => r.symbol),
  };
  return { original, sites: prepared.map((p) => p.site), edits: sorted, e0, e1, reads, flat, skel, anchors: null };
}

function channelSet(channels: readonly ChannelId[] | undefined): Set<ChannelId> {
  if (channels === undefined) return new Set(ALL_CHANNELS);
  if (!Array.isArray(channels)) throw new ArgumentError('planMarks: channels must be an array of channel ids');
  for (const c of channels) if (!ALL_CHANNELS.includes(c)) throw new ArgumentError(`planMarks: unknown channel ${JSON.stringify(c)}`);
  return new Set(channels);
}

/**
 * Finds the marking points of a document. `source` is plain text or Markdown and may contain
 * wording templates `{{option A|option B}}`; the plan's `original` is `source` with every template
 * rendered as its option A, and every span refers to it. Deterministic: the same source and
 * channels always give the same plan. Default: every channel (zero-width included: its points are
 * tri-state, so where it is stripped it reads as erased and costs nothing but code length).
 * The returned plan is frozen; keep it (it is plain JSON) with the item to trace leaks later.
 */
export function planMarks(source: string, channels?: ChannelId[]): MarkPlan {
  if (typeof source !== 'string') throw new ArgumentError(`planMarks: expected a string, got ${typeof source}`);
  const wanted = channelSet(channels);
  const { original, templates } = renderTemplates(source);
  const { prepared, skel } = findSites(original, wanted, templates);
  const compiled = compile(original, prepared, skel);
  const points = prepared.map((p, index): MarkPoint => {
    const point: MarkPoint = { channel: p.site.channel, index, start: p.span.start, end: p.span.end };
    if (p.site.alt !== undefined) point.alt = p.site.alt;
    return Object.freeze(point);
  });
  const plan: MarkPlan = Object.freeze({ original, points: Object.freeze(points) as MarkPoint[] });
  compiledPlans.set(plan, compiled);
  return plan;
}

/**
 * The compiled plan. A plan that did not come from {@link planMarks} in this process (one read
 * back from storage) is re-derived from its original and checked point by point; a plan from a
 * different version of the algorithm, or edited, is refused. A plan may hold a subset of the
 * points planMarks gave (for example, only some channels).
 */
function compiledOf(plan: MarkPlan, op: string): Compiled {
  const cached = compiledPlans.get(plan);
  if (cached) return cached;
  if (typeof plan !== 'object' || plan === null || typeof plan.original !== 'string' || !Array.isArray(plan.points)) {
    throw new ArgumentError(`${op}: not a mark plan`);
  }
  const original = plan.original;
  const channels = new Set<ChannelId>();
  const templates: Template[] = [];
  for (const p of plan.points) {
    if (typeof p !== 'object' || p === null || !ALL_CHANNELS.includes(p.channel)) throw new ArgumentError(`${op}: bad point in plan`);
    if (!Number.isSafeInteger(p.start) || !Number.isSafeInteger(p.end) || p.start < -1 || p.end > original.length + 1 || p.start > p.end) {
      throw new ArgumentError(`${op}: bad point span in plan`);
    }
    channels.add(p.channel);
    if (p.alt !== undefined) {
      if (p.channel !== 'wording' || typeof p.alt !== 'string') throw new ArgumentError(`${op}: bad template point in plan`);
      templates.push({ start: p.start, a: original.slice(p.start, p.end), b: p.alt });
    }
  }
  templates.sort((x, y) => x.start - y.start);
  // The plan was made either with exactly the channels it has points on, or (a subset of a full
  // plan) with all of them; try both.
  let failure = '';
  for (const set of [channels, new Set(ALL_CHANNELS)]) {
    const { prepared, skel } = findSites(original, set, templates);
    const byKey = new Map<string, Prepared>();
    for (const p of prepared) byKey.set(`${p.site.channel}:${p.span.start}:${p.span.end}:${p.site.alt ?? ''}`, p);
    const mine: Prepared[] = [];
    for (const p of plan.points) {
      const found = byKey.get(`${p.channel}:${p.start}:${p.end}:${p.alt ?? ''}`);
      if (!found) {
        failure = `point ${p.index} on ${p.channel} at ${p.start}`;
        break;
      }
      mine.push(found);
    }
    if (mine.length < plan.points.length) continue;
    if (new Set(mine).size !== mine.length) throw new ArgumentError(`${op}: the plan lists a point twice`);
    const compiled = compile(original, mine, skel);
    compiledPlans.set(plan, compiled);
    return compiled;
  }
  throw new ArgumentError(`${op}: the plan does not match its original (${failure})`);
}

// ---------------------------------------------------------------------------------------------
// Applying.

/** The copy of the original that carries `symbols[i]` (0 or 1) at point i. */
export function applyMarks(plan: MarkPlan, symbols: Uint8Array): string {
  const c = compiledOf(plan, 'applyMarks');
  if (!(symbols instanceof Uint8Array)) throw new ArgumentError('applyMarks: symbols must be a Uint8Array');
  if (symbols.length !== c.sites.length) {
    throw new ArgumentError(`applyMarks: expected ${c.sites.length} symbols (one per point), got ${symbols.length}`);
  }
  for (let i = 0; i < symbols.length; i++) {
    if ((symbols[i] as number) > 1) throw new ArgumentError(`applyMarks: symbol ${i} is ${symbols[i]}, expected 0 or 1`);
  }
  const o = c.original;
  const { at, end, ins, point, symbol } = c.flat;
  const parts: string[] = [];
  let cursor = 0;
  for (let x = 0; x < at.length; x++) {
    if (symbols[point[x] as number] !== symbol[x]) continue;
    parts.push(o.slice(cursor, at[x]), ins[x] as string);
    cursor = end[x] as number;
  }
  parts.push(o.slice(cursor));
  return parts.join('');
}

// ---------------------------------------------------------------------------------------------
// Reading.

/** Per edit: 1 applied, 0 not applied, -1 cannot tell. */
type EditStates = Int8Array;

/**
 * Parses `text` as an exact marked copy: the original with any subset of the plan's edits
 * applied. Returns the states (all 0 or 1), or null if `text` is anything else.
 */
function parseExactCopy(c: Compiled, text: string): EditStates | null {
  const o = c.original;
  const states = new Int8Array(c.edits.length);
  let p = 0;
  let cur = 0;
  const same = (a: string, from: number, b: string, bFrom: number, len: number): boolean => {
    if (from + len > a.length) return false;
    for (let k = 0; k < len; k++) if (a.charCodeAt(from + k) !== b.charCodeAt(bFrom + k)) return false;
    return true;
  };
  for (let x = 0; x < c.edits.length; x++) {
    const e = (c.edits[x] as EditRef).edit;
    if (!same(text, p, o, cur, e.at - cur)) return null;
    p += e.at - cur;
    cur = e.at;
    if (e.kind === 'insert') {
      if (text.startsWith(e.ins, p)) {
        states[x] = 1;
        p += e.ins.length;
      }
      continue;
    }
    const nextAt = x + 1 < c.edits.length ? (c.edits[x + 1] as EditRef).edit.at : o.length;
    const follow = Math.min(nextAt, e.at + e.del + 16) - (e.at + e.del);
    const fits = (s: string): boolean => text.startsWith(s, p) && same(text, p + s.length, o, e.at + e.del, Math.max(0, follow));
    const asVariant = fits(e.ins);
    const asOriginal = fits(o.slice(e.at, e.at + e.del));
    if (asVariant === asOriginal) return null; // neither, or ambiguous
    states[x] = asVariant ? 1 : 0;
    p += asVariant ? e.ins.length : e.del;
    cur = e.at + e.del;
  }
  if (text.length - p !== o.length - cur || !same(text, p, o, cur, o.length - cur)) return null;
  return states;
}

interface Replacement {
  readonly from: number;
  readonly to: number;
  readonly text: string;
}

const nfkcChar = (ch: string): string => ch.normalize('NFKC');

/** Reads every edit in a text that is not an exact copy, through the alignment. */
function readAligned(c: Compiled, leak: string, revert?: Replacement[]): EditStates {
  const L = skeleton(leak);
  c.anchors ??= buildAnchorIndex(c.skel.text);
  const f = alignSkeletons(c.skel.text, c.anchors, L.text);
  const O = c.skel.text;
  const nO = O.length;
  const states = new Int8Array(c.edits.length).fill(-1);
  for (let x = 0; x < c.edits.length; x++) {
    const e = (c.edits[x] as EditRef).edit;
    const r = c.reads[x] as ReadInfo;
    if (r.kind === 'insert') {
      if (r.jl < 0) continue;
      const a = f[r.jl] as number;
      const b = f[r.jr] as number;
      let from: number;
      let to: number;
      // At the edge of an aligned stretch (the leak, or one of its parts, begins or ends in this
      // gap) the raw text up to the neighbouring skeleton character is searched; a mark found there
      // is this one, but a missing mark may just have been cut off.
      let edge = true;
      if (a >= 0 && b === a + 1) {
        from = L.rawEnd[a] as number;
        to = L.rawStart[b] as number;
        edge = false;
      } else if (a < 0 && b >= 0) {
        from = b > 0 ? (L.rawEnd[b - 1] as number) : 0;
        to = L.rawStart[b] as number;
      } else if (a >= 0 && b < 0) {
        from = L.rawEnd[a] as number;
        to = a + 1 < L.text.length ? (L.rawStart[a + 1] as number) : leak.length;
      } else continue;
      const pos = leak.slice(from, to).indexOf(e.ins);
      states[x] = pos >= 0 ? 1 : edge ? -1 : 0;
      if (pos >= 0) revert?.push({ from: from + pos, to: from + pos + e.ins.length, text: '' });
      continue;
    }
    if (r.kind === 'subst') {
      const a = f[r.js] as number;
      if (a < 0) continue;
      let aligned = true;
      for (let j = r.js + 1; j < r.je && aligned; j++) aligned = f[j] === a + (j - r.js);
      // Each neighbour is aligned next to it, or not aligned at all (an edge); at least one is aligned.
      const left = r.js > 0 ? (f[r.js - 1] as number) : -1;
      const right = r.je < nO ? (f[r.je] as number) : -1;
      const leftOk = left === a - 1 && left >= 0;
      const rightOk = right === a + (r.je - r.js);
      if (!aligned || (left >= 0 && !leftOk) || (right >= 0 && !rightOk) || !(leftOk || rightOk || nO === r.je - r.js)) continue;
      let variant = 0;
      let orig = 0;
      for (let k = 0; k < r.je - r.js; k++) {
        const raw = L.rawStart[a + k] as number;
        let ch = leak[raw] as string;
        if (ch !== e.ins[k] && ch !== r.orig[k]) ch = nfkcChar(String.fromCodePoint(leak.codePointAt(raw) as number));
        if (ch === e.ins[k]) variant++;
        else if (ch === r.orig[k]) orig++;
      }
      const n = r.je - r.js;
      if (variant === n) {
        states[x] = 1;
        if (revert)
          for (let k = 0; k < n; k++)
            revert.push({ from: L.rawStart[a + k] as number, to: L.rawEnd[a + k] as number, text: r.orig[k] as string });
      } else if (orig === n) states[x] = 0;
      continue;
    }
    // A visible change: compare what the leak holds between the aligned context with both variants.
    const left = r.js > 0 ? (f[r.js - 1] as number) : -1;
    const leftOk = left >= 0 && (r.js < 2 || f[r.js - 2] === left - 1);
    const right = r.je < nO ? (f[r.je] as number) : -1;
    const rightOk = right >= 0 && (r.je + 1 >= nO || f[r.je + 1] === right + 1);
    const eq = (a: string, b: string): boolean => (r.loose ? a.replace(/ /g, '') === b.replace(/ /g, '') : a === b);
    let from = -1;
    let to = -1;
    if (leftOk && rightOk) {
      if (right <= left || right - left > 1024) continue;
      const between = L.text.slice(left + 1, right);
      if (eq(between, r.varSk)) states[x] = 1;
      else if (eq(between, r.origSk)) states[x] = 0;
      from = left + 1;
      to = right;
    } else if (leftOk || rightOk) {
      // Only one side is in the leak (an excerpt boundary): the variant must match right next to it,
      // followed (or preceded) by a few characters of the original.
      const ctx = 3;
      const fits = (v: string): number => {
        if (leftOk) {
          const tail = O.slice(r.je, r.je + ctx);
          return L.text.startsWith(v + tail, left + 1) && L.text.length >= left + 1 + v.length + tail.length ? left + 1 : -1;
        }
        const head = O.slice(Math.max(0, r.js - ctx), r.js);
        const s = right - v.length;
        return s - head.length >= 0 && L.text.startsWith(head + v, s - head.length) ? s : -1;
      };
      const v = fits(r.varSk);
      const o = fits(r.origSk);
      if (v >= 0 === o >= 0) continue;
      states[x] = v >= 0 ? 1 : 0;
      from = v >= 0 ? v : o;
      to = from + (v >= 0 ? r.varSk.length : r.origSk.length);
    } else continue;
    if (states[x] === 1 && revert) {
      if (to > from) revert.push({ from: L.rawStart[from] as number, to: L.rawEnd[to - 1] as number, text: r.orig });
      else
        revert.push({
          from: from > 0 ? (L.rawEnd[from - 1] as number) : 0,
          to: from > 0 ? (L.rawEnd[from - 1] as number) : 0,
          text: r.orig,
        });
    }
  }
  return states;
}

function symbolsFromStates(c: Compiled, states: EditStates): Int8Array {
  const out = new Int8Array(c.sites.length);
  for (let i = 0; i < out.length; i++) {
    const b = states[c.e1[i] as number] as number;
    const x0 = c.e0[i] as number;
    if (x0 < 0) {
      out[i] = b; // binary: 1 variant, 0 original, -1 unknown
      continue;
    }
    const a = states[x0] as number;
    out[i] = a === 1 && b !== 1 ? 0 : b === 1 && a !== 1 ? 1 : -1;
  }
  return out;
}

/**
 * Reads the symbol of every point from a leaked text: 0 or 1, or -1 where the point is not in the
 * leak, could not be aligned, or shows neither variant (erased) or both (a mix of copies). The
 * result is parallel to `plan.points`. The unmarked original reads -1 at tri-state points and 0
 * at wording templates.
 */
export function readMarks(plan: MarkPlan, leaked: string): Int8Array {
  const c = compiledOf(plan, 'readMarks');
  if (typeof leaked !== 'string') throw new ArgumentError(`readMarks: expected a string, got ${typeof leaked}`);
  const exact = parseExactCopy(c, leaked);
  return symbolsFromStates(c, exact ?? readAligned(c, leaked));
}

/**
 * Reverts every mark of `plan` found in `marked`. For a complete marked copy (any symbols) the
 * result is exactly `plan.original`. For anything else (an excerpt, a reflowed copy) each mark
 * that can be found through the alignment is reverted and everything else is left as it is.
 */
export function removeMarks(marked: string, plan: MarkPlan): string {
  const c = compiledOf(plan, 'removeMarks');
  if (typeof marked !== 'string') throw new ArgumentError(`removeMarks: expected a string, got ${typeof marked}`);
  if (parseExactCopy(c, marked)) return c.original;
  const revert: Replacement[] = [];
  readAligned(c, marked, revert);
  revert.sort((x, y) => x.from - y.from || x.to - y.to);
  const parts: string[] = [];
  let cursor = 0;
  for (const r of revert) {
    if (r.from < cursor) continue;
    parts.push(marked.slice(cursor, r.from), r.text);
    cursor = r.to;
  }
  parts.push(marked.slice(cursor));
  return parts.join('');
}
