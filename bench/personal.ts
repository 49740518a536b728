/**
 * What per-recipient fingerprinted copies cost in an envelope (spec/fingerprint.md, "Envelope
 * integration and cost"): one 10 KB text sealed for 134 X-Wing devices, once as the shared body
 * and once as 134 personal copies (the shared body empty), on both crypto providers; the bytes
 * uploaded and delivered; and the estimated size of the segment-variant alternative.
 *
 *   node --import tsx bench/personal.ts [--quick]
 */
import { readFileSync } from 'node:fs';
import { fingerprintDocument } from '../packages/protocol/src/fingerprint.js';
import {
  nobleProvider,
  planMarks,
  type SealInput,
  seal,
  sliceEnvelope,
  systemRandom,
  useProvider,
} from '../packages/protocol/src/index.js';
import { useNodeCrypto } from '../packages/protocol/src/node.js';
import { buildOrg } from './fixtures.js';
import { DEFAULT_OPTIONS, markdownTable, measure, QUICK_OPTIONS, type Row } from './harness.js';

const N = 134;
const TARGET = 10_000;
const text = (() => {
  const full = readFileSync(new URL('../packages/protocol/test/fixtures/corpus/ar-cable-economic.txt', import.meta.url), 'utf8');
  let out = '';
  for (const p of full.split('\n\n')) {
    if (Buffer.byteLength(`${out}\n\n${p}`) > TARGET) break;
    out = out ? `${out}\n\n${p}` : p;
  }
  return out;
})();
const bytes = new TextEncoder().encode(text);

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  useNodeCrypto();
  const org = buildOrg();
  const list = org.recipients('xwing', N);
  const verified = list.map((r) => r.verified);
  const { copies, report } = fingerprintDocument(text, {
    tracingKey: systemRandom(32),
    itemId: systemRandom(16),
    recipients: list.map((_, i) => ({
      id: Uint8Array.from({ length: 16 }, (_v, k) => (k === 15 ? i & 0xff : k === 14 ? i >> 8 : 0)),
      name: `r${i}`,
    })),
  });
  const personal = copies.map((c) => new TextEncoder().encode(c));
  const base: SealInput = org.sealInput(list);
  const fpInput: SealInput = {
    ...base,
    contentType: 'text/plain; charset=utf-8; valise-fingerprinted=1',
    personal: (i) => personal[i] as Uint8Array,
  };
  const empty = new Uint8Array(0);
  const shared = seal(base, bytes, org.sender, verified);
  const perRecipient = seal(fpInput, empty, org.sender, verified);

  const activate = { node: () => useNodeCrypto(), noble: () => useProvider(nobleProvider) };
  const rows: Row[] = [];
  for (const prov of ['node', 'noble'] as const) {
    rows.push({
      key: `shared:${prov}`,
      impl: `shared body (${prov})`,
      kem: 'X-Wing',
      activate: activate[prov],
      op: () => seal(base, bytes, org.sender, verified),
    });
    rows.push({
      key: `personal:${prov}`,
      impl: `134 personal copies (${prov})`,
      kem: 'X-Wing',
      activate: activate[prov],
      op: () => seal(fpInput, empty, org.sender, verified),
    });
  }
  const stats = await measure(rows, quick ? QUICK_OPTIONS : DEFAULT_OPTIONS);
  const copyBytes = personal.reduce((n, p) => n + p.length, 0) / N;
  const m = planMarks(text).points.length;
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  const ms = (k: string) => stats.get(k)?.medianMs.toFixed(1) ?? '—';
  process.stdout.write(
    `Text: first ${bytes.length} bytes of ar-cable-economic (Arabic), ${m} marking points (${report.marks} marks); ` +
      `mean marked copy ${fmt(copyBytes)} bytes; ${N} X-Wing recipient devices.\n\n`,
  );
  process.stdout.write(
    `${markdownTable(
      ['sealing', 'node ms (median)', 'noble ms (median)', 'envelope bytes (uploaded)', 'one relay slice (delivered)'],
      [
        ['shared body', ms('shared:node'), ms('shared:noble'), fmt(shared.length), fmt(sliceEnvelope(shared, 0).length)],
        [
          `${N} personal copies`,
          ms('personal:node'),
          ms('personal:noble'),
          fmt(perRecipient.length),
          fmt(sliceEnvelope(perRecipient, 0).length),
        ],
      ],
      1,
    )}\n\n`,
  );
  // The segment-variant alternative: both variants of every point in the shared body, one
  // 16-byte key per point in each entry (see the spec for the layout).
  process.stdout.write(
    `Segment variants (estimate): ${m} keys of 16 bytes = ${fmt(16 * m)} bytes in each entry, ${fmt(16 * m * N)} bytes of keys in all, ` +
      `against ${fmt(copyBytes)} bytes of personal copy per entry (${fmt(copyBytes * N)} in all).\n`,
  );
}

await main();
