/**
 * Per-recipient fingerprinting and leak tracing in the command line (spec/cli.md §13; the code and
 * the marks are spec/fingerprint.md and spec/marks.md):
 *
 * - what can be fingerprinted (UTF-8 plain text or Markdown) and the content type that tells a
 *   reader to show its personal copy;
 * - the tracing document: the encoded tracing record with the original source text, sealed for
 *   the sender's devices and the records office, and kept in the sender's home;
 * - how the records office is found;
 * - `valise trace`: find the record of an item, read a leaked text, name the leaker.
 */
import {
  ALL_CHANNELS,
  type CapacityReport,
  type CborValue,
  type ChannelId,
  cborMap,
  DecodeError,
  decodeCbor,
  decodeOfficeCert,
  decodeTracingRecord,
  ENVELOPE_ID_LENGTH,
  encodeCbor,
  encodeTracingRecord,
  epsilonToDecimal,
  fromHex,
  MAX_PERSONAL_SIZE,
  MAX_TRACING_RECORD_SIZE,
  MapReader,
  type OfficeCert,
  prepareTracing,
  readMarks,
  type TraceResult,
  type TracingRecord,
  toHex,
  traceReading,
} from '@valise/protocol';
import { type CommandContext, homeOptions, isHexId } from './context.js';
import { CliError, ExitCode, notFound, usageError } from './errors.js';
import { type Home, type HomeState, withHome } from './home.js';

// ---------------------------------------------------------------------------------------------
// Content types

/** Media type parameter marking an item whose text is each recipient's personal payload. */
export const FINGERPRINT_PARAMETER = 'valise-fingerprinted';
/** Content type of the envelope that carries a tracing document. */
export const TRACING_RECORD_CONTENT_TYPE = 'application/vnd.valise.tracing-record+cbor';
/** The media types that can be fingerprinted. */
export const FINGERPRINTABLE_TYPES = ['text/plain', 'text/markdown'] as const;

/** `type/subtype` (lower case) and the parameters (names lower case) of a media type. */
export function parseMediaType(contentType: string): { type: string; params: Map<string, string> } {
  const [head = '', ...rest] = contentType.split(';');
  const params = new Map<string, string>();
  for (const p of rest) {
    const i = p.indexOf('=');
    if (i < 0) continue;
    params.set(
      p.slice(0, i).trim().toLowerCase(),
      p
        .slice(i + 1)
        .trim()
        .replace(/^"(.*)"$/, '$1'),
    );
  }
  return { type: head.trim().toLowerCase(), params };
}

/** True if the item's text is its personal payload (`valise-fingerprinted=1`). */
export function isFingerprinted(contentType: string): boolean {
  return parseMediaType(contentType).params.get(FINGERPRINT_PARAMETER) === '1';
}

/** The content type of a fingerprinted item: `text/plain` or `text/markdown`, UTF-8, marked `valise-fingerprinted=1`. */
export function fingerprintContentType(given: string | undefined): string {
  const { type, params } = parseMediaType(given ?? 'text/plain; charset=utf-8');
  if (!(FINGERPRINTABLE_TYPES as readonly string[]).includes(type)) {
    throw new CliError(
      'not-text',
      `only plain text and Markdown can be fingerprinted, not ${type || '(no type)'}`,
      ExitCode.Usage,
      'use --content-type text/plain or text/markdown, or send the document without --fingerprint (it then goes unmarked)',
    );
  }
  const charset = params.get('charset');
  if (charset !== undefined && charset.toLowerCase() !== 'utf-8') {
    throw new CliError('not-text', `a fingerprinted text must be UTF-8, not ${charset}`, ExitCode.Usage, 'convert the text to UTF-8');
  }
  return `${type}; charset=utf-8; ${FINGERPRINT_PARAMETER}=1`;
}

/** Control characters other than tab, line feed, form feed and carriage return: a binary file. */
function hasBinaryControls(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0c && c !== 0x0d) || c === 0x7f) return true;
  }
  return false;
}

