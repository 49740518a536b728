/**
 * The wording channel (spec/marks.md, "wording"): the only one that survives retyping, printing
 * and OCR, because its marks are visible text.
 *
 * Templates (the classic canary trap): the author writes interchangeable phrasings as
 * `{{option A|option B}}`. The original is the text with every template replaced by its option A;
 * a copy shows option A for symbol 0 and option B for symbol 1 (binary points).
 *
 * Orthographic variants, found automatically, each a spelling the house style allows either way:
 * "per cent"/"percent", "Mr"/"Mr." (Mrs, Ms, Dr) before a name, -ise/-ize for a fixed list of verbs,
 * "toward"/"towards", "afterward"/"afterwards", "e-mail"/"email", "co-operat-"/"cooperat-",
 * "co-ordinat-"/"coordinat-", a serial comma added to a list of four or more single words, and in
 * Arabic lines the Arabic comma or the Latin comma between two words, and Arabic-Indic or Western
 * digits for a whole standalone number. Consecutive occurrences are paired into tri-state points,
 * so that a retyper who normalises the spelling erases a point instead of writing a bit.
 */

import { skeleton } from './align.js';
import { ArgumentError } from './errors.js';
import { joiningType } from './marks-arabic.js';
import {
  type Edit,
  markdownExclusions,
  pairCandidates,
  type Reservations,
  type Site,
  substEdit,
  type TextInfo,
  textEdit,
} from './marks-core.js';

export interface Template {
  /** Offset of option A in the rendered original. */
  readonly start: number;
  readonly a: string;
  readonly b: string;
}

/** Option text: no braces, no bar, no line break. */
const TEMPLATE = /\{\{([^{}|\n]*)\|([^{}|\n]*)\}\}/y;

/**
 * Renders a template source: every `{{A|B}}` outside excluded ranges (code, URLs, HTML, ...)
 * becomes A. Any other `{{` outside excluded ranges is an error, so that a typo never ships the
 * template syntax (and with it the marking) to a recipient.
 */
export function renderTemplates(source: string): { original: string; templates: Template[] } {
  const excluded = markdownExclusions(source).sort((x, y) => x[0] - y[0]);
  const inExcluded = (i: number): boolean => excluded.some(([a, b]) => i >= a && i < b);
  const templates: Template[] = [];
  let out = '';
  let cursor = 0;
  let from = 0;
  for (;;) {
    const i = source.indexOf('{{', from);
    if (i < 0) break;
    if (inExcluded(i)) {
      from = i + 2;
      continue;
    }
    TEMPLATE.lastIndex = i;
    const m = TEMPLATE.exec(source);
    if (!m) throw new ArgumentError(`planMarks: malformed wording template at offset ${i} (expected {{option A|option B}})`);
    const a = m[1] as string;
    const b = m[2] as string;
    if (skeleton(a).text.replace(/ /g, '') === skeleton(b).text.replace(/ /g, '')) {
      throw new ArgumentError(`planMarks: the two options of the wording template at offset ${i} read the same`);
    }
    out += source.slice(cursor, i);
    templates.push({ start: out.length, a, b });
    out += a;
    cursor = i + m[0].length;
    from = cursor;
  }
  out += source.slice(cursor);
  return { original: out, templates };
}

/** Template sites, claimed unconditionally (the author asked for them). */
export function templateSites(templates: readonly Template[], res: Reservations): Site[] {
  return templates.map((tp) => {
    const e1 = textEdit(tp.start, tp.a.length, tp.b);
    res.claim([e1], true);
    return { channel: 'wording', e0: null, e1, alt: tp.b };
  });
}

/** Verbs (stems up to the s/z) whose -ise and -ize spellings are both standard British English. */
const ISE_STEMS = [
  'apologi',
  'authori',
  'capitali',
  'categori',
  'centrali',
  'characteri',
  'civili',
  'computeri',
  'critici',
  'decentrali',
  'digiti',
  'emphasi',
  'energi',
  'familiari',
  'finali',
  'formali',
  'harmoni',
  'hospitali',
  'industriali',
  'initiali',
  'institutionali',
  'internationali',
  'itemi',
  'jeopardi',
  'legitimi',
  'liberali',
  'locali',
  'maximi',
  'memori',
  'militari',
  'minimi',
  'mobili',
  'moderni',
  'nationali',
  'neutrali',
  'normali',
  'optimi',
  'organi',
  'penali',
  'personali',
  'populari',
  'prioriti',
  'privati',
  'publici',
  'radicali',
  'rationali',
  'reali',
  'recogni',
  'regulari',
  'revitali',
  'saniti',
  'scrutini',
  'speciali',
  'stabili',
  'standardi',
  'subsidi',
  'summari',
  'symboli',
  'sympathi',
  'terrori',
  'utili',
  'vandali',
  'visuali',
];
const ISE = new RegExp(`\\b(?:un|re|de|dis|over|under|non-)?(?:${ISE_STEMS.join('|')})([sz])(e|ed|es|ing|ation|ations|er|ers)\\b`, 'giu');

const isArabicLetter = (c: number): boolean => joiningType(c) !== 0 || c === 0x0621;
const ARABIC_DIGIT = /[\u0660-\u0669]/;

/** For each line, whether it has more Arabic letters than Latin ones. */
function arabicLines(t: string): Uint8Array {
  const out = new Uint8Array(t.length);
  let start = 0;
  while (start < t.length) {
    let end = t.indexOf('\n', start);
    if (end < 0) end = t.length;
    let ar = 0;
    let la = 0;
    for (let i = start; i < end; i++) {
      const c = t.charCodeAt(i);
      if (isArabicLetter(c)) ar++;
      else if ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a) la++;
    }
    if (ar > la) out.fill(1, start, end);
    start = end + 1;
  }
  return out;
}

