/**
 * Leak simulations (spec/marks.md, "Attack simulations"): each transformation does what its
 * model says, is deterministic given its random source, and the collusion attacks keep the marking
 * assumption (a point reads a symbol some colluder had there, or erased), with majority voting
 * exactly per point.
 */
import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  collapseWhitespace,
  editWords,
  excerpt,
  excerpts,
  interleave,
  majority,
  nfc,
  nfkc,
  pdfCopy,
  randomChoice,
  retype,
  stripKashida,
  stripZeroWidth,
} from '../src/attacks.js';
import { applyMarks, type MarkPlan, planMarks, readMarks, removeMarks } from '../src/marks.js';
import { deterministicRandomForTesting } from '../src/random.js';

const corpusDir = new URL('./fixtures/corpus/', import.meta.url);
const corpus: Array<[string, string]> = readdirSync(corpusDir)
  .filter((f) => f.endsWith('.txt'))
  .sort()
  .map((f) => [f, readFileSync(new URL(f, corpusDir), 'utf8')]);
const plans = new Map(corpus.map(([name, text]) => [name, planMarks(text)]));
const seeded = (s: string) => deterministicRandomForTesting(`attacks.test/${s}`);

/** `count` marked copies of a plan, with random symbols, and what each reads. */
function copiesOf(plan: MarkPlan, count: number, seed: string): { copies: string[]; symbols: Uint8Array[] } {
  const r = seeded(seed);
  const symbols = Array.from({ length: count }, () => r(plan.points.length).map((b) => b & 1));
  return { copies: symbols.map((s) => applyMarks(plan, s)), symbols };
}

describe('single-copy transformations', () => {
  const text = corpus.find(([n]) => n.startsWith('mixed'))?.[1] as string;
  const plan = plans.get('mixed-brief.txt') as MarkPlan;
  const marked = applyMarks(plan, new Uint8Array(plan.points.length).fill(1));

  it('excerpt: a whitespace-bounded part of about the requested size, the same for the same seed', () => {
    fc.assert(
      fc.property(fc.double({ min: 0.05, max: 1, noNaN: true }), fc.nat(1000), (fraction, seed) => {
        const e = excerpt(marked, fraction, seeded(`e${seed}`));
        expect(excerpt(marked, fraction, seeded(`e${seed}`))).toBe(e);
        expect(marked).toContain(e);
        expect(e.length).toBeGreaterThanOrEqual(Math.round(marked.length * fraction) * 0.9 - 40);
        const at = marked.indexOf(e);
        expect(at === 0 || /\s/.test(marked[at - 1] as string)).toBe(true);
        expect(at + e.length === marked.length || /\s/.test(marked[at + e.length] as string)).toBe(true);
      }),
      { numRuns: 50 },
    );
  });

  it('excerpts: several non-overlapping parts', () => {
    const e = excerpts(marked, 0.3, 3, seeded('parts'));
    const parts = e.split('\n\n').filter((p) => p.length > 0);
    expect(parts.length).toBeGreaterThanOrEqual(3);
    for (const p of parts) expect(marked).toContain(p);
  });

  it('normalisation, whitespace and stripping do what they say', () => {
    expect(nfc('e\u0301')).toBe('\u00e9');
    expect(nfkc('\ufb01 \u00a0\ufefb')).toBe('fi  \u0644\u0627');
    expect(collapseWhitespace('  a \n\n b\t c  ')).toBe('a b c');
    expect(stripZeroWidth('a\u200bb\u200cc\u200dd\u2060e\ufeff')).toBe('abcde');
    expect(stripKashida('\u0639\u0640\u0644\u0645 \u0647\u0640')).toBe('\u0639\u0644\u0645 \u0647');
    expect(stripZeroWidth(marked)).not.toMatch(/[\u200b-\u200d\u2060\ufeff]/);
    expect(stripKashida(marked)).not.toContain('\u0640');
  });

  it('pdfCopy: drops invisibles, keeps glyphs, maps only joined Farsi yeh, reflows at 80 columns', () => {
    const sample =
      'A\u00adB\u200bC \ufb01le\u00a0x \u0639\u0640\u0644\u0645 \u0628\u06cc\u0646 \u0641\u06cc \u062f\u06a9\u062a\u0648\u0631 \u0430\u2019\u2010';
    expect(pdfCopy(sample)).toBe(
      'ABC file x \u0639\u0640\u0644\u0645 \u0628\u064a\u0646 \u0641\u06cc \u062f\u06a9\u062a\u0648\u0631 \u0430\u2019\u2010',
    );
    const copied = pdfCopy(marked);
    expect(copied).not.toMatch(/[\u200b-\u200d\u2060\ufeff\u00ad\u00a0]/);
    for (const line of copied.split('\n')) if (line.includes(' ')) expect(line.length).toBeLessThanOrEqual(80);
    expect(copied).toContain('\u0640');
    expect(copied).toMatch(/[\u0400-\u04ff]/);
    expect(collapseWhitespace(copied)).toBe(
      collapseWhitespace(stripZeroWidth(marked).replace(/\u06cc(?=[\u0620-\u064a\u0640])/g, '\u064a')).normalize('NFKC'),
    );
  });

  it('retype: what a reader would type back', () => {
    const typed = retype(marked);
    expect(typed).not.toMatch(/[\p{Cf}\u0640\u2019\u2010\u06a9]/u);
    for (const word of typed.match(/[\p{L}]+/gu) ?? []) if (/[A-Za-z]/.test(word)) expect(word).not.toMatch(/[\u0400-\u04ff]/);
    // Only the visible channel (wording) remains: every other mark is typed back as the original.
    const wordingOnly = applyMarks(
      plan,
      Uint8Array.from(plan.points, (p) => (p.channel === 'wording' ? 1 : 0)),
    );
    expect(typed).toBe(retype(wordingOnly));
    expect(retype(applyMarks(plan, new Uint8Array(plan.points.length)))).not.toBe(typed);
  });

  it('editWords: changes about that many words, deterministically', () => {
    const a = editWords(text, 5, seeded('edit'));
    expect(editWords(text, 5, seeded('edit'))).toBe(a);
    const before = text.split(/\s+/);
    const after = a.split(/\s+/);
    expect(after.length).toBe(before.length);
    const changed = before.filter((w, i) => w !== after[i]).length;
    expect(changed).toBeGreaterThanOrEqual(1);
    expect(changed).toBeLessThanOrEqual(5);
  });
});

