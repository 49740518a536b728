/**
 * `send --fingerprint`, `read` of a marked copy, the tracing record and `trace`, in this process
 * against a real relay (SQLite in a temporary folder): every recipient person gets its own copy,
 * the copies are the original once the marks are removed, the record reaches only the sender and
 * the records office, and tracing names exactly the leaker (or nobody, for the unmarked text).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attacks, deterministicRandomForTesting, planMarks, removeMarks } from '@valise/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliIo, runCli } from '../src/cli.js';
import type { CommandContext } from '../src/context.js';
import { CliError, ExitCode } from '../src/errors.js';
import { inbox, read, register, type SendResult, send } from '../src/messaging.js';
import { deviceEnrol, officeAdd, officeAssign, orgInit, personAdd } from '../src/org.js';
import { fixedPassphrases } from '../src/passphrase.js';
import { relayServe } from '../src/relay-serve.js';
import { TRACING_RECORD_CONTENT_TYPE, trace, traceList } from '../src/tracing.js';
import { REPO } from './helpers.js';

const FAST = { logN: 10, r: 8, p: 1 };
const folder = mkdtempSync(join(tmpdir(), 'valise-cli-fingerprint-'));
const passphraseOf = (name: string) => `passphrase of ${name}`;
const ctx = (name: string): CommandContext => ({
  home: join(folder, name),
  passphrases: fixedPassphrases(passphraseOf(name), 'bundle passphrase'),
  kdf: FAST,
  now: () => Math.floor(Date.now() / 1000),
});
const hq = ctx('hq');
const records = ctx('records');
const embassies = { Paris: ctx('paris'), Nairobi: ctx('nairobi'), Jakarta: ctx('jakarta') };
const paris2 = ctx('paris-2');
const names = { Paris: 'Claire Dubois', Nairobi: 'Wanjiru Kamau', Jakarta: 'Budi Santoso' };
const cities = ['Paris', 'Nairobi', 'Jakarta'] as const;
const QUIET = { quietMs: 250 };
const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const seeded = (s: string) => deterministicRandomForTesting(`cli fingerprint test/${s}`);

// The bilingual briefing note of the corpus (about 5 KB): Arabic and English paragraphs.
const SOURCE = readFileSync(join(REPO, 'packages/protocol/test/fixtures/corpus/mixed-brief.txt'), 'utf8');

let relay: Awaited<ReturnType<typeof relayServe>>;
let sent: SendResult;
const copies: Record<string, string> = {};

async function rejects(p: Promise<unknown>): Promise<CliError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(CliError);
    return err as CliError;
  }
  throw new Error('expected a failure');
}

/** Runs the command line in this process against one home; returns the exit code and the outputs. */
async function cli(home: string, args: string[], stdin = ''): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = {
    out: (t) => {
      out += t;
    },
    err: (t) => {
      err += t;
    },
    readStdin: async () => utf8(stdin),
    stdinIsTTY: false,
    env: {},
    passphrases: fixedPassphrases(passphraseOf(home), 'bundle passphrase'),
    untilSignal: () => Promise.resolve(),
  };
  const code = await runCli(['--home', join(folder, home), ...args], io);
  return { code, out, err };
}

beforeAll(async () => {
  const org = await orgInit(hq);
  relay = await relayServe({ data: join(folder, 'relay'), orgRoot: org.rootFile, logLevel: 'silent', revocation: org.revocationFile });
  const registrar = await personAdd(hq, { name: 'Amina Diallo', title: 'Head of Registry', unit: 'Headquarters' });
  const archivist = await personAdd(hq, { name: 'Layla Haddad', title: 'Records Officer', unit: 'Headquarters' });
  const office = await officeAdd(hq, { title: 'Records Office', unit: 'Headquarters', recordsOffice: true });
  expect(office.recordsOffice).toBe(true);
  await officeAssign(hq, { office: office.officeId, person: archivist.personId });
  const bundles: [CommandContext, string][] = [
    [hq, (await deviceEnrol(hq, { person: registrar.personId, label: 'registry' })).bundle],
    [records, (await deviceEnrol(hq, { person: archivist.personId, label: 'records office' })).bundle],
  ];
  for (const city of cities) {
    const p = await personAdd(hq, { name: names[city], title: 'Ambassador', unit: `Embassy in ${city}` });
    // Nairobi's device uses X25519: the item then travels in two envelopes (one per KEM).
    bundles.push([
      embassies[city],
      (await deviceEnrol(hq, { person: p.personId, label: city, kem: city === 'Nairobi' ? 'x25519' : 'xwing' })).bundle,
    ]);
    if (city === 'Paris') bundles.push([paris2, (await deviceEnrol(hq, { person: p.personId, label: 'Paris, second device' })).bundle]);
  }
  for (const [c, b] of bundles) await register(c, { bundle: b, relay: relay.url });
  sent = await send(hq, {
    to: cities.map((c) => names[c]),
    subject: 'Briefing: Malvara',
    classification: 'SECRET',
    body: utf8(SOURCE),
    fingerprint: {},
  });
  for (const city of cities) {
    expect((await inbox(embassies[city], QUIET)).fetched?.new).toBe(1);
    copies[city] = text((await read(embassies[city], { id: '1' })).body);
  }
}, 60_000);

