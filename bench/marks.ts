/**
 * Marking channels (spec/marks.md): how many points each channel finds per KB of UTF-8 on each
 * corpus text, how fast planning, marking and reading are, how each channel fares under each leak
 * simulation, and a marked Arabic and English paragraph for the README.
 *
 *   node --import tsx bench/marks.ts [--no-write]
 *
 * Prints markdown tables; writes bench/MARKS-EXAMPLES.md (the examples and the density table,
 * both deterministic) unless --no-write. Timings are the minimum and median of repeated runs.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as attacks from '../packages/protocol/src/attacks.js';
import {
  ALL_CHANNELS,
  applyMarks,
  type ChannelId,
  type MarkPlan,
  planMarks,
  readMarks,
  removeMarks,
} from '../packages/protocol/src/marks.js';
import { deterministicRandomForTesting, type RandomSource } from '../packages/protocol/src/random.js';
import { markdownTable } from './harness.js';

const write = !process.argv.includes('--no-write');
const corpusDir = new URL('../packages/protocol/test/fixtures/corpus/', import.meta.url);
const corpus: Array<[string, string]> = readdirSync(corpusDir)
  .filter((f) => f.endsWith('.txt'))
  .sort()
  .map((f) => [f, readFileSync(new URL(f, corpusDir), 'utf8')]);
const kb = (s: string) => new TextEncoder().encode(s).length / 1024;
const symbolsFor = (plan: MarkPlan, random: RandomSource) => random(plan.points.length).map((b) => b & 1);
const out: string[] = [];
const say = (s = '') => {
  console.log(s);
  out.push(s);
};

// ---------------------------------------------------------------------------------------------
// 1. Density.

function densityTable(): string {
  const head = ['text', 'KB', ...ALL_CHANNELS, 'all', 'survive PDF copy'];
  const body = corpus.map(([name, text]) => {
    const plan = planMarks(text);
    const size = kb(text);
    const count = (ch: ChannelId) => plan.points.filter((p) => p.channel === ch).length;
    const pdf = plan.points.filter((p) => !['zero-width', 'arabic-letterforms'].includes(p.channel)).length;
    return [
      name,
      size.toFixed(1),
      ...ALL_CHANNELS.map((ch) => (count(ch) / size).toFixed(1)),
      (plan.points.length / size).toFixed(1),
      (pdf / size).toFixed(1),
    ];
  });
  return markdownTable(head, body, 1);
}

// ---------------------------------------------------------------------------------------------
// 2. Timings.

/** Minimum and median of repeated runs, in ms (the minimum is the least disturbed by other load). */
function timed(fn: () => unknown, runs = 15): string {
  for (let i = 0; i < 3; i++) fn();
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const s = performance.now();
    fn();
    xs.push(performance.now() - s);
  }
  xs.sort((a, b) => a - b);
  return `${(xs[0] as number).toFixed(2)} / ${(xs[Math.floor(xs.length / 2)] as number).toFixed(2)}`;
}

function timingTable(): string {
  const random = deterministicRandomForTesting('bench/marks/timing');
  const rows: string[][] = [];
  const en = corpus.find(([n]) => n === 'en-memo-security.txt')?.[1] as string;
  const ar = corpus.find(([n]) => n === 'ar-cable-economic.txt')?.[1] as string;
  for (const [label, text] of [
    ['English', en.slice(0, en.indexOf('\n', 10_000))],
    ['Arabic', ar.slice(0, ar.indexOf('\n', 5_600))],
  ] as const) {
    const plan = planMarks(text);
    const syms = Array.from({ length: 134 }, () => symbolsFor(plan, random));
    const t = timed(() => {
      const p = planMarks(text);
      for (const s of syms) applyMarks(p, s);
    }, 9);
    rows.push([`plan + 134 copies, ${label} ${kb(text).toFixed(1)} KB (${plan.points.length} points)`, t]);
  }
  for (const [label, text] of [
    ['English', en],
    ['Arabic', ar],
  ] as const) {
    const plan = planMarks(text);
    const copy = applyMarks(plan, symbolsFor(plan, random));
    const size = `${label} ${kb(text).toFixed(1)} KB, ${plan.points.length} points`;
    rows.push([`readMarks, complete copy, ${size}`, timed(() => readMarks(plan, copy))]);
    const pdf = attacks.pdfCopy(copy);
    rows.push([`readMarks, PDF copy (aligned), ${size}`, timed(() => readMarks(plan, pdf))]);
    const part = attacks.excerpt(copy, 0.3, random);
    rows.push([`readMarks, 30% excerpt (aligned), ${size}`, timed(() => readMarks(plan, part))]);
    const copies = [0, 1, 2].map(() => applyMarks(plan, symbolsFor(plan, random)));
    rows.push([`majority of 3 copies, ${size}`, timed(() => attacks.majority(copies), 5)]);
  }
  return markdownTable(['operation', 'ms (min / median)'], rows, 1);
}

// ---------------------------------------------------------------------------------------------
// 3. Robustness: per channel, the share of points read correctly / erased / wrong.