describe('collusion', () => {
  it('majority: every point reads the majority of the colluders (ties: the first copy)', () => {
    for (const [name, text] of corpus) {
      const plan = plans.get(name) as MarkPlan;
      for (const n of [2, 3, 5]) {
        const { copies, symbols } = copiesOf(plan, n, `${name}/majority/${n}`);
        const merged = majority(copies);
        // The result is itself a marked copy: removing the marks gives the original.
        expect(removeMarks(merged, plan)).toBe(text);
        const read = readMarks(plan, merged);
        plan.points.forEach((_, i) => {
          const ones = symbols.filter((s) => s[i] === 1).length;
          const expected = 2 * ones > n ? 1 : 2 * ones < n ? 0 : (symbols[0] as Uint8Array)[i];
          expect(read[i], `${name} n=${n} point ${i}`).toBe(expected);
        });
      }
    }
  });

  it('interleave and randomChoice keep the marking assumption', () => {
    for (const [name, text] of corpus) {
      const plan = plans.get(name) as MarkPlan;
      const { copies, symbols } = copiesOf(plan, 3, `${name}/mix`);
      const attacks: Array<[string, string]> = [
        ['interleave', interleave(copies, seeded(`${name}/interleave`))],
        ['interleave fine', interleave(copies, seeded(`${name}/interleave2`), { minSegment: 5, maxSegment: 30 })],
        ['randomChoice', randomChoice(copies, seeded(`${name}/random`))],
      ];
      for (const [what, leak] of attacks) {
        // (Not always a marked copy: a switch inside a number can mix Arabic-Indic and Western
        // digits, which then reads as erased.)
        expect(collapseWhitespace(retype(leak)).length).toBeGreaterThan(0.95 * collapseWhitespace(retype(text)).length);
        const read = readMarks(plan, leak);
        let erased = 0;
        plan.points.forEach((_, i) => {
          const seen = symbols.map((s) => s[i] as number);
          if (read[i] === -1) erased++;
          else expect(seen, `${name} ${what} point ${i}`).toContain(read[i]);
          // Where every colluder has the same symbol, the leak shows it (or nothing).
          if (seen.every((v) => v === seen[0]) && read[i] !== -1) expect(read[i]).toBe(seen[0]);
        });
        if (what === 'interleave') expect(erased / plan.points.length).toBeLessThan(0.05);
      }
    }
  });

  it('is deterministic and the identity on one copy', () => {
    const plan = plans.get('en-cable-political.txt') as MarkPlan;
    const { copies } = copiesOf(plan, 3, 'det');
    expect(interleave(copies, seeded('x'))).toBe(interleave(copies, seeded('x')));
    expect(randomChoice(copies, seeded('y'))).toBe(randomChoice(copies, seeded('y')));
    const one = copies.slice(0, 1);
    expect(majority(one)).toBe(one[0]);
    expect(interleave(one, seeded('z'))).toBe(one[0]);
    expect(randomChoice(one, seeded('z'))).toBe(one[0]);
    expect(() => majority([])).toThrow();
  });

  it('handles copies whose wording differs (templates)', () => {
    const source =
      'The Ambassador {{wishes|would like}} to inform the Ministry that the {{meeting|session}} planned for March has been {{postponed|put off}} until further notice, and that the delegation will travel as planned.';
    const plan = planMarks(source);
    const { copies, symbols } = copiesOf(plan, 3, 'templates');
    const read = readMarks(plan, majority(copies));
    plan.points.forEach((_, i) => {
      const ones = symbols.filter((s) => s[i] === 1).length;
      expect(read[i]).toBe(ones >= 2 ? 1 : 0);
    });
  });
});