afterAll(async () => {
  await relay?.close();
  rmSync(folder, { recursive: true, force: true });
});

describe('send --fingerprint', { timeout: 30_000 }, () => {
  it('gives each recipient person its own copy, which is the original once the marks are removed', async () => {
    const fp = sent.fingerprint;
    if (fp === undefined) throw new Error('not fingerprinted');
    expect(fp.recipients.map((r) => r.name)).toEqual(cities.map((c) => `${names[c]}, Embassy in ${c}`));
    expect(fp.recipients.map((r) => r.devices)).toEqual([2, 1, 1]);
    expect(fp.report.meetsTarget).toBe(true);
    expect(fp.report.marks).toBeGreaterThan(500);
    expect(fp.contentType).toBe('text/plain; charset=utf-8; valise-fingerprinted=1');
    expect(sent.envelopes).toHaveLength(2); // X-Wing and X25519 devices
    const plan = planMarks(SOURCE);
    for (const city of cities) {
      const copy = copies[city] as string;
      expect(copy).not.toBe(SOURCE);
      expect(removeMarks(copy, plan)).toBe(SOURCE);
    }
    expect(new Set(Object.values(copies)).size).toBe(3);
    // Both devices of one person get that person's copy.
    await inbox(paris2, QUIET);
    expect(text((await read(paris2, { id: '1' })).body)).toBe(copies.Paris);
  });

  it('read shows the personal copy as the text, and says it is marked', async () => {
    const r = await read(embassies.Jakarta, { id: '1', keepUnread: true });
    expect(r.fingerprinted).toBe(true);
    expect(text(r.body)).toBe(copies.Jakarta);
    const human = await cli('jakarta', ['read', '1']);
    expect(human.code).toBe(0);
    expect(human.out).toContain('Copy:            personal');
    expect(human.out).toContain((copies.Jakarta as string).split('\n')[0]);
    const json = JSON.parse((await cli('jakarta', ['read', '1', '--json'])).out);
    expect(json).toMatchObject({ ok: true, fingerprinted: true, body: copies.Jakarta });
  });

  it('seals the tracing record for the records office and keeps it in the sender home; recipients never get it', async () => {
    const fp = sent.fingerprint;
    if (fp === undefined) throw new Error('not fingerprinted');
    expect(fp.record.recordsOffice).toMatchObject({ title: 'Records Office', unit: 'Headquarters', how: 'designated' });
    expect(fp.record.devices).toBe(1);
    expect(fp.record.envelopes).toHaveLength(1);
    const box = await inbox(records, QUIET);
    expect(box.items).toHaveLength(1);
    expect(box.items[0]?.tracing?.itemId).toBe(fp.itemId);
    expect((await read(records, { id: '1', keepUnread: true })).item.contentType).toBe(TRACING_RECORD_CONTENT_TYPE);
    for (const c of [...Object.values(embassies), paris2]) {
      const items = (await inbox(c, { fetch: false })).items;
      expect(items).toHaveLength(1);
      expect(items[0]?.tracing).toBeUndefined();
      expect((await read(c, { id: '1', keepUnread: true })).item.contentType).not.toBe(TRACING_RECORD_CONTENT_TYPE);
    }
    expect((await traceList(hq)).records.map((r) => [r.itemId, r.from])).toEqual([[fp.itemId, 'sent']]);
    expect((await traceList(records)).records.map((r) => [r.itemId, r.from, r.recipients])).toEqual([[fp.itemId, 'inbox', 3]]);
    expect((await traceList(embassies.Paris)).records).toEqual([]);
  });
});

