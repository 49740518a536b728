/**
 * The main job (`npm run demo`, `valise demo`): a ministry with headquarters, a records office and
 * three embassies, run through the very functions behind the commands (org init, person add,
 * office add|assign, device enrol, register, send, send --fingerprint, inbox, read, trace,
 * safety-number, revoke), against a real relay on SQLite in a temporary folder on a free port,
 * with every step narrated.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attacks, deterministicRandomForTesting, getProvider, planMarks, readMarks, removeMarks, toHex } from '@valise/protocol';
import { useNodeCrypto } from '@valise/protocol/node';
import type { CommandContext } from './context.js';
import { DEMO_ARABIC_CIRCULAR } from './demo-circular.js';
import { CliError, toCliError } from './errors.js';
import { inbox, read, register, safetyNumberCmd, send, status } from './messaging.js';
import { deviceEnrol, officeAdd, officeAssign, orgInit, personAdd, revoke } from './org.js';
import { fixedPassphrases } from './passphrase.js';
import { relayServe } from './relay-serve.js';
import type { ScryptParams } from './secure-file.js';
import { formatEpsilon, trace } from './tracing.js';

export interface DemoOptions {
  say?: (line: string) => void;
  /** Keep the temporary folder (homes, bundles, relay database) and return its path. */
  keep?: boolean;
  /** scrypt cost of the demo's homes and bundles (default N = 2^13, to run in seconds; the CLI uses 2^15). */
  kdf?: ScryptParams;
}

export interface DemoResult {
  folder: string;
  received: { unit: string; subject: string; from: string }[];
  refusedAfterRevocation: string;
  plaintextOnRelay: boolean;
  /** The fingerprinted circular: copies, the leak and its trace. */
  fingerprint: {
    marks: number;
    /** Every embassy's copy differs from every other, and each is the original once its marks are removed. */
    copiesDistinct: boolean;
    copiesStripToOriginal: boolean;
    /** Only the records office received the tracing record (and no embassy). */
    recordOnlyAtRecordsOffice: boolean;
    leaker: string;
    leakCharacters: number;
    accused: string[];
    threshold: number | null;
    score: number;
    falseAccusationBound: number;
    /** Who tracing the unmarked original accuses (nobody). */
    originalAccused: string[];
  };
  ms: number;
}

const DEMO_KDF: ScryptParams = { logN: 13, r: 8, p: 1 };

const CIRCULAR = `CIRCULAR 7/2026 - CONSULAR FEES

To all Heads of Mission.

1. The revised schedule of consular fees enters into force on 1 March 2026.
2. Missions are to display it in their consular sections from that date.
3. Please confirm receipt and report any local difficulty by 20 February.

The Head of Registry
`;

