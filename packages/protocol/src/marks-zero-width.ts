/**
 * The zero-width channel (spec/marks.md, "zero-width").
 *
 * A ZERO WIDTH SPACE (U+200B) goes right before (symbol 0) or right after (symbol 1) a space
 * between two prose words. Next to a space it changes neither shaping (spaces do not join) nor line
 * breaking (UAX #14: a break after the space is allowed with or without it), and word search still
 * finds every word. It is the most fragile channel: stripped by most PDF copy paths, by many
 * sanitisers and trivially by hand, which then reads as erased.
 *
 * Not used: ZERO WIDTH JOINER (changes Arabic letter shapes), ZWNJ between letters that would
 * otherwise join (breaks the join), WORD JOINER after a space (forbids the line break there), and
 * any zero-width character inside a word (breaks search and, for ZWSP, allows a break mid-word).
 */
import { insertEdit, type Reservations, type Site, type TextInfo } from './marks-core.js';

export const ZWSP = '\u200b';

const WS = /\s/u;
const DROPPED = /[\p{M}\p{Cf}\u0640]/u;

export function zeroWidthSites(info: TextInfo, res: Reservations): Site[] {
  const t = info.text;
  const sites: Site[] = [];
  for (let i = 1; i + 1 < t.length; i++) {
    if (t[i] !== ' ') continue;
    const before = t[i - 1] as string;
    const after = t[i + 1] as string;
    if (WS.test(before) || WS.test(after) || DROPPED.test(after) || /[\p{Cf}\u0640]/u.test(before)) continue;
    if (!info.prose[i - 1] || !info.prose[i + 1] || info.excluded[i] || info.excluded[i - 1] || info.excluded[i + 1]) continue;
    const e0 = insertEdit(i, ZWSP);
    const e1 = insertEdit(i + 1, ZWSP);
    if (res.claim([e0, e1])) sites.push({ channel: 'zero-width', e0, e1 });
  }
  return sites;
}
