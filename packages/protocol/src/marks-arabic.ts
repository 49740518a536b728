/**
 * The Arabic marking channels (spec/marks.md, "kashida" and "arabic-letterforms").
 *
 * Kashida: a tatweel (U+0640) elongates the connection between two joined letters. It changes the
 * look of a word a little (as justified Arabic typesetting does) and never its reading. Each point
 * is a pair of eligible gaps in one word: tatweel in the first gap is symbol 0, in the second
 * symbol 1; a copy whose tatweels were stripped shows neither and reads as erased.
 *
 * Letter forms: in initial and medial position Farsi yeh (U+06CC) and Arabic yeh (U+064A) look the
 * same, and so do keheh (U+06A9) and kaf (U+0643), in common Naskh fonts (their final and isolated
 * forms differ, so those are never touched). Each point is a pair of such letters: the first one
 * swapped is symbol 0, the second symbol 1.
 */
import { type Edit, insertEdit, pairCandidates, type Reservations, type Site, substEdit, type TextInfo } from './marks-core.js';

export const TATWEEL = '\u0640';

/** Joining type of an Arabic letter: 2 dual-joining, 1 right-joining only, 0 neither (or not a letter). */
export function joiningType(c: number): 0 | 1 | 2 {
  if (c < 0x0620 || c > 0x06ff) return 0;
  if (c === 0x0626 || c === 0x0628 || (c >= 0x062a && c <= 0x062e) || (c >= 0x0633 && c <= 0x063f)) return 2;
  if ((c >= 0x0641 && c <= 0x0647) || c === 0x0649 || c === 0x064a || c === 0x066e || c === 0x066f) return 2;
  if ((c >= 0x0678 && c <= 0x0687) || (c >= 0x069a && c <= 0x06bf) || c === 0x06c1 || c === 0x06c2) return 2;
  if (c === 0x06cc || c === 0x06ce || c === 0x06d0 || c === 0x06d1 || (c >= 0x06fa && c <= 0x06fc) || c === 0x06ff) return 2;
  if ((c >= 0x0622 && c <= 0x0625) || c === 0x0627 || c === 0x0629 || (c >= 0x062f && c <= 0x0632) || c === 0x0648) return 1;
  if ((c >= 0x0671 && c <= 0x0673) || (c >= 0x0675 && c <= 0x0677) || (c >= 0x0688 && c <= 0x0699)) return 1;
  if (c === 0x06c0 || (c >= 0x06c3 && c <= 0x06cb) || c === 0x06cd || c === 0x06cf || c === 0x06d2 || c === 0x06d3 || c === 0x06d5)
    return 1;
  if (c === 0x06ee || c === 0x06ef) return 1;
  return 0;
}

const MARK = /\p{M}/u;
/** True for a combining mark (Arabic harakat, tanween, shadda, ...). */
export function isMarkAt(text: string, i: number): boolean {
  if (i < 0 || i >= text.length) return false;
  const c = text.charCodeAt(i);
  if (c < 0x0300) return false;
  return MARK.test(text[i] as string);
}

const isArabicWordChar = (c: number): boolean =>
  joiningType(c) !== 0 || c === 0x0621 || c === 0x0640 || (c >= 0x064b && c <= 0x065f) || c === 0x0670 || (c >= 0x0610 && c <= 0x061a);

const LAM = 0x0644;
const ALEFS = new Set([0x0622, 0x0623, 0x0625, 0x0627, 0x0671, 0x0672, 0x0673]);

/** Calls `visit(start, end)` for every maximal run of Arabic letters, marks and tatweel. */
function arabicWords(text: string, visit: (start: number, end: number) => void): void {
  const n = text.length;
  let i = 0;
  while (i < n) {
    if (!isArabicWordChar(text.charCodeAt(i))) {
      i++;
      continue;
    }
    const s = i;
    while (i < n && isArabicWordChar(text.charCodeAt(i))) i++;
    visit(s, i);
  }
}

/**
 * Kashida points. A gap between text[i] and text[i + 1] is eligible when text[i] is dual-joining,
 * text[i + 1] is a joining letter, neither carries a mark, they are not lam + alef (a mandatory
 * ligature a tatweel would break), the word has no tatweel already (هـ in Hijri dates), and the
 * word is prose (not part of a number, reference or excluded range). One point per word: its last
 * two eligible gaps.
 */
export function kashidaSites(info: TextInfo, res: Reservations): Site[] {
  const t = info.text;
  const sites: Site[] = [];
  arabicWords(t, (s, e) => {
    if (t.slice(s, e).includes(TATWEEL)) return;
    const gaps: number[] = [];
    for (let i = s; i + 1 < e; i++) {
      const a = t.charCodeAt(i);
      const b = t.charCodeAt(i + 1);
      if (joiningType(a) !== 2 || joiningType(b) === 0) continue;
      if (a === LAM && ALEFS.has(b)) continue;
      if (isMarkAt(t, i + 2)) continue;
      if (!info.prose[i] || !info.prose[i + 1] || info.excluded[i] || info.excluded[i + 1]) continue;
      if (!res.gapFree(i + 1)) continue;
      gaps.push(i + 1);
    }
    if (gaps.length < 2) return;
    const e0 = insertEdit(gaps[gaps.length - 2] as number, TATWEEL);
    const e1 = insertEdit(gaps[gaps.length - 1] as number, TATWEEL);
    if (res.claim([e0, e1])) sites.push({ channel: 'kashida', e0, e1 });
  });
  return sites;
}

const LETTERFORM_SWAP: ReadonlyMap<number, string> = new Map([
  [0x064a, '\u06cc'],
  [0x06cc, '\u064a'],
  [0x0643, '\u06a9'],
  [0x06a9, '\u0643'],
]);

/** Letters further apart than this are not paired, so that a short excerpt still holds both. */
const LETTERFORM_MAX_DISTANCE = 120;

/**
 * Letter-form points: a yeh or kaf (either form) that joins the next letter (initial or medial
 * position), carries no mark, and sits in a prose token. Consecutive candidates are paired.
 */
export function letterformSites(info: TextInfo, res: Reservations): Site[] {
  const t = info.text;
  const candidates: Edit[] = [];
  for (let i = 0; i + 1 < t.length; i++) {
    const swap = LETTERFORM_SWAP.get(t.charCodeAt(i));
    if (swap === undefined) continue;
    const next = t.charCodeAt(i + 1);
    if (joiningType(next) === 0 && next !== 0x0640) continue;
    if (!info.prose[i] || info.excluded[i] || !res.charFree(i)) continue;
    candidates.push(substEdit(i, swap));
  }
  return pairCandidates('arabic-letterforms', candidates, res, LETTERFORM_MAX_DISTANCE);
}