export async function runDemo(opts: DemoOptions = {}): Promise<DemoResult> {
  useNodeCrypto();
  const say = opts.say ?? ((line: string) => process.stdout.write(`${line}\n`));
  const t0 = performance.now();
  const folder = mkdtempSync(join(tmpdir(), 'valise-demo-'));
  const step = (n: number, text: string) => say(`\n[${n}] ${text}`);
  const ms = () => `${(performance.now() - t0).toFixed(0)} ms`;
  const kdf = opts.kdf ?? DEMO_KDF;
  const ctxFor = (name: string): CommandContext => ({
    home: join(folder, name),
    passphrases: fixedPassphrases(`demo passphrase of ${name}`, 'demo bundle passphrase'),
    kdf,
    now: () => Math.floor(Date.now() / 1000),
  });
  const hq = ctxFor('headquarters');
  const records = ctxFor('records-office');
  const cities = ['Paris', 'Nairobi', 'Jakarta'] as const;
  const embassy = Object.fromEntries(cities.map((c) => [c, ctxFor(`embassy-${c.toLowerCase()}`)])) as Record<
    (typeof cities)[number],
    CommandContext
  >;
  let relay: Awaited<ReturnType<typeof relayServe>> | undefined;

  try {
    say('Valise demo: a Ministry of Foreign Affairs, its headquarters and three embassies.');
    say(`Everything happens in ${folder}: one home folder per post, a relay on SQLite.`);

    step(1, 'Headquarters: the registrar creates the organisation root key  (valise org init)');
    const org = await orgInit(hq);
    say(`    organisation ${org.orgId}`);
    say(`    root public key written to ${org.rootFile}; revocation list 1 issued (empty)`);
    say('    the root secret key stays in the registrar’s home, encrypted under a passphrase (scrypt + XChaCha20-Poly1305)');

    step(2, 'The relay starts on a free port, configured with the root public key  (valise relay serve)');
    relay = await relayServe({
      data: join(folder, 'relay-data'),
      orgRoot: org.rootFile,
      port: 0,
      logLevel: 'silent',
      revocation: org.revocationFile,
    });
    say(`    ${relay.url}  (SQLite in ${join(folder, 'relay-data')}; it accepts only devices certified under this root)`);

    step(3, 'The registrar certifies people; each gets an identity key in an enrolment bundle  (valise person add)');
    const registrar = await personAdd(hq, { name: 'Amina Diallo', title: 'Head of Registry', unit: 'Headquarters' });
    say(`    ${registrar.name.padEnd(18)} ${registrar.title.padEnd(18)} ${registrar.unit.padEnd(20)} ${registrar.personId}`);
    const archivist = await personAdd(hq, { name: 'Layla Haddad', title: 'Records Officer', unit: 'Headquarters' });
    say(`    ${archivist.name.padEnd(18)} ${archivist.title.padEnd(18)} ${archivist.unit.padEnd(20)} ${archivist.personId}`);
    const ambassadors: Record<string, Awaited<ReturnType<typeof personAdd>>> = {};
    const names = { Paris: 'Claire Dubois', Nairobi: 'Wanjiru Kamau', Jakarta: 'Budi Santoso' };
    for (const city of cities) {
      const p = await personAdd(hq, { name: names[city], title: 'Ambassador', unit: `Embassy in ${city}` });
      ambassadors[city] = p;
      say(`    ${p.name.padEnd(18)} ${p.title.padEnd(18)} ${p.unit.padEnd(20)} ${p.personId}`);
    }

    step(4, 'Offices: the Records Office and, for each embassy, a Head of Mission; holders are appointed  (valise office add / assign)');
    const recordsOffice = await officeAdd(hq, { title: 'Records Office', unit: 'Headquarters', recordsOffice: true });
    await officeAssign(hq, { office: recordsOffice.officeId, person: archivist.personId });
    say(
      `    ${`${recordsOffice.title}, ${recordsOffice.unit}`.padEnd(36)} held by ${archivist.name}; designated the records office (--records-office):`,
    );
    say('                                         it will hold the tracing records of fingerprinted items');
    const offices: Record<string, string> = {};
    for (const city of cities) {
      const o = await officeAdd(hq, { title: 'Head of Mission', unit: `Embassy in ${city}` });
      offices[city] = o.officeId;
      const a = await officeAssign(hq, { office: o.officeId, person: (ambassadors[city] as { personId: string }).personId });
      say(`    ${`${o.title}, ${o.unit}`.padEnd(36)} held by ${a.name}`);
    }

    step(5, "Each person's identity key certifies a device (Ed25519 signing key + X-Wing encryption key)  (valise device enrol)");
    const hqDevice = await deviceEnrol(hq, { person: registrar.personId, label: 'registry workstation' });
    say(`    ${hqDevice.name.padEnd(18)} "${hqDevice.label}"  device certificate ${hqDevice.certId}`);
    const recordsDevice = await deviceEnrol(hq, { person: archivist.personId, label: 'records office workstation' });
    say(`    ${recordsDevice.name.padEnd(18)} "${recordsDevice.label}"  device certificate ${recordsDevice.certId}`);
    const bundles: Record<string, string> = {};
    for (const city of cities) {
      const d = await deviceEnrol(hq, {
        person: (ambassadors[city] as { personId: string }).personId,
        label: `laptop, Embassy in ${city}`,
      });
      bundles[city] = d.bundle;
      say(`    ${d.name.padEnd(18)} "${d.label}"  device certificate ${d.certId}`);
    }
    say('    each device bundle is encrypted under a passphrase and handed to its device');

    step(6, 'Each device imports its bundle and publishes its certificates to the relay directory  (valise register)');
    const r0 = await register(hq, { bundle: hqDevice.bundle, relay: relay.url });
    say(`    ${r0.unit.padEnd(20)} registered; revocation list ${r0.revocationSequence}`);
    const rr = await register(records, { bundle: recordsDevice.bundle, relay: relay.url });
    say(`    ${'Records Office'.padEnd(20)} registered; home ${records.home} (${rr.name})`);
    for (const city of cities) {
      const r = await register(embassy[city], { bundle: bundles[city] as string, relay: relay.url });
      say(`    ${r.unit.padEnd(20)} registered; home ${embassy[city].home}`);
    }

    step(7, 'Headquarters sends a confidential circular to the three Heads of Mission  (valise send)');
    const sent = await send(hq, {
      to: cities.map((c) => `Head of Mission, Embassy in ${c}`),
      subject: 'Circular 7/2026: consular fees',
      classification: 'CONFIDENTIAL',
      body: new TextEncoder().encode(CIRCULAR),
    });
    const env = sent.envelopes[0] as SendEnvelope;
    say(
      `    recipients looked up in the relay directory, every chain verified against the root and revocation list ${r0.revocationSequence}`,
    );
    say(`    sealed once: envelope ${env.envelopeId}, ${env.bytes} bytes, one key wrap (X-Wing) per device, body encrypted once`);
    say(`    one Send frame; the relay answered Stored (durable) as message ${env.messageId}`);
    say('    the relay sees mailbox ids and a padded size: no sender, no subject, no names');

    step(8, 'Each embassy fetches its inbox, opens the envelope and verifies who sent it  (valise inbox, valise read)');
    const received: DemoResult['received'] = [];
    for (const city of cities) {
      const box = await inbox(embassy[city]);
      const item = box.items[box.items.length - 1];
      if (item === undefined) throw new Error(`nothing arrived in ${city}`);
      const r = await read(embassy[city], { id: String(item.n) });
      const firstLine = new TextDecoder().decode(r.body).split('\n')[0];
      received.push({ unit: `Embassy in ${city}`, subject: r.item.subject, from: r.item.sender.name });
      say(
        `    Embassy in ${city.padEnd(8)} ${box.fetched?.new} new: "${r.item.subject}" [${r.item.classification}] from ${r.item.sender.name} (${r.item.sender.title}, ${r.item.sender.unit}), signature verified`,
      );
      say(`                        ${firstLine}`);
    }
    const again = await inbox(embassy.Paris);
    say(`    Paris fetches again: ${again.fetched?.new} new, ${again.items.length} item in total (each item is seen exactly once)`);

    step(9, "What the relay holds: its database files searched for the circular's subject and text");
    const plaintextOnRelay = relayHolds(
      join(folder, 'relay-data'),
      ['Circular 7/2026', 'CONSULAR FEES', 'consular sections'].map((s) => new TextEncoder().encode(s)),
    );
    say(
      `    found: ${plaintextOnRelay ? 'YES (this is a bug)' : 'nothing (the relay stores sealed envelopes, and certificates for its directory)'}`,
    );

    step(10, 'The ambassador in Paris and the registrar compare safety numbers by phone  (valise safety-number)');
    const sn = await safetyNumberCmd(embassy.Paris, { with: registrar.personId });
    say(`    ${sn.formatted}`);
    say(`    QR payload ${sn.qrPayload.slice(0, 32)}...`);

    step(
      11,
      'Headquarters sends a CONFIDENTIAL circular, fingerprinted: each embassy gets its own marked copy  (valise send --fingerprint)',
    );
    const fsent = await send(hq, {
      to: cities.map((c) => `Head of Mission, Embassy in ${c}`),
      subject: 'Circular 8/2026: consular procedures',
      classification: 'CONFIDENTIAL',
      body: new TextEncoder().encode(DEMO_ARABIC_CIRCULAR),
      // With three recipients a coalition of three is everyone: design against two colluding embassies.
      fingerprint: { coalition: 2 },
    });
    const fp = fsent.fingerprint;
    if (fp === undefined) throw new Error('not fingerprinted');
    const rep = fp.report;
    const perChannel = Object.entries(rep.perChannel)
      .map(([ch, n]) => `${ch} ${n}`)
      .join(', ');
    say(
      `    the text: the consular circular, in Arabic, ${DEMO_ARABIC_CIRCULAR.length} characters (${new TextEncoder().encode(DEMO_ARABIC_CIRCULAR).length} bytes)`,
    );
    say(`    ${rep.marks} marks placed (${perChannel}), one position of a Tardos code each`);
    say(
      `    capacity at ε = ${formatEpsilon(rep.epsilon)}: coalitions of up to ${rep.maxCoalition.whole} traced from a whole copy, ` +
        `${rep.maxCoalition.half} from half a copy, ${rep.maxCoalition.robust} after a PDF copy (target ${rep.c}: ${rep.meetsTarget ? 'met' : 'NOT met'})`,
    );
    for (const w of rep.warnings) say(`    warning: ${w}`);
    const fenv = fsent.envelopes[0] as SendEnvelope;
    say(`    item envelope ${fenv.envelopeId}: ${fenv.bytes} bytes; each embassy's copy sealed in its own entry (the personal payload)`);
    const renv = fp.record.envelopes[0];
    say(
      `    tracing record (key, recipients, original text) kept in the registrar's home and sealed for the ${fp.record.recordsOffice?.title ?? 'records office'}` +
        `${renv === undefined ? '' : `: envelope ${renv.envelopeId}, ${renv.bytes} bytes`}`,
    );
    say('    the relay sees two ordinary envelopes; the embassies never receive the record');

    step(12, 'Each embassy reads its copy: the same words on screen, a different copy underneath  (valise inbox, valise read)');
    const plan = planMarks(DEMO_ARABIC_CIRCULAR);
    const copies: Record<string, string> = {};
    let recordAtEmbassy = false;
    for (const city of cities) {
      const box = await inbox(embassy[city]);
      recordAtEmbassy ||= box.items.some((i) => i.tracing !== undefined) || (box.fetched?.new ?? 0) !== 1;
      const item = box.items[box.items.length - 1];
      if (item === undefined) throw new Error(`nothing arrived in ${city}`);
      const r = await read(embassy[city], { id: String(item.n) });
      const copy = new TextDecoder().decode(r.body);
      copies[city] = copy;
      const digest = toHex(getProvider().sha256(r.body)).slice(0, 16);
      say(
        `    Embassy in ${city.padEnd(8)} "${r.item.subject}" [${r.item.classification}], ${r.fingerprinted ? 'personal copy' : 'shared body'}, ` +
          `${r.body.length} bytes, SHA-256 ${digest}…`,
      );
      say(`                        ${copy.split('\n').slice(0, 2).join('  /  ')}`);
    }
    const [pc, nc, jc] = cities.map((c) => copies[c] as string) as [string, string, string];
    const differ = (a: string, b: string) => {
      const x = readMarks(plan, a);
      const y = readMarks(plan, b);
      return x.reduce((n, v, i) => n + (v !== y[i] ? 1 : 0), 0);
    };
    const copiesDistinct = pc !== nc && nc !== jc && pc !== jc;
    const copiesStripToOriginal = cities.every((c) => removeMarks(copies[c] as string, plan) === DEMO_ARABIC_CIRCULAR);
    say(
      `    the copies differ at ${differ(pc, nc)} (Paris/Nairobi), ${differ(pc, jc)} (Paris/Jakarta) and ${differ(nc, jc)} (Nairobi/Jakarta) ` +
        `of ${rep.marks} marking points:`,
    );
    say('    zero-width spaces, optional letter elongations (kashida) and look-alike letter forms; the words are the same');
    say(`    with the marks removed, each copy is the original byte for byte: ${copiesStripToOriginal ? 'yes' : 'NO (this is a bug)'}`);

    step(13, 'The Embassy in Nairobi leaks: its copy is printed to PDF, and about half of it is copied out and posted online');
    const leak = attacks.excerpt(attacks.pdfCopy(nc), 0.5, deterministicRandomForTesting('valise demo: the leak'));
    say(
      `    leaked text: ${leak.length} characters of ${nc.length}, taken from the PDF's text layer (Unicode NFKC, zero-width marks lost, lines re-wrapped):`,
    );
    say(`        ${leak.replace(/\s+/g, ' ').slice(0, 110)}…`);

    step(14, 'The Records Office fetches the tracing record and traces the leak  (valise inbox, valise trace)');
    const rbox = await inbox(records);
    const recordItem = rbox.items.find((i) => i.tracing?.itemId === fp.itemId);
    if (recordItem === undefined) throw new Error('the records office has no tracing record');
    say(`    Records Office inbox: "${recordItem.subject}" [${recordItem.classification}] from ${recordItem.from}, signature verified`);
    const t = await trace(records, { item: String(recordItem.n), leak });
    const readBy = t.leak.channels
      .filter((c) => c.points > 0)
      .map((c) => `${c.channel} ${c.read}/${c.points}`)
      .join(', ');
    say(`    ${t.leak.read} of ${t.leak.positions} marking positions read from the leak (${readBy})`);
    say(
      t.threshold === null
        ? '    threshold: none: too little was read to accuse anyone'
        : `    threshold: a score of ${t.threshold.toFixed(1)} accuses; the chance of accusing anyone innocent is at most ε = ${formatEpsilon(t.epsilon)}`,
    );
    for (const a of t.accused) {
      say(`    ACCUSED: ${a.name}: score ${a.score.toFixed(1)} (${a.matches} of ${t.leak.read} read positions match this embassy's copy)`);
      say(
        `             probability that an innocent recipient would score this high: at most ${(a.falseAccusationBound ?? 1).toExponential(1)}`,
      );
    }
    const others = t.suspects.filter((x) => !x.accused);
    if (others.length > 0)
      say(`    the others score ${others.map((x) => `${x.score.toFixed(1)} (${x.name})`).join(', ')}: below the threshold`);
    const clean = await trace(records, { item: String(recordItem.n), leak: DEMO_ARABIC_CIRCULAR });
    say(`    the unmarked original, traced the same way: ${clean.verdict}`);
    const top = t.accused[0];

    step(15, 'Jakarta reports its laptop stolen: the registrar revokes the device and publishes the list  (valise revoke --relay)');
    const jakartaDevice = await deviceEnrolCertOf(embassy.Jakarta);
    const rv = await revoke(hq, { certs: [jakartaDevice], relay: relay.url });
    say(`    revocation list ${rv.sequence} revokes ${rv.revoked.map((x) => x.what).join(', ')}; published to the relay`);
    let refused = '';
    try {
      await send(hq, {
        to: ['Head of Mission, Embassy in Jakarta'],
        subject: 'Follow-up',
        classification: 'CONFIDENTIAL',
        body: new TextEncoder().encode('...'),
      });
      refused = 'NOT REFUSED (this is a bug)';
    } catch (err) {
      const e = err instanceof CliError ? err : toCliError(err);
      refused = e.message;
    }
    say(`    a new item for Jakarta is refused before sealing: ${refused}`);

    say(`\nDone in ${ms()}.`);
    return {
      folder,
      received,
      refusedAfterRevocation: refused,
      plaintextOnRelay,
      fingerprint: {
        marks: rep.marks,
        copiesDistinct,
        copiesStripToOriginal,
        recordOnlyAtRecordsOffice: !recordAtEmbassy,
        leaker: 'Embassy in Nairobi',
        leakCharacters: leak.length,
        accused: t.accused.map((a) => a.name),
        threshold: t.threshold,
        score: top?.score ?? 0,
        falseAccusationBound: top?.falseAccusationBound ?? 1,
        originalAccused: clean.accused.map((a) => a.name),
      },
      ms: performance.now() - t0,
    };
  } finally {
    await relay?.close();
    if (!opts.keep) rmSync(folder, { recursive: true, force: true });
  }
}

type SendEnvelope = { envelopeId: string; messageId: string; bytes: number; devices: number };

async function deviceEnrolCertOf(ctx: CommandContext): Promise<string> {
  const s = await status(ctx);
  if (s.device === undefined) throw new Error('no device');
  return s.device.deviceCertId;
}

/** True if any file of the relay's data folder contains one of the needles. */
function relayHolds(dir: string, needles: Uint8Array[]): boolean {
  for (const name of readdirSync(dir)) {
    const bytes = readFileSync(join(dir, name));
    for (const n of needles) if (bytes.indexOf(n) >= 0) return true;
  }
  return false;
}
