/**
 * The `valise` command line (spec/cli.md): commander definitions, human and `--json` output,
 * and the mapping of every failure to a message, a hint and an exit code.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { useNodeCrypto } from '@valise/protocol/node';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { CommandContext } from './context.js';
import { nowSeconds } from './context.js';
import { CliError, ExitCode, toCliError, usageError } from './errors.js';
import { resolveHomeDir } from './home.js';
import {
  directoryImport,
  directorySearch,
  type InboxResult,
  inbox,
  type ReadResult,
  read,
  register,
  type SendResult,
  safetyNumberCmd,
  send,
  status,
} from './messaging.js';
import {
  deviceEnrol,
  officeAdd,
  officeAssign,
  officeExport,
  officeList,
  orgInit,
  personAdd,
  personList,
  revocationPublish,
  revoke,
} from './org.js';
import { defaultPassphraseSource, type PassphraseSource } from './passphrase.js';
import { DEFAULT_SCRYPT } from './secure-file.js';
import { parseChannels, parseEpsilon, renderCapacity, renderTrace, trace, traceList } from './tracing.js';

export const VERSION = '0.1.0';

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** The whole of standard input (for `send` without --file). */
  readStdin(): Promise<Uint8Array>;
  stdinIsTTY: boolean;
  env: NodeJS.ProcessEnv;
  passphrases?: PassphraseSource;
  /** Resolves when the process is asked to stop (SIGINT/SIGTERM), for `relay serve`. */
  untilSignal(): Promise<void>;
}

export const processIo: CliIo = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  readStdin: async () => {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    const b = Buffer.concat(chunks);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  },
  stdinIsTTY: process.stdin.isTTY === true,
  env: process.env,
  // Only `relay serve` waits for a signal, and it loads the relay anyway; other commands do not.
  untilSignal: () => import('./relay-serve.js').then((m) => m.untilStopSignal()),
};

// ---------------------------------------------------------------------------------------------
// Formatting

const date = (s: number) => `${new Date(s * 1000).toISOString().slice(0, 16).replace('T', ' ')}Z`;
const pad = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s.padEnd(n));

function intArg(what: string, min: number, max: number) {
  return (value: string) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`expected ${what} from ${min} to ${max}`);
    return n;
  };
}
const collect = (value: string, previous: string[] = []) => [...previous, value];

function renderInbox(r: InboxResult): string {
  const lines: string[] = [];
  if (r.fetched !== null) {
    const f = r.fetched;
    lines.push(
      `Fetched ${f.new} new item${f.new === 1 ? '' : 's'}` +
        (f.duplicates || f.rejected || f.held ? ` (${f.duplicates} duplicate, ${f.rejected} rejected, ${f.held} left on the relay)` : '') +
        '.',
    );
  }
  if (r.items.length === 0) lines.push('No items.');
  else {
    lines.push(`  ${pad('#', 4)} ${pad('received', 18)} ${pad('from', 36)} ${pad('classification', 15)} subject`);
    for (const i of r.items) {
      const from = i.office === undefined ? `${i.from}, ${i.fromUnit}` : `${i.office} (${i.from})`;
      lines.push(
        `${i.read ? ' ' : '*'} ${pad(String(i.n), 4)} ${pad(date(i.receivedAt), 18)} ${pad(from, 36)} ${pad(i.classification, 15)} ${i.subject}`,
      );
    }
    lines.push('(* unread; `valise read N` shows item N)');
  }
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  return `${lines.join('\n')}\n`;
}

function isText(contentType: string, body: Uint8Array): string | undefined {
  if (!/^text\//i.test(contentType)) return undefined;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    return undefined;
  }
}