describe('trace', { timeout: 30_000 }, () => {
  const accused = async (c: CommandContext, item: string, leak: string) => (await trace(c, { item, leak })).accused.map((a) => a.name);

  it('names exactly the leaker from a whole copy, half of one, a PDF copy, and half a PDF copy', async () => {
    const id = sent.fingerprint?.itemId as string;
    const nairobi = 'Wanjiru Kamau, Embassy in Nairobi';
    const jakarta = 'Budi Santoso, Embassy in Jakarta';
    const paris = 'Claire Dubois, Embassy in Paris';
    // By the records office (its inbox item) and by the sender (the item id, or an envelope id prefix).
    expect(await accused(records, '1', copies.Nairobi as string)).toEqual([nairobi]);
    expect(await accused(hq, id, copies.Nairobi as string)).toEqual([nairobi]);
    expect(await accused(hq, sent.envelopes[0]?.envelopeId.slice(0, 8) as string, copies.Paris as string)).toEqual([paris]);
    expect(await accused(records, id.slice(0, 6), attacks.excerpt(copies.Jakarta as string, 0.5, seeded('half')))).toEqual([jakarta]);
    expect(await accused(records, '1', attacks.pdfCopy(copies.Paris as string))).toEqual([paris]);
    const leak = attacks.excerpt(attacks.pdfCopy(copies.Nairobi as string), 0.5, seeded('pdf half'));
    const t = await trace(records, { item: '1', leak });
    expect(t.accused.map((a) => a.name)).toEqual([nairobi]);
    expect(t.suspects[0]?.name).toBe(nairobi);
    expect(t.threshold).not.toBeNull();
    expect(t.accused[0]?.score).toBeGreaterThanOrEqual(t.threshold as number);
    expect(t.accused[0]?.falseAccusationBound).toBeLessThan(1e-6);
    // A PDF copy loses the zero-width marks (read as erased, point by point).
    expect(t.leak.channels.find((c) => c.channel === 'zero-width')?.read).toBe(0);
    expect(t.leak.channels.reduce((n, c) => n + c.read, 0)).toBe(t.leak.read);
    const evidence = t.accused[0]?.evidence ?? [];
    expect(evidence.reduce((n, e) => n + e.read, 0)).toBe(t.leak.read);
    expect(evidence.reduce((n, e) => n + e.matched, 0)).toBe(t.accused[0]?.matches);
  });

  it('accuses nobody for the unmarked original, and says so', async () => {
    const t = await trace(records, { item: '1', leak: SOURCE });
    expect(t.accused).toEqual([]);
    expect(t.verdict).toMatch(/^no one accused; \d+ positions read$/);
    const human = await cli('records', ['trace', '--item', '1'], SOURCE);
    expect(human.code).toBe(0);
    expect(human.out).toMatch(/No one accused; \d+ positions read\./);
  });

  it('human and --json forms', async () => {
    const human = await cli('hq', ['trace', '--item', sent.fingerprint?.itemId as string, '-'], copies.Paris);
    expect(human.code).toBe(0);
    expect(human.out).toMatch(/ACCUSED: Claire Dubois, Embassy in Paris\n {2}score [\d.]+ >= threshold [\d.]+/);
    expect(human.out).toMatch(/Threshold: a score of [\d.]+ accuses/);
    expect(human.out).toMatch(/evidence by channel: .*match/);
    const json = JSON.parse((await cli('records', ['trace', '--item', '1', '--json'], copies.Jakarta)).out);
    expect(json.ok).toBe(true);
    expect(json.accused.map((a: { name: string }) => a.name)).toEqual(['Budi Santoso, Embassy in Jakarta']);
    expect(json.suspects).toHaveLength(3);
    expect(typeof json.threshold).toBe('number');
    const list = JSON.parse((await cli('records', ['trace', '--list', '--json'])).out);
    expect(list.records).toHaveLength(1);
  });

  it('refuses what is not a tracing record, and homes that hold none', async () => {
    expect(await rejects(trace(embassies.Paris, { item: '1', leak: 'x' }))).toMatchObject({ code: 'not-a-tracing-record' });
    expect(await rejects(trace(embassies.Paris, { item: sent.fingerprint?.itemId as string, leak: 'x' }))).toMatchObject({
      code: 'no-such-item',
      exitCode: ExitCode.NotFound,
    });
    const r = await cli('records', ['trace', '--item', '1']);
    expect(r.code).toBe(ExitCode.Ok); // empty standard input: an empty leak, which accuses nobody
    expect(r.out).toMatch(/No one accused; 0 positions read/);
  });
});