/** The body as text for fingerprinting; refuses anything that is not UTF-8 text. */
export function textForFingerprinting(body: Uint8Array): string {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw new CliError(
      'not-text',
      'the body is not UTF-8 text: only plain text and Markdown can be fingerprinted',
      ExitCode.Usage,
      'send binary documents (PDF, images, office files) without --fingerprint: they go unmarked; or fingerprint their text',
    );
  }
  if (hasBinaryControls(text)) {
    throw new CliError(
      'not-text',
      'the body holds control characters, as binary files do: only plain text and Markdown can be fingerprinted',
      ExitCode.Usage,
      'send binary documents without --fingerprint: they go unmarked',
    );
  }
  if (text.trim() === '') throw usageError('the body is empty: there is nothing to fingerprint');
  if (body.length > MAX_PERSONAL_SIZE) {
    throw usageError(`the text is ${body.length} bytes; a fingerprinted text may have at most ${MAX_PERSONAL_SIZE} bytes per copy`);
  }
  return text;
}

/** `--channels a,b,c`: known channel ids, in any order. */
export function parseChannels(list: string): ChannelId[] {
  const names = list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (names.length === 0) throw usageError('--channels: give at least one channel', `channels: ${ALL_CHANNELS.join(', ')}`);
  for (const n of names) {
    if (!(ALL_CHANNELS as readonly string[]).includes(n))
      throw usageError(`--channels: unknown channel "${n}"`, `channels: ${ALL_CHANNELS.join(', ')}`);
  }
  return names as ChannelId[];
}

/** `--epsilon E`: a decimal in (0, 1) the tracing record can hold (k · 10^-e). */
export function parseEpsilon(value: string): number {
  const e = Number(value);
  try {
    if (!/^[0-9.eE+-]+$/.test(value.trim())) throw new Error();
    epsilonToDecimal(e);
  } catch {
    throw usageError(`--epsilon: expected a probability such as 1e-6 (k·10^-e in (0, 1), e <= 22), got "${value}"`);
  }
  return e;
}

// ---------------------------------------------------------------------------------------------
// The tracing document (spec/cli.md §13.3)

export const TRACING_DOCUMENT_VERSION = 1;
/** The record, the source (at most 2^20 UTF-16 code units, so at most 3 MiB of UTF-8) and the rest. */
export const MAX_TRACING_DOCUMENT_SIZE = MAX_TRACING_RECORD_SIZE + 4 * MAX_PERSONAL_SIZE;
const MAX_SOURCE_LENGTH = MAX_PERSONAL_SIZE;
const MAX_ITEM_ENVELOPES = 16;

export interface TracingDocument {
  record: TracingRecord;
  /** The text given to fingerprinting, wording templates included. */
  source: string;
  subject: string;
  classification: string;
  /** Content type of the fingerprinted item. */
  contentType: string;
  createdAt: number;
  /** Envelope ids of the fingerprinted item (one per KEM group). */
  envelopes: Uint8Array[];
  sender: { personId: Uint8Array; name: string; unit: string };
}

export function encodeTracingDocument(d: TracingDocument): Uint8Array {
  return encodeCbor(
    cborMap([
      [0, TRACING_DOCUMENT_VERSION],
      [1, encodeTracingRecord(d.record)],
      [2, d.source],
      [3, d.subject],
      [4, d.classification],
      [5, d.contentType],
      [6, d.createdAt],
      [7, d.envelopes],
      [
        8,
        cborMap([
          [0, d.sender.personId],
          [1, d.sender.name],
          [2, d.sender.unit],
        ]),
      ],
    ]),
  );
}

/** Decodes a tracing document strictly; every failure is a DecodeError. */
export function decodeTracingDocument(bytes: Uint8Array): TracingDocument {
  const what = 'tracing document';
  const r = MapReader.from(decodeCbor(bytes, MAX_TRACING_DOCUMENT_SIZE, what), what);
  if (r.uint(0, 'version') !== TRACING_DOCUMENT_VERSION) throw new DecodeError(`${what}: unsupported version`);
  const record = decodeTracingRecord(r.bytes(1, 'record', { max: MAX_TRACING_RECORD_SIZE }));
  const source = r.text(2, 'source', MAX_SOURCE_LENGTH);
  const subject = r.text(3, 'subject', 1024);
  const classification = r.text(4, 'classification', 64);
  const contentType = r.text(5, 'contentType', 256);
  const createdAt = r.uint(6, 'createdAt');
  const envelopes = r.array(7, 'envelopes', MAX_ITEM_ENVELOPES).map((v: CborValue) => {
    if (!(v instanceof Uint8Array) || v.length !== ENVELOPE_ID_LENGTH) throw new DecodeError(`${what}.envelopes: expected envelope ids`);
    return v;
  });
  const s = r.mapAt(8, 'sender');
  const sender = { personId: s.bytes(0, 'personId', { len: 16 }), name: s.text(1, 'name', 256), unit: s.text(2, 'unit', 256) };
  s.done();
  r.done();
  return { record, source, subject, classification, contentType, createdAt, envelopes, sender };
}