function renderRead(r: ReadResult, outFile: string | undefined): string {
  const i = r.item;
  const s = i.sender;
  const lines = [
    `Item ${i.n}   envelope ${i.envelopeId}`,
    `From:            ${s.name} (${s.title}, ${s.unit})${s.office ? ` for ${s.office.title}, ${s.office.unit}` : ''}, device "${s.deviceLabel}"`,
    `To:              ${i.distribution.map((d) => d.name).join('; ') || '(not stated)'}`,
    `Written:         ${date(i.createdAt)} (sender's clock)`,
    `Received:        ${date(i.receivedAt)}`,
    `Classification:  ${i.classification}`,
    `Subject:         ${i.subject}`,
    'Signature:       verified: signed by the sender device, certified by the person, certified by the organisation root',
    ...(r.fingerprinted ? ['Copy:            personal: this copy is marked for you, and a leak of it can be traced to you'] : []),
    '',
  ];
  const text = isText(i.contentType, r.body);
  if (outFile !== undefined) lines.push(`(body, ${r.body.length} bytes, written to ${outFile})`);
  else if (text !== undefined) lines.push(text.endsWith('\n') ? text.slice(0, -1) : text);
  else lines.push(`(${i.contentType} body of ${r.body.length} bytes: use --out FILE to save it)`);
  return `${lines.join('\n')}\n`;
}