/** Every orthographic occurrence in the text, as the edit that would vary it, in text order. */
export function orthographicCandidates(info: TextInfo, res: Reservations): Edit[] {
  const t = info.text;
  const found: Edit[] = [];
  const ok = (a: number, b: number): boolean => {
    for (let i = Math.max(0, a); i < Math.min(t.length, b); i++) if (info.excluded[i]) return false;
    return true;
  };
  const prose = (i: number): boolean => info.prose[i] === 1;
  const add = (e: Edit, a = e.at, b = e.at + e.del): void => {
    if (ok(a - 1, b + 1)) found.push(e);
  };
  // English.
  for (const m of t.matchAll(/\b([Pp]er)( ?)(cent)\b/g)) {
    const at = m.index + 3;
    if (prose(m.index)) add(m[2] ? textEdit(at, 1, '') : textEdit(at, 0, ' '), m.index, m.index + m[0].length);
  }
  for (const m of t.matchAll(/\b(Mr|Mrs|Ms|Dr)(\.?) (?=\p{Lu}\p{Ll})/gu)) {
    const at = m.index + (m[1] as string).length;
    if (prose(m.index)) add(m[2] ? textEdit(at, 1, '') : textEdit(at, 0, '.'), m.index, m.index + m[0].length);
  }
  for (const m of t.matchAll(ISE)) {
    const at = m.index + m[0].length - (m[2] as string).length - 1;
    const c = t[at] as string;
    const swap = c === 's' ? 'z' : c === 'z' ? 's' : c === 'S' ? 'Z' : 'S';
    if (prose(m.index)) add(textEdit(at, 1, swap), m.index, m.index + m[0].length);
  }
  for (const m of t.matchAll(/\b([Tt]oward|[Aa]fterward)(s?)\b/g)) {
    const at = m.index + (m[1] as string).length;
    if (prose(m.index)) add(m[2] ? textEdit(at, 1, '') : textEdit(at, 0, 's'), m.index, m.index + m[0].length);
  }
  for (const m of t.matchAll(/\b([Ee])(-?)(mail)/g)) {
    const at = m.index + 1;
    if (prose(m.index)) add(m[2] ? textEdit(at, 1, '') : textEdit(at, 0, '-'), m.index, m.index + m[0].length);
  }
  for (const m of t.matchAll(/\b([Cc]o)(-?)(operat|ordinat)/g)) {
    const at = m.index + 2;
    if (prose(m.index)) add(m[2] ? textEdit(at, 1, '') : textEdit(at, 0, '-'), m.index, m.index + m[0].length);
  }
  // A serial comma is only ever added, and only to a list of at least four single words, where it
  // cannot change how the sentence parses.
  for (const m of t.matchAll(/\b(?:\p{L}{1,40}, ){2,12}(\p{L}{1,40}) (and|or) (\p{L}{1,40})\b/gu)) {
    const at = m.index + m[0].length - (m[2] as string).length - (m[3] as string).length - 2;
    if (prose(m.index)) add(textEdit(at, 0, ','), at - 1, at + 1);
  }
  // Arabic: comma between two words, digits of a standalone number, in Arabic lines only.
  const arabic = arabicLines(t);
  for (let i = 1; i + 2 < t.length; i++) {
    const c = t[i] as string;
    if ((c !== '\u060c' && c !== ',') || !arabic[i]) continue;
    if (!isArabicLetter(t.charCodeAt(i - 1)) || t[i + 1] !== ' ' || !isArabicLetter(t.charCodeAt(i + 2))) continue;
    if (res.charFree(i)) add(substEdit(i, c === ',' ? '\u060c' : ','));
  }
  for (const m of t.matchAll(/[0-9]+|[\u0660-\u0669]+/g)) {
    const a = m.index;
    const b = a + m[0].length;
    if (!arabic[a]) continue;
    // The number stands alone: no separators, signs or other digits around it, and no Latin
    // letter or slash anywhere in its token (reference numbers, dates written 2026-2029, 3.2, 1-).
    const prev = t[a - 1] ?? ' ';
    const next = t[b] ?? ' ';
    if (/[0-9\u0660-\u0669.,/:\-\u066b\u066c%+\u060c]/.test(prev) || /[0-9\u0660-\u0669/:\-\u066b\u066c%+]/.test(next)) continue;
    if ((next === '.' || next === ',' || next === '\u060c') && /[0-9\u0660-\u0669]/.test(t[b + 1] ?? '')) continue;
    let s = a;
    while (s > 0 && !/\s/.test(t[s - 1] as string)) s--;
    let e = b;
    while (e < t.length && !/\s/.test(t[e] as string)) e++;
    if (/[A-Za-z/\\@_#]/.test(t.slice(s, e))) continue;
    const arabicDigits = ARABIC_DIGIT.test(m[0]);
    const ins = arabicDigits
      ? m[0].replace(/[\u0660-\u0669]/g, (d) => String.fromCharCode(d.charCodeAt(0) - 0x0660 + 0x30))
      : m[0].replace(/[0-9]/g, (d) => String.fromCharCode(d.charCodeAt(0) - 0x30 + 0x0660));
    let free = true;
    for (let i = a; i < b; i++) if (!res.charFree(i)) free = false;
    if (free) add(substEdit(a, ins));
  }
  found.sort((x, y) => x.at - y.at);
  return found;
}

/** Orthographic occurrences further apart than this are not paired. */
const ORTHOGRAPHIC_MAX_DISTANCE = 4000;

export function orthographicSites(info: TextInfo, res: Reservations): Site[] {
  return pairCandidates('wording', orthographicCandidates(info, res), res, ORTHOGRAPHIC_MAX_DISTANCE);
}