// ---------------------------------------------------------------------------------------------
// The records office (spec/cli.md §13.2)

export interface RecordsOfficeChoice {
  office?: OfficeCert;
  /** How it was found: the --records-office option, the organisation's designation, or its title. */
  how: 'option' | 'designated' | 'title' | 'none';
}

const norm = (s: string) => s.trim().replace(/\s+/g, ' ').toLowerCase();
export const RECORDS_OFFICE_TITLE = 'Records Office';

/**
 * The records office a tracing record is sealed for: `--records-office NAME|ID` (an office id,
 * "Title, Unit" or a title naming one office; `none` for no records office), else the office the
 * organisation designated (`office add --records-office`, carried in device bundles and
 * directory files), else the one office titled "Records Office". Only offices of this home's
 * directory, which are certified by the organisation root, qualify.
 */
export function findRecordsOffice(state: HomeState, option: string | undefined): RecordsOfficeChoice {
  const offices = state.directory.offices.map((h) => decodeOfficeCert(fromHex(h)));
  if (option !== undefined) {
    const want = norm(option);
    if (want === 'none') return { how: 'none' };
    const hits = isHexId(option)
      ? offices.filter((o) => toHex(o.officeId) === want)
      : offices.filter((o) => norm(`${o.title}, ${o.unit}`) === want || norm(o.title) === want);
    if (hits.length === 1) return { office: hits[0] as OfficeCert, how: 'option' };
    if (hits.length > 1)
      throw new CliError(
        'ambiguous-recipient',
        `--records-office "${option}" names ${hits.length} offices: ${hits.map((o) => `${o.title}, ${o.unit}`).join('; ')}`,
        ExitCode.Usage,
        'give "Title, Unit" or the office id',
      );
    throw notFound(
      'no-such-office',
      `no office "${option}" in this home's directory`,
      'check `valise directory search TEXT`, or import the directory (valise directory import FILE)',
    );
  }
  const designated = state.directory.recordsOffice;
  if (designated !== undefined) {
    const o = offices.find((x) => toHex(x.officeId) === designated);
    if (o !== undefined) return { office: o, how: 'designated' };
  }
  const titled = offices.filter((o) => norm(o.title) === norm(RECORDS_OFFICE_TITLE));
  if (titled.length === 1) return { office: titled[0] as OfficeCert, how: 'title' };
  if (titled.length > 1)
    throw new CliError(
      'ambiguous-recipient',
      `${titled.length} offices are titled "${RECORDS_OFFICE_TITLE}" and none is designated`,
      ExitCode.Usage,
      'choose one with --records-office "Title, Unit"',
    );
  return { how: 'none' };
}

// ---------------------------------------------------------------------------------------------
// Capacity report (send --fingerprint)

const fmtEpsilon = (e: number) => {
  const { mantissa, exponent } = epsilonToDecimal(e);
  return mantissa === 1 ? `1e-${exponent}` : `${mantissa}e-${exponent}`;
};

export { fmtEpsilon as formatEpsilon };

export function renderCapacity(report: CapacityReport): string[] {
  const channels = Object.entries(report.perChannel)
    .map(([ch, n]) => `${ch} ${n}`)
    .join(', ');
  const m = report.maxCoalition;
  const size = (n: number) => (n === 0 ? 'not even one leaker' : n === 1 ? 'a single leaker' : `up to ${n} colluders`);
  return [
    `  ${report.marks} marks placed${channels ? ` (${channels})` : ''}`,
    `  traceable at ε = ${fmtEpsilon(report.epsilon)}: ${size(m.whole)} from a whole copy, ${size(m.half)} from half of one, ` +
      `${size(m.robust)} after NFKC and a PDF copy (target: ${report.c}${report.meetsTarget ? ', met' : ', NOT met'})`,
    ...report.warnings.map((w) => `  warning: ${w}`),
  ];
}