function renderSend(r: SendResult): string {
  const devices = `${r.devices} device${r.devices === 1 ? '' : 's'}`;
  const env = (e: SendResult['envelopes'][number]) =>
    `  envelope ${e.envelopeId}: ${e.bytes} bytes, stored by the relay as message ${e.messageId}`;
  const lines = [`Sent "${r.subject}" [${r.classification}] to ${r.recipients.map((t) => t.name).join('; ')} (${devices}).`];
  lines.push(...r.envelopes.map(env));
  const f = r.fingerprint;
  if (f !== undefined) {
    lines.push(
      `Fingerprinted: ${f.recipients.length === 1 ? 'the recipient' : `each of the ${f.recipients.length} recipients`} got a marked copy of its own ` +
        `(item ${f.itemId}; trace a leak with: valise trace --item ${f.itemId} FILE)`,
      ...renderCapacity(f.report).filter((l) => !l.startsWith('  warning:')),
    );
    const office = f.record.recordsOffice;
    lines.push(
      `Tracing record: kept in this home; sealed for ${office === undefined ? 'no records office' : `the records office (${office.title}, ${office.unit})`}` +
        ` and your other devices (${f.record.devices} device${f.record.devices === 1 ? '' : 's'} in all); recipients never receive it`,
      ...f.record.envelopes.map(env),
    );
  }
  lines.push(...r.warnings.map((w) => `warning: ${w}`));
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// Program

interface GlobalOptions {
  home?: string;
  json?: boolean;
  timeout?: number;
}

export function buildProgram(io: CliIo, onResult: (json: boolean, result: unknown, human: string) => void): Command {
  const program = new Command('valise');
  program
    .description('Sealed, leak-traceable correspondence for organisations: administration, enrolment, sending and receiving.')
    .version(VERSION, '-V, --version')
    .option('--home <dir>', 'home folder (default: $VALISE_HOME, else ~/.valise)')
    .option('--json', 'print the result as one JSON object, for scripts')
    .addOption(new Option('--timeout <ms>', 'relay connection and request timeout').argParser(intArg('milliseconds', 100, 600_000)))
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .showHelpAfterError('(add --help for usage)')
    .addHelpText(
      'after',
      `
Passphrases: the home is unlocked with $VALISE_PASSPHRASE, bundles with $VALISE_BUNDLE_PASSPHRASE;
without them valise asks on the terminal.

Exit codes: 0 ok, 1 unexpected failure, 2 bad arguments, 3 wrong or missing passphrase, 4 not found,
5 verification failed, 6 relay unreachable or refused, 7 damaged file, 8 conflict with existing state.`,
    );

  const ctxOf = (cmd: Command): CommandContext & { json: boolean } => {
    const g = cmd.optsWithGlobals() as GlobalOptions;
    const ctx: CommandContext & { json: boolean } = {
      home: resolveHomeDir(g.home, io.env),
      passphrases: io.passphrases ?? defaultPassphraseSource(io.env),
      now: nowSeconds,
      json: g.json === true,
      note: (line) => io.err(`${line}\n`),
    };
    if (g.timeout !== undefined) ctx.timeoutMs = g.timeout;
    // scrypt cost of new homes and bundles; lowering it weakens them (meant for tests). Existing files keep theirs.
    const logN = io.env.VALISE_SCRYPT_LOG_N;
    if (logN !== undefined && logN !== '') {
      const n = Number(logN);
      if (!Number.isInteger(n) || n < 10 || n > 20)
        throw usageError(`VALISE_SCRYPT_LOG_N: expected a whole number from 10 to 20, got "${logN}"`);
      ctx.kdf = { ...DEFAULT_SCRYPT, logN: n };
    }
    return ctx;
  };

  // org ---------------------------------------------------------------------------------------
  const org = program.command('org').description('organisation administration');
  org
    .command('init')
    .description('create the organisation root key in this home and write its public key for the relay')
    .option('--out <file>', 'where to write the root public key (default: <home>/org-root.pub)')
    .option('--force', 'overwrite --out if it exists')
    .addOption(new Option('--revocation-days <n>', 'validity of the first revocation list').argParser(intArg('days', 1, 36500)))
    .action(async (o: { out?: string; force?: boolean; revocationDays?: number }, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const r = await orgInit(ctx, o);
      onResult(
        ctx.json,
        r,
        `Organisation ${r.orgId} created in ${r.home}.\n` +
          `  root public key   ${r.rootPublicKey}\n` +
          `                    written to ${r.rootFile}: start the relay with  valise relay serve --org-root ${r.rootFile} --data DIR\n` +
          `  revocation list   ${r.revocationSequence} (${r.revocationFile})\n` +
          'This home now holds the organisation root key: keep it offline and backed up.\n',
      );
    });

  // person ------------------------------------------------------------------------------------
  const person = program.command('person').description('people of the organisation');
  person
    .command('add')
    .description("certify a person: generates the person's identity key and writes their enrolment bundle")
    .requiredOption('--name <name>', 'full name, e.g. "Alice Martin"')
    .requiredOption('--title <title>', 'e.g. "Ambassador"')
    .requiredOption('--unit <unit>', 'department or mission, e.g. "Embassy in Paris"')
    .addOption(new Option('--valid-days <n>', 'validity of the certificate (default 730)').argParser(intArg('days', 1, 36500)))
    .option('--out <file>', 'where to write the enrolment bundle (default: <home>/bundles/person-ID.valise)')
    .action(async (o: { name: string; title: string; unit: string; validDays?: number; out?: string }, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const r = await personAdd(ctx, o);
      onResult(
        ctx.json,
        r,
        `Person added: ${r.name}, ${r.title}, ${r.unit}\n` +
          `  person id         ${r.personId}\n` +
          `  certificate       ${r.certId}, valid until ${date(r.validUntil)}\n` +
          `  enrolment bundle  ${r.bundle}\n` +
          `Next: valise device enrol --person ${r.personId} --label LABEL\n`,
      );
    });
  person
    .command('list')
    .description('list the people this home has certified')
    .action(async (_o: unknown, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const r = await personList(ctx);
      const lines = r.people.map(
        (p) => `${p.personId}  ${pad(p.name, 28)} ${pad(p.title, 20)} ${pad(p.unit, 24)}${p.revoked ? ' REVOKED' : ''}`,
      );
      onResult(ctx.json, r, `${lines.length === 0 ? 'No people yet (valise person add).' : lines.join('\n')}\n`);
    });

  // office ------------------------------------------------------------------------------------
  const office = program.command('office').description('offices (e.g. Head of Mission) and who holds them');
  office
    .command('add')
    .description('certify an office')
    .requiredOption('--title <title>', 'e.g. "Head of Mission"')
    .requiredOption('--unit <unit>', 'e.g. "Embassy in Paris"')
    .addOption(new Option('--valid-days <n>', 'validity (default 1825)').argParser(intArg('days', 1, 36500)))
    .option('--records-office', "designate it the organisation's records office: it receives the tracing records of fingerprinted items")
    .action(async (o: { title: string; unit: string; validDays?: number; recordsOffice?: boolean }, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const r = await officeAdd(ctx, o);
      onResult(
        ctx.json,
        r,
        `Office added: ${r.title}, ${r.unit}${r.recordsOffice ? ' (the records office)' : ''}\n  office id  ${r.officeId}\n` +
          `Next: valise office assign --office ${r.officeId} --person PERSON_ID\n`,
      );
    });
  office
    .command('assign')
    .description('appoint a person to an office (office holder certificate)')
    .requiredOption('--office <id>', 'office id (valise office list)')
    .requiredOption('--person <id>', 'person id (valise person list)')
    .addOption(new Option('--valid-days <n>', 'length of the appointment (default 730)').argParser(intArg('days', 1, 36500)))
    .action(async (o: { office: string; person: string; validDays?: number }, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const r = await officeAssign(ctx, o);
      onResult(
        ctx.json,
        r,
        `${r.name} now holds ${r.title}, ${r.unit} until ${date(r.validUntil)}\n  holder certificate  ${r.certId}\n` +
          'Devices enrolled from now on carry it; give existing ones the directory: valise office export --out FILE, then valise directory import FILE\n',
      );
    });
  office
    .command('list')
    .description('list offices and their holders')
    .action(async (_o: unknown, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const r = await officeList(ctx);
      const lines = r.offices.map(
        (o) =>
          `${o.officeId}  ${o.title}, ${o.unit}${o.recordsOffice ? ' (records office)' : ''}: ${o.holders.map((h) => h.name).join(', ') || '(vacant)'}`,
      );
      onResult(ctx.json, r, `${lines.length === 0 ? 'No offices yet (valise office add).' : lines.join('\n')}\n`);
    });
  office
    .command('export')
    .description('write the public office directory (office and holder certificates) for clients')
    .requiredOption('--out <file>', 'file to write')
    .action(async (o: { out: string }, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const r = await officeExport(ctx, o);
      onResult(ctx.json, r, `Wrote ${r.offices} offices and ${r.holders} appointments to ${r.file}\n`);
    });

  // device ------------------------------------------------------------------------------------
  const device = program.command('device').description('devices of people');
  device
    .command('enrol')
    .description("generate a device's keys, certify them with the person's identity key, and write the device bundle")
    .requiredOption('--person <id>', 'person id (valise person list)')
    .requiredOption('--label <label>', 'e.g. "registry workstation"')
    .option('--identity <file>', "the person's enrolment bundle (default: the one person add wrote)")
    .addOption(new Option('--kem <kem>', 'encryption key type').choices(['xwing', 'x25519']).default('xwing'))
    .addOption(new Option('--valid-days <n>', 'validity (default 365)').argParser(intArg('days', 1, 36500)))
    .option('--out <file>', 'where to write the device bundle (default: <home>/bundles/device-CERTID.valise)')
    .action(
      async (
        o: { person: string; label: string; identity?: string; kem?: 'xwing' | 'x25519'; validDays?: number; out?: string },
        cmd: Command,
      ) => {
        const ctx = ctxOf(cmd);
        const r = await deviceEnrol(ctx, o);
        onResult(
          ctx.json,
          r,
          `Device enrolled for ${r.name}: "${r.label}" (${r.kem})\n` +
            `  device certificate  ${r.certId}, valid until ${date(r.validUntil)}\n` +
            `  device bundle       ${r.bundle}\n` +
            `Hand the bundle and its passphrase to the device, which runs: valise register --bundle FILE --relay URL\n`,
        );
      },
    );

  // revoke ------------------------------------------------------------------------------------
  program
    .command('revoke')
    .description('issue the next revocation list, adding certificates (or reissue it unchanged if none given)')
    .option('--cert <id>', 'certificate id, or a person, office or device id (repeatable)', collect, [])
    .option('--relay <url>', 'publish the list to this relay (through a device registered in this home)')
    .addOption(new Option('--valid-days <n>', 'the list is stale after this many days (default 30)').argParser(intArg('days', 1, 36500)))
    .action(async (o: { cert: string[]; relay?: string; validDays?: number }, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const r = await revoke(ctx, {
        certs: o.cert,
        ...(o.relay === undefined ? {} : { relay: o.relay }),
        ...(o.validDays === undefined ? {} : { validDays: o.validDays }),
      });
      onResult(
        ctx.json,
        r,
        `Revocation list ${r.sequence} (${r.total} certificate${r.total === 1 ? '' : 's'}), valid until ${date(r.nextUpdate)}, written to ${r.file}\n` +
          r.revoked.map((x) => `  revoked ${x.certId}  ${x.what}\n`).join('') +
          (r.published
            ? `Published to ${r.relay}.\n`
            : 'Not published: pass --relay URL, or run `valise revocation publish FILE` on a client.\n'),
      );
    });
  const revocation = program.command('revocation').description('revocation lists');
  revocation
    .command('publish')
    .description('publish a revocation list file to the relay through this home’s device')
    .argument('<file>', 'revocation list written by `valise revoke`')
    .option('--relay <url>', 'relay (default: the one this home registered with)')
    .action(async (file: string, o: { relay?: string }, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const r = await revocationPublish(ctx, { file, ...(o.relay === undefined ? {} : { relay: o.relay }) });
      onResult(ctx.json, r, `Revocation list ${r.sequence} published to ${r.relay}\n`);
    });

  // register ----------------------------------------------------------------------------------
  program
    .command('register')
    .description('import a device bundle into this home and publish the certificates to the relay directory')
    .requiredOption('--bundle <file>', 'device bundle from `valise device enrol`')
    .requiredOption('--relay <url>', 'relay URL, e.g. http://relay.example:8443')
    .action(async (o: { bundle: string; relay: string }, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const r = await register(ctx, o);
      onResult(
        ctx.json,
        r,
        `Registered ${r.name} (${r.title}, ${r.unit}), device "${r.label}", with ${r.relay}\n` +
          `  person id           ${r.personId}\n  device certificate  ${r.deviceCertId}\n  organisation        ${r.orgId}\n` +
          (r.revocationSequence === undefined ? '' : `  revocation list     ${r.revocationSequence}\n`) +
          r.warnings.map((w) => `warning: ${w}\n`).join(''),
      );
    });

  // send --------------------------------------------------------------------------------------
  program
    .command('send')
    .description('seal an item for people, offices or devices and hand it to the relay')
    .requiredOption('--to <recipient>', 'a name, "Office title, Unit", or a person, office or device id (repeatable)', collect, [])
    .requiredOption('--subject <text>', 'subject line (sealed: the relay never sees it)')
    .option('--classification <text>', 'e.g. CONFIDENTIAL (default UNCLASSIFIED)')
    .option('--file <file>', 'body from this file (- or absent: standard input)')
    .option('--content-type <type>', 'media type of the body (default text/plain; charset=utf-8)')
    .option('--as-office <id>', 'write as this office (you must hold it)')
    .option('--relay <url>', 'relay (default: the one this home registered with)')
    .option('--fingerprint', 'give each recipient person its own invisibly marked copy of the text, traceable if leaked')
    .addOption(
      new Option('--coalition <c>', 'with --fingerprint: colluding recipients to trace (default 3)').argParser(
        intArg('a coalition size', 1, 16),
      ),
    )
    .option('--epsilon <e>', 'with --fingerprint: bound on accusing anyone innocent (default 1e-6)')
    .addOption(
      new Option('--policy <policy>', 'with --fingerprint: below the target coalition, warn (default) or refuse to send').choices([
        'warn',
        'refuse',
      ]),
    )
    .option('--channels <list>', 'with --fingerprint: marking channels, comma-separated (default: all)')
    .option('--records-office <office>', 'with --fingerprint: office that gets the tracing record ("Title, Unit", id, or none)')
    .action(
      async (
        o: {
          to: string[];
          subject: string;
          classification?: string;
          file?: string;
          contentType?: string;
          asOffice?: string;
          relay?: string;
          fingerprint?: boolean;
          coalition?: number;
          epsilon?: string;
          policy?: 'warn' | 'refuse';
          channels?: string;
          recordsOffice?: string;
        },
        cmd: Command,
      ) => {
        const ctx = ctxOf(cmd);
        if (o.to.length === 0) throw usageError('no recipient', 'give --to NAME|ID at least once');
        const fpOnly = (['coalition', 'epsilon', 'policy', 'channels', 'recordsOffice'] as const).filter((k) => o[k] !== undefined);
        if (!o.fingerprint && fpOnly.length > 0)
          throw usageError(
            `--${fpOnly[0]?.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} applies only to fingerprinted items`,
            'add --fingerprint',
          );
        const fingerprint = o.fingerprint
          ? {
              ...(o.coalition === undefined ? {} : { coalition: o.coalition }),
              ...(o.epsilon === undefined ? {} : { epsilon: parseEpsilon(o.epsilon) }),
              ...(o.policy === undefined ? {} : { policy: o.policy }),
              ...(o.channels === undefined ? {} : { channels: parseChannels(o.channels) }),
              ...(o.recordsOffice === undefined ? {} : { recordsOffice: o.recordsOffice }),
            }
          : undefined;
        let body: Uint8Array;
        if (o.file !== undefined && o.file !== '-') body = new Uint8Array(readFileSync(o.file));
        else if (o.file === '-' || !io.stdinIsTTY) {
          body = await io.readStdin();
          // Standard input that was never meant as the body (a script without --file): refuse rather than send nothing.
          if (body.length === 0 && o.file !== '-')
            throw usageError('no body: standard input is empty', 'give --file FILE, or pipe the body on standard input');
        } else throw usageError('no body', 'give --file FILE, or pipe the body on standard input');
        const r = await send(ctx, {
          to: o.to,
          subject: o.subject,
          body,
          ...(o.classification === undefined ? {} : { classification: o.classification }),
          ...(o.contentType === undefined ? {} : { contentType: o.contentType }),
          ...(o.asOffice === undefined ? {} : { asOffice: o.asOffice }),
          ...(o.relay === undefined ? {} : { relay: o.relay }),
          ...(fingerprint === undefined ? {} : { fingerprint }),
        });
        onResult(ctx.json, r, renderSend(r));
      },
    );

  // inbox / read ------------------------------------------------------------------------------
  program
    .command('inbox')
    .description('fetch new items from the relay, store them encrypted in this home, and list them')
    .option('--offline', 'do not contact the relay; list what this home holds')
    .option('--unread', 'list only unread items')
    .addOption(
      new Option(
        '--quiet-ms <ms>',
        'if the relay never says the backlog is complete, stop after this long without a delivery (default 10000)',
      ).argParser(intArg('milliseconds', 50, 600_000)),
    )
    .option('--relay <url>', 'relay (default: the one this home registered with)')
    .action(async (o: { offline?: boolean; unread?: boolean; quietMs?: number; relay?: string }, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const r = await inbox(ctx, {
        fetch: o.offline !== true,
        unread: o.unread === true,
        ...(o.quietMs === undefined ? {} : { quietMs: o.quietMs }),
        ...(o.relay === undefined ? {} : { relay: o.relay }),
      });
      onResult(ctx.json, r, renderInbox(r));
    });
  program
    .command('read')
    .description('show a received item (and mark it read)')
    .argument('<id>', 'item number from `valise inbox`, or an envelope id (prefix)')
    .option('--out <file>', 'write the body to this file')
    .option('--keep-unread', 'do not mark the item read')
    .action(async (id: string, o: { out?: string; keepUnread?: boolean }, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const r = await read(ctx, { id, keepUnread: o.keepUnread === true });
      if (o.out !== undefined) writeFileSync(o.out, r.body, { mode: 0o600 });
      const text = isText(r.item.contentType, r.body);
      const json = {
        item: r.item,
        ...(text === undefined ? { bodyBase64: Buffer.from(r.body).toString('base64') } : { body: text }),
        bodyLength: r.body.length,
        fingerprinted: r.fingerprinted,
      };
      onResult(ctx.json, json, renderRead(r, o.out));
    });

  // trace -------------------------------------------------------------------------------------
  program
    .command('trace')
    .description('trace a leaked text back to the recipient(s) whose marked copy it came from (sender or records office)')
    .argument('[file]', 'the leaked text (- or absent: standard input)')
    .option('--item <id>', 'the fingerprinted item id or envelope id, or the inbox number of its tracing record')
    .option('--list', 'list the tracing records this home holds')
    .action(async (file: string | undefined, o: { item?: string; list?: boolean }, cmd: Command) => {
      const ctx = ctxOf(cmd);
      if (o.list) {
        const r = await traceList(ctx);
        const lines = r.records.map(
          (x) =>
            `${x.itemId}  ${date(x.createdAt)}  ${pad(x.classification, 14)} ${pad(x.from === 'sent' ? 'sent by you' : `inbox item ${x.item} (${x.sender})`, 32)} ${x.recipients} recipients  ${x.subject}`,
        );
        onResult(ctx.json, r, `${lines.length === 0 ? 'No tracing records in this home.' : lines.join('\n')}\n`);
        return;
      }
      if (o.item === undefined) throw usageError('which item?', 'give --item ID (see `valise trace --list`)');
      let bytes: Uint8Array;
      if (file !== undefined && file !== '-') bytes = new Uint8Array(readFileSync(file));
      else if (file === '-' || !io.stdinIsTTY) bytes = await io.readStdin();
      else throw usageError('no leaked text', 'give the file of the leaked text, or pipe it on standard input');
      const leak = new TextDecoder('utf-8').decode(bytes);
      const r = await trace(ctx, { item: o.item, leak });
      onResult(ctx.json, r, renderTrace(r));
    });

  // safety number -----------------------------------------------------------------------------
  program
    .command('safety-number')
    .description('show the safety number to compare with someone out of band (aloud, or by QR code)')
    .requiredOption('--with <who>', 'their name or person id')
    .option('--relay <url>', 'relay to look them up in, if this home has not met them')
    .action(async (o: { with: string; relay?: string }, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const r = await safetyNumberCmd(ctx, o);
      onResult(
        ctx.json,
        r,
        `Safety number of ${r.me.name} and ${r.with.name} (${r.with.title}, ${r.with.unit}):\n\n    ${r.formatted}\n\n` +
          `QR payload: ${r.qrPayload}\nCompare it with theirs in person or by phone; if it differs, do not trust the key.\n`,
      );
    });

  // status ------------------------------------------------------------------------------------
  program
    .command('status')
    .description('what this home holds')
    .action(async (_o: unknown, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const r = await status(ctx);
      const lines = [`Home ${r.home}`];
      if (r.org)
        lines.push(
          `  organisation  ${r.org.orgId} (administrator): ${r.org.people} people, ${r.org.offices} offices, ${r.org.devices} devices enrolled`,
        );
      if (r.device)
        lines.push(
          `  device        ${r.device.name} (${r.device.title}, ${r.device.unit}), "${r.device.label}" ${r.device.deviceCertId}`,
          `  relay         ${r.device.relay ?? '(none)'}`,
        );
      if (r.revocation)
        lines.push(
          `  revocation    list ${r.revocation.sequence}, ${r.revocation.revoked} revoked, ${r.revocation.stale ? 'STALE since' : 'valid until'} ${date(r.revocation.nextUpdate)}`,
        );
      lines.push(`  items         ${r.items.total} received (${r.items.unread} unread, ${r.items.rejected} rejected), ${r.sent} sent`);
      onResult(ctx.json, r, `${lines.join('\n')}\n`);
    });

  // directory ---------------------------------------------------------------------------------
  const directory = program.command('directory').description('who is who: the relay directory and the office directory');
  directory
    .command('import')
    .description('import an office directory file (from `valise office export`)')
    .argument('<file>', 'directory file')
    .action(async (file: string, _o: unknown, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const r = await directoryImport(ctx, { file });
      onResult(ctx.json, r, `Imported ${r.offices} new offices and ${r.holders} new appointments.\n`);
    });
  directory
    .command('search')
    .description('search the relay directory by name or unit')
    .argument('<text>', 'part of a name or unit')
    .option('--relay <url>', 'relay (default: the one this home registered with)')
    .action(async (text: string, o: { relay?: string }, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const r = await directorySearch(ctx, { text, ...(o.relay === undefined ? {} : { relay: o.relay }) });
      const lines = [
        ...r.people.map(
          (p) =>
            `${p.personId}  ${p.name}, ${p.title}, ${p.unit}: ${p.devices.map((d) => `"${d.label}"${d.valid ? '' : ` (${d.problem})`}`).join(', ')}`,
        ),
        ...r.offices.map((o) => `${o.officeId}  office ${o.title}, ${o.unit}`),
      ];
      onResult(ctx.json, r, `${lines.length === 0 ? 'Nobody found.' : lines.join('\n')}\n`);
    });

  // relay -------------------------------------------------------------------------------------
  const relay = program.command('relay').description('run a relay (the store-and-forward server)');
  relay
    .command('serve')
    .description('start a relay on SQLite; runs until interrupted (logs are JSON lines on stdout)')
    .requiredOption('--data <dir>', 'data folder (created if missing)')
    .requiredOption('--org-root <file>', 'root public key file written by `valise org init`')
    .addOption(
      new Option('--port <n>', 'port (0: any free port, printed in the "relay listening" log line)')
        .argParser(intArg('a port', 0, 65535))
        .default(0),
    )
    .option('--host <addr>', 'address to bind', '127.0.0.1')
    .option('--public-host <name>', 'host name clients use (repeatable); others are refused', collect, [])
    .option('--revocation <file>', 'revocation list to start with (kept if newer than the stored one)')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent', 'info')
    .action(
      async (o: {
        data: string;
        orgRoot: string;
        port: number;
        host: string;
        publicHost: string[];
        revocation?: string;
        logLevel: string;
      }) => {
        // The relay (SQLite, pino, metrics) is loaded only by the commands that need it.
        const { relayServe } = await import('./relay-serve.js');
        const running = await relayServe(o);
        io.err(`valise relay listening on ${running.url} (data in ${o.data}); Ctrl-C to stop\n`);
        await io.untilSignal();
        await running.close();
      },
    );
  relay
    .command('backup')
    .description('copy the relay database (safe while it runs; one-time prekeys left out)')
    .requiredOption('--data <dir>', 'relay data folder')
    .requiredOption('--out <file>', 'backup file (must not exist)')
    .action(async (o: { data: string; out: string }, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const { relayBackup } = await import('./relay-serve.js');
      const r = await relayBackup(o);
      onResult(ctx.json, r, `Backup written to ${r.file} (${r.bytes} bytes)\n`);
    });
  relay
    .command('restore')
    .description('restore a relay backup into a data folder')
    .requiredOption('--from <file>', 'backup file')
    .requiredOption('--data <dir>', 'relay data folder')
    .option('--force', 'replace an existing database')
    .action(async (o: { from: string; data: string; force?: boolean }, cmd: Command) => {
      const ctx = ctxOf(cmd);
      const { relayRestore } = await import('./relay-serve.js');
      const r = relayRestore(o);
      onResult(ctx.json, r, `Restored into ${r.data}\n`);
    });

  // demo --------------------------------------------------------------------------------------
  program
    .command('demo')
    .description('a ministry, headquarters and three embassies exchange a circular through a real relay, narrated')
    .option('--keep', 'keep the temporary folder (homes, bundles, relay database) to look at afterwards')
    .action(async (o: { keep?: boolean }, cmd: Command) => {
      const json = (cmd.optsWithGlobals() as GlobalOptions).json === true;
      const { runDemo } = await import('./demo.js');
      // With --json the narration goes to stderr and the result to stdout.
      const r = await runDemo({ say: (line) => (json ? io.err : io.out)(`${line}\n`), keep: o.keep === true });
      if (json) onResult(true, r, '');
      else if (o.keep) io.out(`The demo's files are in ${r.folder}\n`);
    });

  return program;
}

/** Runs the command line; resolves with the exit code. Never throws. */
export async function runCli(argv: string[], io: CliIo = processIo): Promise<number> {
  useNodeCrypto();
  const jsonWanted = argv.includes('--json');
  const program = buildProgram(io, (json, result, human) => {
    if (json) io.out(`${JSON.stringify({ ok: true, ...(result as object) })}\n`);
    else io.out(human);
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return ExitCode.Ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return ExitCode.Ok;
      if (jsonWanted)
        io.out(
          `${JSON.stringify({ ok: false, error: { code: 'usage', message: err.message.replace(/^error: /, ''), exitCode: ExitCode.Usage } })}\n`,
        );
      return ExitCode.Usage;
    }
    const e = toCliError(err);
    if (jsonWanted) {
      io.out(
        `${JSON.stringify({ ok: false, error: { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}), exitCode: e.exitCode } })}\n`,
      );
    }
    io.err(`valise: ${e.message}\n${e.hint ? `  ${e.hint}\n` : ''}`);
    if (e.exitCode === ExitCode.Failure && io.env.VALISE_DEBUG) io.err(`${(err as Error)?.stack ?? ''}\n`);
    return e.exitCode;
  }
}

export { CliError };