function robustnessTable(): string {
  const random = deterministicRandomForTesting('bench/marks/robustness');
  type Attack = (copies: string[]) => string;
  const single =
    (f: (t: string) => string): Attack =>
    (c) =>
      f(c[0] as string);
  const list: Array<[string, Attack]> = [
    ['complete copy', single((t) => t)],
    ['30% excerpt', single((t) => attacks.excerpt(t, 0.3, random))],
    ['3 excerpts, 30%', single((t) => attacks.excerpts(t, 0.3, 3, random))],
    ['NFKC', single(attacks.nfkc)],
    ['whitespace collapsed', single(attacks.collapseWhitespace)],
    ['zero-width stripped', single(attacks.stripZeroWidth)],
    ['kashida stripped', single(attacks.stripKashida)],
    ['PDF copy', single((t) => attacks.pdfCopy(t))],
    ['20 words edited', single((t) => attacks.editWords(t, 20, random))],
    ['retyped / OCR', single(attacks.retype)],
    ['interleave of 3', (c) => attacks.interleave(c, random)],
    ['majority of 3', (c) => attacks.majority(c)],
    ['random choice of 3', (c) => attacks.randomChoice(c, random)],
  ];
  const head = ['leak', ...ALL_CHANNELS];
  const body: string[][] = [];
  const prepared = corpus.map(([, text]) => {
    const plan = planMarks(text);
    const symbols = [0, 1, 2].map(() => symbolsFor(plan, random));
    return { plan, symbols, copies: symbols.map((s) => applyMarks(plan, s)) };
  });
  for (const [label, attack] of list) {
    const ok = new Map<ChannelId, number>();
    const erased = new Map<ChannelId, number>();
    const wrong = new Map<ChannelId, number>();
    const total = new Map<ChannelId, number>();
    const add = (m: Map<ChannelId, number>, ch: ChannelId) => m.set(ch, (m.get(ch) ?? 0) + 1);
    for (const { plan, symbols, copies } of prepared) {
      const collusion = label.includes('of 3');
      const read = readMarks(plan, attack(copies));
      plan.points.forEach((p, i) => {
        add(total, p.channel);
        const seen = (collusion ? symbols : symbols.slice(0, 1)).map((s) => s[i]);
        if (read[i] === -1) add(erased, p.channel);
        // For collusion, "correct" means a symbol one of the colluders had (the marking assumption).
        else if (seen.includes(read[i] as number)) add(ok, p.channel);
        else add(wrong, p.channel);
      });
    }
    const pct = (m: Map<ChannelId, number>, ch: ChannelId) => (100 * (m.get(ch) ?? 0)) / (total.get(ch) ?? 1);
    body.push([
      label,
      ...ALL_CHANNELS.map((ch) => `${pct(ok, ch).toFixed(0)} / ${pct(erased, ch).toFixed(0)} / ${pct(wrong, ch).toFixed(0)}`),
    ]);
  }
  return markdownTable(head, body, 1);
}

// ---------------------------------------------------------------------------------------------
// 4. Examples.

const MARKING = /[\u0640\u200b-\u200d\u2060\u0400-\u04ff\u06cc\u06a9\u2019\u2010]/g;
const escapeMarks = (s: string) => s.replace(MARKING, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

function example(title: string, source: string, seed: string): string {
  const plan = planMarks(source);
  const symbols = symbolsFor(plan, deterministicRandomForTesting(seed));
  const marked = applyMarks(plan, symbols);
  if (removeMarks(marked, plan) !== plan.original) throw new Error('example: removeMarks did not give the original back');
  const counts = ALL_CHANNELS.map((ch) => [ch, plan.points.filter((p) => p.channel === ch).length] as const).filter(([, n]) => n > 0);
  return [
    `### ${title}`,
    '',
    `${plan.points.length} points (${counts.map(([ch, n]) => `${ch} ${n}`).join(', ')}), symbols from the deterministic test source "${seed}".`,
    '',
    source === plan.original ? '' : `Source (with wording templates):\n\n> ${source}\n`,
    'Original:',
    '',
    `> ${plan.original}`,
    '',
    'Marked copy, as a reader sees it:',
    '',
    `> ${marked}`,
    '',
    'The same copy with every marking character escaped (tatweel \\u0640, ZWSP \\u200b, Cyrillic \\u04xx, Farsi yeh \\u06cc, keheh \\u06a9, \\u2019, \\u2010):',
    '',
    '```text',
    escapeMarks(marked),
    '```',
    '',
  ]
    .filter((l, i, a) => !(l === '' && a[i - 1] === ''))
    .join('\n');
}

function paragraph(name: string, startsWith: string): string {
  const text = corpus.find(([n]) => n === name)?.[1] as string;
  const p = text.split(/\n\s*\n/).find((x) => x.startsWith(startsWith));
  if (!p) throw new Error(`no paragraph starting with ${startsWith} in ${name}`);
  return p;
}

// ---------------------------------------------------------------------------------------------

say('## Marking points per KB of UTF-8, per channel\n');
const density = densityTable();
say(density);
say('\n"survive PDF copy": every channel but zero-width and arabic-letterforms (spec/marks.md, PDF copy model).\n');
say('## Timings\n');
say(timingTable());
say('\n## Robustness (percent of points: read correctly / erased / wrong, over the whole corpus)\n');
say(robustnessTable());
say('\nFor collusion rows, "correct" means a symbol one of the three colluders had at that point (the marking assumption).');

const arabic = paragraph('ar-circular-consular.txt', 'تهدي');
const english = paragraph('en-cable-political.txt', "Oskaria's three-party").replace(
  'will most likely survive',
  'will {{most likely|probably}} survive',
);
const examples = [
  '# Marked text examples',
  '',
  'Generated by `node --import tsx bench/marks.ts` from the corpus in packages/protocol/test/fixtures/corpus',
  '(spec/marks.md describes every channel). Each paragraph is planned on its own with every channel.',
  '',
  example('Arabic (consular circular, first paragraph)', arabic, 'marks-example-ar'),
  example('English (political cable, summary, with one wording template)', english, 'marks-example-en'),
  '## Marking points per KB of UTF-8',
  '',
  density,
  '',
].join('\n');
if (write) {
  const path = fileURLToPath(new URL('./MARKS-EXAMPLES.md', import.meta.url));
  writeFileSync(path, examples);
  console.log(`\nwrote ${path}`);
}
