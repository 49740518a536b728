/**
 * The Latin-script look-alike channels (spec/marks.md, "latin-homoglyphs" and
 * "punctuation-variants").
 *
 * Homoglyphs: a Latin letter is replaced by the Cyrillic letter drawn identically in common fonts.
 * Each point is a pair of candidate letters in one word; the first replaced is symbol 0, the second
 * symbol 1, and a copy whose look-alikes were folded back reads as erased. Density: at most one
 * point (so exactly one replaced letter) per word of four letters or more that holds two
 * candidates; see spec/marks.md for why and what a spell checker sees.
 *
 * Punctuation: the straight apostrophe (U+0027) and the typographic one (U+2019) inside or at the
 * end of a word, and the hyphen-minus (U+002D) and the Unicode hyphen (U+2010) between two letters.
 * Consecutive occurrences are paired into tri-state points.
 */

import { isMarkAt } from './marks-arabic.js';
import { type Edit, pairCandidates, type Reservations, type Site, substEdit, type TextInfo } from './marks-core.js';

/** Latin letter -> Cyrillic look-alike. Only pairs that are drawn identically in common fonts. */
export const HOMOGLYPHS: ReadonlyMap<string, string> = new Map([
  ['a', '\u0430'],
  ['c', '\u0441'],
  ['e', '\u0435'],
  ['i', '\u0456'],
  ['j', '\u0458'],
  ['o', '\u043e'],
  ['p', '\u0440'],
  ['s', '\u0455'],
  ['x', '\u0445'],
  ['y', '\u0443'],
  ['A', '\u0410'],
  ['B', '\u0412'],
  ['C', '\u0421'],
  ['E', '\u0415'],
  ['H', '\u041d'],
  ['I', '\u0406'],
  ['J', '\u0408'],
  ['M', '\u041c'],
  ['O', '\u041e'],
  ['P', '\u0420'],
  ['S', '\u0405'],
  ['T', '\u0422'],
  ['X', '\u0425'],
]);

/** Words shorter than this are never marked (short words are read at a glance, and often typed). */
export const HOMOGLYPH_MIN_WORD = 4;

const isAsciiLetter = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
const LETTER = /[\p{L}\p{M}]/u;
const isLetterAt = (t: string, i: number): boolean => i >= 0 && i < t.length && LETTER.test(t[i] as string);

/**
 * Homoglyph points: in every word (a maximal run of letters) made only of ASCII letters, at least
 * {@link HOMOGLYPH_MIN_WORD} long, in a prose token, the first two candidate letters.
 */
export function homoglyphSites(info: TextInfo, res: Reservations): Site[] {
  const t = info.text;
  const n = t.length;
  const sites: Site[] = [];
  let i = 0;
  while (i < n) {
    if (!isLetterAt(t, i)) {
      i++;
      continue;
    }
    const s = i;
    let ascii = true;
    while (i < n && isLetterAt(t, i)) {
      if (!isAsciiLetter(t.charCodeAt(i))) ascii = false;
      i++;
    }
    if (!ascii || i - s < HOMOGLYPH_MIN_WORD || !info.prose[s] || info.excluded[s]) continue;
    const picks: Edit[] = [];
    for (let k = s; k < i && picks.length < 2; k++) {
      const h = HOMOGLYPHS.get(t[k] as string);
      if (h !== undefined && !info.excluded[k] && res.charFree(k)) picks.push(substEdit(k, h));
    }
    const [e0, e1] = picks;
    if (e0 && e1 && res.claim([e0, e1])) sites.push({ channel: 'latin-homoglyphs', e0, e1 });
  }
  return sites;
}

/** Occurrences further apart than this are not paired. */
const PUNCTUATION_MAX_DISTANCE = 2000;

/** Apostrophe and hyphen candidates, paired in order. */
export function punctuationSites(info: TextInfo, res: Reservations): Site[] {
  const t = info.text;
  const candidates: Edit[] = [];
  for (let i = 1; i < t.length; i++) {
    const c = t[i] as string;
    if (!info.prose[i] || info.excluded[i] || !res.charFree(i)) continue;
    const before = t.charCodeAt(i - 1);
    const after = i + 1 < t.length ? t.charCodeAt(i + 1) : 0x20;
    if (c === "'" || c === '\u2019') {
      // Inside a word (Ministry's) or after a plural s (Farmers'), never opening a quotation.
      const inside = isAsciiLetter(before) && isAsciiLetter(after);
      const plural = (before === 0x73 || before === 0x53) && !isLetterAt(t, i + 1) && !/[0-9]/.test(String.fromCharCode(after));
      if ((inside || plural) && !isMarkAt(t, i + 1)) candidates.push(substEdit(i, c === "'" ? '\u2019' : "'"));
    } else if ((c === '-' || c === '\u2010') && isAsciiLetter(before) && isAsciiLetter(after)) {
      candidates.push(substEdit(i, c === '-' ? '\u2010' : '-'));
    }
  }
  return pairCandidates('punctuation-variants', candidates, res, PUNCTUATION_MAX_DISTANCE);
}