// ---------------------------------------------------------------------------------------------
// trace

interface FoundRecord {
  doc: TracingDocument;
  /** Where the record came from: this home's own records (the sender), or an inbox item (records office). */
  from: { kind: 'sent' } | { kind: 'inbox'; item: number; sealedBy: string };
}

export interface TraceListEntry {
  itemId: string;
  subject: string;
  classification: string;
  createdAt: number;
  recipients: number;
  envelopes: string[];
  from: 'sent' | 'inbox';
  item?: number;
  sender?: string;
}

/** The tracing records this home holds: those of items it sent, and those received as records office. */
export async function traceList(ctx: CommandContext): Promise<{ records: TraceListEntry[] }> {
  return withHome(homeOptions(ctx), {}, (home) => {
    const records: TraceListEntry[] = (home.state.records ?? []).map((r) => ({
      itemId: r.itemId,
      subject: r.subject,
      classification: r.classification,
      createdAt: r.createdAt,
      recipients: r.recipients,
      envelopes: r.envelopes,
      from: 'sent',
    }));
    for (const i of home.state.items) {
      if (i.tracing === undefined || records.some((r) => r.itemId === i.tracing?.itemId)) continue;
      records.push({
        itemId: i.tracing.itemId,
        subject: i.subject.replace(/^Tracing record: /, ''),
        classification: i.classification,
        createdAt: i.createdAt,
        recipients: i.tracing.recipients,
        envelopes: i.tracing.envelopes,
        from: 'inbox',
        item: i.n,
        sender: i.from,
      });
    }
    return { records };
  });
}

interface StoredRecordItem {
  body: string;
  contentType: string;
  sender: { personId: string; name: string };
}

function findRecord(home: Home, id: string): FoundRecord {
  const s = id.trim().toLowerCase();
  const noRecord = (what: string) =>
    notFound(
      'no-such-item',
      `no tracing record for ${what} in this home`,
      'only the sender of a fingerprinted item and the records office hold its record; run `valise inbox` to fetch records, and `valise trace --list` to see them',
    );
  const fromInbox = (n: number): FoundRecord => {
    const entry = home.state.items.find((i) => i.n === n);
    if (entry === undefined) throw noRecord(`item ${n}`);
    if (entry.tracing === undefined) {
      throw new CliError(
        'not-a-tracing-record',
        `item ${n} ("${entry.subject}") is not a tracing record`,
        ExitCode.Usage,
        'give the item number of a "Tracing record" in `valise inbox`, or the fingerprinted item id; see `valise trace --list`',
      );
    }
    const stored = home.readItem<StoredRecordItem>(n);
    const doc = decodeTracingDocument(new Uint8Array(Buffer.from(stored.body, 'base64')));
    return { doc, from: { kind: 'inbox', item: n, sealedBy: stored.sender.name } };
  };
  // All digits: an inbox number if this home has that item (or it is too short to be an id
  // prefix); otherwise a hex id prefix that happens to hold no letter (about 6% of 6-digit ones).
  if (/^[0-9]+$/.test(s) && (s.length < 4 || home.state.items.some((i) => i.n === Number(s)))) return fromInbox(Number(s));
  if (!/^[0-9a-f]{4,32}$/.test(s)) {
    throw usageError(
      `not an item number or id: "${id}"`,
      'give the fingerprinted item id or envelope id (at least 4 hex digits), or the inbox number of its tracing record',
    );
  }
  const own = (home.state.records ?? []).filter((r) => r.itemId.startsWith(s) || r.envelopes.some((e) => e.startsWith(s)));
  const received = home.state.items.filter(
    (i) =>
      i.tracing !== undefined &&
      (i.tracing.itemId.startsWith(s) || i.tracing.envelopes.some((e) => e.startsWith(s)) || i.envelopeId.startsWith(s)),
  );
  const ids = new Set([...own.map((r) => r.itemId), ...received.map((i) => i.tracing?.itemId)]);
  if (ids.size > 1) throw usageError(`"${id}" matches ${ids.size} fingerprinted items`, 'give more digits');
  const mine = own[0];
  if (mine !== undefined) return { doc: decodeTracingDocument(home.readRecord(mine.itemId)), from: { kind: 'sent' } };
  const theirs = received[0];
  if (theirs !== undefined) return fromInbox(theirs.n);
  throw noRecord(`"${id}"`);
}