describe('send --fingerprint: policy, formats, records office, --json', { timeout: 30_000 }, () => {
  const short = utf8('The meeting is moved to Tuesday afternoon.\n');

  it('--policy refuse sends nothing below the target coalition; warn sends with a warning', async () => {
    const e = await rejects(
      send(hq, { to: [names.Paris], subject: 'Short', body: short, fingerprint: { policy: 'refuse', recordsOffice: 'none' } }),
    );
    expect(e).toMatchObject({ code: 'below-target', exitCode: ExitCode.Usage });
    expect(e.message).toMatch(/refused to send/);
    expect((await inbox(embassies.Paris, QUIET)).fetched?.new).toBe(0);
    const w = await send(hq, { to: [names.Paris], subject: 'Short', body: short, fingerprint: { recordsOffice: 'none' } });
    expect(w.fingerprint?.report.meetsTarget).toBe(false);
    expect(w.warnings.join('\n')).toMatch(/fingerprint: .*(cannot trace|at most)/);
    // No records office: kept in the sender's home only.
    expect(w.fingerprint?.record).toMatchObject({ devices: 0, envelopes: [] });
    expect(w.fingerprint?.record.recordsOffice).toBeUndefined();
    expect((await traceList(hq)).records).toHaveLength(2);
  });

  it('refuses binary bodies and non-text content types', async () => {
    const binary = await rejects(
      send(hq, { to: [names.Paris], subject: 'x', body: Uint8Array.of(0x25, 0x50, 0x44, 0x46, 0, 0xff), fingerprint: {} }),
    );
    expect(binary).toMatchObject({ code: 'not-text', exitCode: ExitCode.Usage });
    expect(binary.message).toMatch(/not UTF-8 text/);
    const nul = await rejects(send(hq, { to: [names.Paris], subject: 'x', body: utf8('a\u0000b'), fingerprint: {} }));
    expect(nul.code).toBe('not-text');
    const pdf = await rejects(send(hq, { to: [names.Paris], subject: 'x', body: short, contentType: 'application/pdf', fingerprint: {} }));
    expect(pdf.code).toBe('not-text');
    const usage = await cli('hq', ['send', '--to', names.Paris, '--subject', 'x', '--policy', 'refuse'], 'text');
    expect(usage.code).toBe(ExitCode.Usage);
    expect(usage.err).toMatch(/--policy applies only to fingerprinted items/);
  });

  it('Markdown with --records-office by name; --json output parses', async () => {
    const md = `# Instructions\n\n${SOURCE.split('\n\n').slice(9, 13).join('\n\n')}\n\n\`\`\`\ncode VLT/2025/1 stays unmarked\n\`\`\`\n`;
    const r = await cli(
      'hq',
      [
        'send',
        '--to',
        names.Nairobi,
        '--subject',
        'Markdown',
        '--content-type',
        'text/markdown',
        '--fingerprint',
        '--coalition',
        '2',
        '--epsilon',
        '1e-9',
        '--channels',
        'kashida,arabic-letterforms,latin-homoglyphs,zero-width',
        '--records-office',
        'Records Office, Headquarters',
        '--json',
      ],
      md,
    );
    expect(r.code).toBe(0);
    const json = JSON.parse(r.out);
    expect(json.ok).toBe(true);
    expect(json.fingerprint.contentType).toBe('text/markdown; charset=utf-8; valise-fingerprinted=1');
    expect(json.fingerprint.report).toMatchObject({ c: 2, epsilon: 1e-9 });
    expect(Object.keys(json.fingerprint.report.perChannel)).not.toContain('wording');
    expect(json.fingerprint.record.recordsOffice.how).toBe('option');
    await inbox(embassies.Nairobi, QUIET);
    const copy = text((await read(embassies.Nairobi, { id: '2' })).body);
    expect(copy).toContain('```\ncode VLT/2025/1 stays unmarked\n```');
    expect(removeMarks(copy, planMarks(md))).toBe(md);
    const human = await cli('hq', ['send', '--to', names.Jakarta, '--subject', 'Again', '--fingerprint'], SOURCE);
    expect(human.code).toBe(0);
    expect(human.out).toMatch(/Fingerprinted: the recipient got a marked copy of its own/);
    expect(human.out).toMatch(/\d+ marks placed \(/);
    expect(human.out).toMatch(/traceable at ε = 1e-6: up to \d+ colluders from a whole copy/);
    expect(human.out).toMatch(/Tracing record: kept in this home; sealed for the records office \(Records Office, Headquarters\)/);
  });
});
