/**
 * Shared pieces of the text marking channels (spec/marks.md): the edit model, the reservations
 * that keep two channels off the same characters, and the parts of a text that no channel may
 * touch (Markdown code, HTML, link targets, URLs, e-mail addresses, identifiers and reference
 * numbers).
 */

export type ChannelId = 'kashida' | 'arabic-letterforms' | 'latin-homoglyphs' | 'punctuation-variants' | 'zero-width' | 'wording';

/** All channels, in planning order (a channel planned earlier wins a contested character). */
export const CHANNEL_ORDER: readonly ChannelId[] = [
  'wording',
  'punctuation-variants',
  'arabic-letterforms',
  'kashida',
  'latin-homoglyphs',
  'zero-width',
];

/**
 * One change to the original text. `insert`: `ins` (one invisible character) goes into the gap
 * before `original[at]`. `subst`: `original[at, at + del)` becomes `ins`, character for
 * character, and both have the same skeleton (a look-alike). `text`: `original[at, at + del)`
 * becomes `ins`, a visible change (wording).
 */
export interface Edit {
  readonly at: number;
  readonly del: number;
  readonly ins: string;
  readonly kind: 'insert' | 'subst' | 'text';
}

/**
 * A marking point before it gets its index. Tri-state points (`e0` set) apply `e0` for symbol 0
 * and `e1` for symbol 1, and the unmarked original shows neither. Binary points (`e0` null,
 * wording templates only) show the original for symbol 0 and apply `e1` for symbol 1.
 */
export interface Site {
  readonly channel: ChannelId;
  readonly e0: Edit | null;
  readonly e1: Edit;
  /** Wording templates only: option B. */
  readonly alt?: string;
}

export const insertEdit = (at: number, ins: string): Edit => ({ at, del: 0, ins, kind: 'insert' });
export const substEdit = (at: number, ins: string): Edit => ({ at, del: ins.length, ins, kind: 'subst' });
export const textEdit = (at: number, del: number, ins: string): Edit => ({ at, del, ins, kind: 'text' });

/** The span a point covers in the original: its edits, plus the characters around an insertion. */
export function siteSpan(site: Site): { start: number; end: number } {
  let start = Number.POSITIVE_INFINITY;
  let end = 0;
  for (const e of site.e0 ? [site.e0, site.e1] : [site.e1]) {
    const s = e.kind === 'insert' ? e.at - 1 : e.at;
    const t = e.kind === 'insert' ? e.at + 1 : e.at + e.del;
    if (s < start) start = s;
    if (t > end) end = t;
  }
  return { start, end };
}

/**
 * Which characters and gaps are taken. Gap g is the position between original[g - 1] and
 * original[g]. An insertion takes its gap; a substitution its characters; a wording change its
 * characters, every gap inside and at its ends, and one character of margin on each side, so
 * that the text around it reads the same in every copy.
 */
export class Reservations {
  private readonly chars: Uint8Array;
  private readonly gaps: Uint8Array;
  /**
   * @param accept decides whether an edit may be used at all (a reader must be able to find it).
   * It is asked before anything is taken, so an edit that is refused never blocks another one.
   */
  constructor(
    readonly length: number,
    private readonly accept: (e: Edit) => boolean = () => true,
  ) {
    this.chars = new Uint8Array(length);
    this.gaps = new Uint8Array(length + 1);
  }

  /** Takes [a, b) and the gaps a..b inclusive, unconditionally. */
  reserveRange(a: number, b: number): void {
    this.chars.fill(1, Math.max(0, a), Math.min(this.length, b));
    this.gaps.fill(1, Math.max(0, a), Math.min(this.length, b) + 1);
  }

  charFree(i: number): boolean {
    return i >= 0 && i < this.length && this.chars[i] === 0;
  }

  gapFree(g: number): boolean {
    return g >= 0 && g <= this.length && this.gaps[g] === 0;
  }

  /** Takes every cell of every edit if all are free (also of each other); else takes nothing. */
  claim(edits: readonly Edit[], force = false): boolean {
    if (!force && !edits.every(this.accept)) return false;
    const taken: Array<[Uint8Array, number]> = [];
    const take = (arr: Uint8Array, i: number): boolean => {
      if (i < 0 || i >= arr.length) return force;
      if (arr[i] !== 0 && !force) return false;
      if (arr[i] === 0) {
        arr[i] = 1;
        taken.push([arr, i]);
      }
      return true;
    };
    for (const e of edits) {
      let ok = true;
      if (e.kind === 'insert') ok = take(this.gaps, e.at);
      else if (e.kind === 'subst') for (let i = e.at; ok && i < e.at + e.del; i++) ok = take(this.chars, i);
      else {
        for (let i = e.at - 1; ok && i <= e.at + e.del; i++) if (i >= 0 && i < this.length) ok = take(this.chars, i);
        for (let gap = e.at; ok && gap <= e.at + e.del; gap++) ok = take(this.gaps, gap);
      }
      if (!ok) {
        for (const [arr, i] of taken) arr[i] = 0;
        return false;
      }
    }
    return true;
  }
}