export interface TraceSuspectView {
  rank: number;
  personId: string;
  name: string;
  score: number;
  matches: number;
  accused: boolean;
  /** N · P(an innocent scores at least this much), capped at 1 (for the accused and the top five). */
  falseAccusationBound?: number;
}

export interface TraceCommandResult {
  item: {
    itemId: string;
    subject: string;
    classification: string;
    createdAt: number;
    sender: { personId: string; name: string; unit: string };
    envelopes: string[];
    recipients: number;
    c: number;
    epsilon: number;
    channels: ChannelId[];
    record: { from: 'sent' } | { from: 'inbox'; item: number; sealedBy: string };
  };
  leak: {
    characters: number;
    /** Code positions of the item (marking points of the original). */
    positions: number;
    /** Positions read from the leak. */
    read: number;
    erasedChannels: ChannelId[];
    /** Per channel: the points of the original and how many were read in the leak. */
    channels: { channel: ChannelId; points: number; read: number; erased: boolean }[];
  };
  /** Score needed to accuse; null if too little was read to accuse anyone at ε. */
  threshold: number | null;
  epsilon: number;
  epsilonPerRecipient: number;
  accused: (TraceSuspectView & { evidence: { channel: ChannelId; read: number; matched: number }[] })[];
  suspects: TraceSuspectView[];
  verdict: string;
}

export async function trace(ctx: CommandContext, opts: { item: string; leak: string }): Promise<TraceCommandResult> {
  if (typeof opts.leak !== 'string') throw usageError('no leaked text');
  return withHome(homeOptions(ctx), {}, (home) => {
    const { doc, from } = findRecord(home, opts.item);
    const { record } = doc;
    const context = prepareTracing(doc.source, record);
    const reading = readMarks(context.plan, opts.leak);
    const r: TraceResult = traceReading(context, reading);
    const erased = new Set(r.erasedChannels);
    const channels = record.channels.map((channel) => {
      let points = 0;
      let read = 0;
      context.plan.points.forEach((p, i) => {
        if (p.channel !== channel) return;
        points++;
        if (!erased.has(channel) && (reading[i] === 0 || reading[i] === 1)) read++;
      });
      return { channel, points, read, erased: erased.has(channel) };
    });
    const view = (s: TraceResult['suspects'][number], rank: number): TraceSuspectView => ({
      rank,
      personId: toHex(s.id),
      name: s.name,
      score: s.score,
      matches: s.matches,
      accused: s.accused,
      ...(s.falseAccusationBound === undefined ? {} : { falseAccusationBound: s.falseAccusationBound }),
    });
    const suspects = r.suspects.map((s, i) => view(s, i + 1));
    const accused = r.suspects
      .map((s, i) => ({ s, i }))
      .filter(({ s }) => s.accused)
      .map(({ s, i }) => ({
        ...view(s, i + 1),
        evidence: channels
          .filter((c) => c.read > 0)
          .map((c) => {
            const ev = (s.evidence ?? []).filter((e) => e.channel === c.channel);
            return { channel: c.channel, read: ev.length, matched: ev.filter((e) => e.matched).length };
          }),
      }));
    const verdict =
      accused.length === 0
        ? `no one accused; ${r.read} positions read`
        : `accused: ${accused.map((a) => a.name).join('; ')} (${r.read} positions read)`;
    return {
      item: {
        itemId: toHex(record.itemId),
        subject: doc.subject,
        classification: doc.classification,
        createdAt: doc.createdAt,
        sender: { personId: toHex(doc.sender.personId), name: doc.sender.name, unit: doc.sender.unit },
        envelopes: doc.envelopes.map(toHex),
        recipients: record.recipients.length,
        c: record.c,
        epsilon: record.epsilon,
        channels: record.channels,
        record: from.kind === 'sent' ? { from: 'sent' } : { from: 'inbox', item: from.item, sealedBy: from.sealedBy },
      },
      leak: { characters: [...opts.leak].length, positions: r.positions, read: r.read, erasedChannels: r.erasedChannels, channels },
      threshold: Number.isFinite(r.threshold) ? r.threshold : null,
      epsilon: r.epsilon,
      epsilonPerRecipient: r.epsilonPerRecipient,
      accused,
      suspects,
      verdict,
    };
  });
}

const date = (s: number) => `${new Date(s * 1000).toISOString().slice(0, 16).replace('T', ' ')}Z`;
/** 0.25, 3.3e-7, 1e-6. */
const prob = (p: number) =>
  p >= 0.01 ? String(Number(p.toPrecision(2))) : p === 0 ? '0' : p.toExponential(1).replace(/\.0e/, 'e').replace('e-0', 'e-');
const score = (s: number) => (s >= 0 ? ` ${s.toFixed(2)}` : s.toFixed(2));

/** The human form of a trace. */
export function renderTrace(t: TraceCommandResult): string {
  const i = t.item;
  const lines = [
    `Tracing item ${i.itemId}: "${i.subject}" [${i.classification}]`,
    `  sent ${date(i.createdAt)} by ${i.sender.name} (${i.sender.unit}) to ${i.recipients} recipient${i.recipients === 1 ? '' : 's'}; ` +
      `design coalition ${i.c}, ε = ${fmtEpsilon(i.epsilon)}`,
    i.record.from === 'sent'
      ? '  tracing record: kept in this home by the sender'
      : `  tracing record: inbox item ${i.record.item}, sealed by ${i.record.sealedBy} (signature verified on receipt)`,
    '',
    `Leak: ${t.leak.characters} characters; ${t.leak.read} of ${t.leak.positions} marking positions read`,
    `  read by channel: ${t.leak.channels
      .filter((c) => c.points > 0)
      .map((c) => `${c.channel} ${c.read}/${c.points}${c.erased ? ' (normalised away)' : ''}`)
      .join(', ')}`,
  ];
  if (t.threshold === null) {
    lines.push('Threshold: none: too little was read to accuse anyone at this ε');
  } else {
    lines.push(
      `Threshold: a score of ${t.threshold.toFixed(2)} accuses; an innocent recipient reaches it with probability at most ` +
        `${prob(t.epsilonPerRecipient)}, so anyone innocent at most ${prob(t.epsilon)} (false-accusation bound)`,
    );
  }
  lines.push('');
  if (t.accused.length === 0) {
    const top = t.suspects[0];
    lines.push(`No one accused; ${t.leak.read} positions read.`);
    if (t.leak.read === 0) lines.push('  (the text carries no marks of this item)');
    else if (top !== undefined)
      lines.push(
        `  (highest score ${top.score.toFixed(2)}, ${top.name}${t.threshold === null ? '' : `, below the threshold ${t.threshold.toFixed(2)}`}: ` +
          'the text carries too few marks of this item to name anyone, or none)',
      );
  }
  for (const a of t.accused) {
    lines.push(
      `ACCUSED: ${a.name}`,
      `  score ${a.score.toFixed(2)} >= threshold ${t.threshold?.toFixed(2)}; ${a.matches} of ${t.leak.read} read positions match this recipient's copy`,
      `  probability that an innocent recipient scores this high: at most ${prob(a.falseAccusationBound ?? 1)}`,
      `  evidence by channel: ${a.evidence.map((e) => `${e.channel} ${e.matched}/${e.read} match`).join(', ')}`,
    );
  }
  lines.push(
    '',
    'Suspects, highest score first:',
    `  ${'#'.padStart(3)}  ${'score'.padStart(8)}  ${'matches'.padStart(9)}  ${'bound'.padEnd(8)}  recipient`,
  );
  for (const s of t.suspects) {
    lines.push(
      `  ${String(s.rank).padStart(3)}  ${score(s.score).padStart(8)}  ${`${s.matches}/${t.leak.read}`.padStart(9)}  ${(s.falseAccusationBound === undefined ? '' : prob(s.falseAccusationBound)).padEnd(8)}  ${s.name}${s.accused ? '   ACCUSED' : ''}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