/** Characters a token may contain and still be prose (no digits, paths, addresses, markup). */
const NOT_PROSE = /[0-9\u0660-\u0669\u06f0-\u06f9/\\@_#=<>{}[\]|`~^+%&$\p{Cf}]|[\p{L}\p{N}]\.[\p{L}\p{N}]/u;
const WS = /\s/u;

/**
 * What the channels need to know about the original: which characters are excluded from marking
 * (Markdown code and the like) and which belong to a prose token (a whitespace-delimited token
 * that is not a number, reference, path, address or identifier; only those are marked, so that a
 * marked copy never breaks a link, a reference number or anything a machine reads).
 */
export interface TextInfo {
  readonly text: string;
  readonly excluded: Uint8Array;
  readonly prose: Uint8Array;
}

export function analyseText(text: string): TextInfo {
  const n = text.length;
  const excluded = new Uint8Array(n);
  for (const [a, b] of markdownExclusions(text)) excluded.fill(1, a, b);
  const prose = new Uint8Array(n);
  let i = 0;
  while (i < n) {
    while (i < n && WS.test(text[i] as string)) i++;
    const s = i;
    while (i < n && !WS.test(text[i] as string)) i++;
    if (i > s && !NOT_PROSE.test(text.slice(s, i))) prose.fill(1, s, i);
  }
  return { text, excluded, prose };
}

/**
 * Ranges never marked: fenced and indented code blocks, inline code spans, HTML comments and
 * tags, autolinks, link destinations, reference-style link definitions, bare URLs and e-mail
 * addresses. Applied to every text (plain text loses nothing it should keep by it).
 */
export function markdownExclusions(t: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  // Line-based constructs.
  let fence: { ch: string; len: number; start: number } | null = null;
  let prevBlank = true;
  let inIndented = false;
  let start = 0;
  while (start <= t.length) {
    let end = t.indexOf('\n', start);
    if (end < 0) end = t.length;
    const line = t.slice(start, end);
    const blank = line.trim() === '';
    if (fence) {
      const close = /^ {0,3}(`{3,}|~{3,})\s*$/.exec(line);
      if (close && close[1]?.[0] === fence.ch && (close[1]?.length ?? 0) >= fence.len) {
        out.push([fence.start, end]);
        fence = null;
      }
    } else {
      const open = /^ {0,3}(`{3,}|~{3,})/.exec(line);
      if (open?.[1]) fence = { ch: open[1][0] as string, len: open[1].length, start };
      else {
        if (!blank && /^( {4}|\t)/.test(line) && (prevBlank || inIndented)) {
          out.push([start, end]);
          inIndented = true;
        } else if (!blank) inIndented = false;
        if (/^ {0,3}\[[^\]\n]+\]:\s*\S/.test(line)) out.push([start, end]);
      }
    }
    prevBlank = blank;
    start = end + 1;
  }
  if (fence) out.push([fence.start, t.length]);
  // Inline constructs.
  // Every repetition is bounded, so that no input makes these quadratic.
  const inline: RegExp[] = [
    /(?<!`)(`{1,16})(?!`)[\s\S]{0,4000}?[^`]\1(?!`)/g, // code span
    /<!--[\s\S]{0,20000}?-->/g, // HTML comment
    /<\/?[A-Za-z][^<>\n]{0,2000}>/g, // HTML tag
    /<[A-Za-z][A-Za-z0-9+.-]{0,31}:[^<>\s]{0,4000}>/g, // autolink
    /\]\([^)\n]{0,4000}\)/g, // link destination
    /\b(?:[A-Za-z][A-Za-z0-9+.-]{0,31}:\/\/|www\.|mailto:)[^\s<>]*/g, // bare URL
    /[^\s<>@()]{1,256}@[^\s<>@()]{1,256}/g, // e-mail address
  ];
  for (const re of inline) {
    for (const m of t.matchAll(re)) {
      if (re.source.startsWith('(?<!`)') && /\n[ \t]*\n/.test(m[0])) continue; // a code span never spans a blank line
      out.push([m.index, m.index + m[0].length]);
    }
  }
  return out;
}

/** Pairs consecutive candidates into tri-state sites, as long as both can be claimed. */
export function pairCandidates(channel: ChannelId, candidates: readonly Edit[], res: Reservations, maxDistance: number): Site[] {
  const sites: Site[] = [];
  let pending: Edit | null = null;
  for (const e of candidates) {
    if (pending && e.at - pending.at <= maxDistance && res.claim([pending, e])) {
      sites.push({ channel, e0: pending, e1: e });
      pending = null;
    } else pending = e;
  }
  return sites;
}
