/**
 * `npm run bench`: Valise against its floor (the primitives the same work needs, on the same
 * provider) and against peer libraries, in one run. See bench/README.md.
 *
 *   node --import tsx bench/run.ts [filter words...] [--quick] [--no-write]
 *
 * A filter word keeps the rows whose table id, title, impl or KEM contain it (case-insensitive);
 * several words must all match. e.g. `envelope`, `fanout`, `noble`, `x-wing`, `age`.
 * Peers come from bench/node_modules (`npm --prefix bench ci`); without them the Valise rows run alone.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  AeadId,
  equalBytes,
  getProvider,
  HpkeAeadId,
  type HpkeSuite,
  KdfId,
  KemId,
  nobleProvider,
  open,
  openBase,
  seal,
  sealBase,
  sliceEnvelope,
  systemRandom,
  useProvider,
  xwingX25519PublicKey,
  xwingX25519SecretKey,
} from '../packages/protocol/src/index.js';
import { useNodeCrypto } from '../packages/protocol/src/node.js';
import { buildOrg, KEM_LABEL, type Kem, type Org, type RecipientDevice } from './fixtures.js';

/**
 * The keyed hint is part of the work an envelope needs (spec/envelope.md, "Hints"): the sender
 * makes one X25519 key per envelope and one DH per recipient, the recipient one DH. The floors
 * count it, on the X25519 half of the recipient key.
 */
const hintPublic = (r: RecipientDevice) => (r.kemPublicKey.length === 32 ? r.kemPublicKey : xwingX25519PublicKey(r.kemPublicKey));
const hintSecret = (r: RecipientDevice) =>
  r.kemSecretKey.length === 32 && r.kemPublicKey.length === 32 ? r.kemSecretKey : xwingX25519SecretKey(r.kemSecretKey);

import {
  DEFAULT_OPTIONS,
  fmtRatio,
  type HarnessOptions,
  measure,
  QUICK_OPTIONS,
  type Row,
  ratio,
  renderTable,
  type Stats,
  type Table,
} from './harness.js';
import { ageX25519Identity, loadPeers, type Peers, webCryptoEd25519 } from './peers.js';

type ProviderName = 'node' | 'noble';
const PROVIDERS: ProviderName[] = ['node', 'noble'];
const KEMS: Kem[] = ['xwing', 'x25519'];
const activate: Record<ProviderName, () => void> = { node: useNodeCrypto, noble: () => useProvider(nobleProvider) };

const SUITE: Record<Kem, HpkeSuite> = {
  xwing: { kem: KemId.XWing, kdf: KdfId.HkdfSha256, aead: HpkeAeadId.ChaCha20Poly1305 },
  x25519: { kem: KemId.DhkemX25519HkdfSha256, kdf: KdfId.HkdfSha256, aead: HpkeAeadId.ChaCha20Poly1305 },
};

const KiB = 1024;
const MiB = 1024 * KiB;
const FANOUT = 134;
const EMPTY = new Uint8Array(0);
/** Sizes of what an envelope binds into each key wrap: info ~ label + prelude digest, aad = 16-byte hint. */
const INFO = systemRandom(58);
const AAD = systemRandom(16);
const NONCE = new Uint8Array(12);

const TITLES = {
  'envelope-1k': 'seal + open, 1 KiB body, one recipient device',
  'fanout-134-seal': `seal 1 MiB for ${FANOUT} recipient devices`,
  'fanout-134-open': `open that 1 MiB item as the last (#${FANOUT}) of its recipients`,
} as const;

function assert(ok: boolean, what: string): void {
  if (!ok) throw new Error(`benchmark self-check failed: ${what}`);
}
const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.compare(a, b) === 0;

// ---------------------------------------------------------------------------------------------
// Table 1: seal + open of 1 KiB for one recipient.

async function envelopeTable(org: Org, peers: Peers): Promise<Table> {
  const body = systemRandom(KiB);
  const rows: Row[] = [];
  for (const prov of PROVIDERS) {
    for (const kem of KEMS) {
      const r = org.recipients(kem, 1)[0] as RecipientDevice;
      const input = org.sealInput([r]);
      const floorKey = `floor:${prov}:${kem}`;
      rows.push({
        key: `valise:${prov}:${kem}`,
        impl: `valise (${prov})`,
        kem: KEM_LABEL[kem],
        activate: activate[prov],
        floor: floorKey,
        op: () => open(seal(input, body, org.sender, [r.verified]), r.credentials, org.trust, { now: org.now }).body,
        check: () => {
          const opened = open(seal(input, body, org.sender, [r.verified]), r.credentials, org.trust, { now: org.now });
          assert(sameBytes(opened.body, body), 'valise 1 KiB round trip');
        },
      });
      // The floor: HPKE base mode seal + open of the same 1 KiB to the same key, and one Ed25519
      // signature made and checked, all on the same provider and with nothing else around them.
      const suite = SUITE[kem];
      const { secretKey, publicKey } = org.senderSigning;
      const rHintPublic = hintPublic(r);
      const rHintSecret = hintSecret(r);
      const floorOp = () => {
        const p = getProvider();
        const hs = systemRandom(32);
        const hk = p.x25519PublicKey(hs);
        p.x25519(hs, rHintPublic);
        const { enc, ct } = sealBase(suite, r.kemPublicKey, INFO, AAD, body);
        const sig = p.ed25519Sign(ct, secretKey);
        p.x25519(rHintSecret, hk);
        const pt = openBase(suite, enc, r.kemSecretKey, INFO, AAD, ct);
        if (!p.ed25519Verify(sig, ct, publicKey)) throw new Error('floor: signature did not verify');
        return pt;
      };
      rows.push({
        key: floorKey,
        impl: `floor (${prov})`,
        kem: KEM_LABEL[kem],
        activate: activate[prov],
        op: floorOp,
        check: () => assert(sameBytes(floorOp(), body), 'floor 1 KiB round trip'),
      });
    }
  }
  // Order the table: node rows first (the goal), then noble, each as valise, floor.
  const peerCols: Table['peers'] = [];
  if (peers.hpke) {
    const suite = peers.hpke;
    const kp = await suite.kem.generateKeyPair();
    const hpkeOp = async () => {
      const { ct: ciphertext, enc } = await suite.seal({ recipientPublicKey: kp.publicKey, info: INFO }, body, AAD);
      return new Uint8Array(await suite.open({ recipientKey: kp, enc, info: INFO }, ciphertext, AAD));
    };
    rows.push({
      key: 'peer:hpke',
      impl: '@hpke/core',
      kem: 'X25519',
      op: hpkeOp,
      check: async () => assert(sameBytes(await hpkeOp(), body), '@hpke/core round trip'),
    });
    const ed = await webCryptoEd25519();
    const hpkeSignedOp = async () => {
      const { ct: ciphertext, enc } = await suite.seal({ recipientPublicKey: kp.publicKey, info: INFO }, body, AAD);
      const sig = await crypto.subtle.sign('Ed25519', ed.privateKey, ciphertext);
      const pt = await suite.open({ recipientKey: kp, enc, info: INFO }, ciphertext, AAD);
      if (!(await crypto.subtle.verify('Ed25519', ed.publicKey, sig, ciphertext))) throw new Error('peer: signature did not verify');
      return new Uint8Array(pt);
    };
    rows.push({
      key: 'peer:hpke+sig',
      impl: '@hpke/core + Ed25519 (WebCrypto)',
      kem: 'X25519',
      op: hpkeSignedOp,
      check: async () => assert(sameBytes(await hpkeSignedOp(), body), '@hpke/core + Ed25519 round trip'),
    });
    peerCols.push({ label: '@hpke/core', key: 'peer:hpke' }, { label: '@hpke/core+sig', key: 'peer:hpke+sig' });
  }
  if (peers.age) {
    const age = peers.age;
    const identity = await ageX25519Identity();
    const enc = new age.Encrypter();
    enc.addRecipient(await age.identityToRecipient(identity));
    const dec = new age.Decrypter();
    dec.addIdentity(identity);
    const ageOp = async () => dec.decrypt(await enc.encrypt(body));
    rows.push({
      key: 'peer:age',
      impl: 'age-encryption (typage)',
      kem: 'X25519',
      op: ageOp,
      check: async () => assert(sameBytes(await ageOp(), body), 'age round trip'),
    });
    peerCols.push({ label: 'age', key: 'peer:age' });
  }
  return {
    id: 'envelope-1k',
    title: TITLES['envelope-1k'],
    note:
      'valise = `seal` then `open` (sealed sender: chain + signature inside, hint, padding; open verifies the sender chain and signature). ' +
      'floor = HPKE `sealBase` + `openBase` of the 1 KiB (same suite, same provider) + Ed25519 sign + verify + the keyed hint (one X25519 key and two DH). ' +
      '@hpke/core = base mode DHKEM(X25519)/HKDF-SHA256/ChaCha20-Poly1305 seal + open (async, WebCrypto X25519, keys pre-imported); ' +
      '"+ Ed25519" adds a WebCrypto signature and its check. age = encrypt + decrypt for one X25519 recipient (CryptoKey identity).',
    rows: sortRows(rows),
    peers: peerCols,
  };
}

// ---------------------------------------------------------------------------------------------
// Tables 2 and 3: 1 MiB sealed for 134 recipient devices; opened by the last of them.

interface Fanout {
  seal: Table;
  open: Table;
}

async function fanoutTables(org: Org, peers: Peers): Promise<Fanout> {
  const body = systemRandom(MiB);
  const sealRows: Row[] = [];
  const openRows: Row[] = [];
  for (const kem of KEMS) {
    const list = org.recipients(kem, FANOUT);
    const verified = list.map((r) => r.verified);
    const last = list[FANOUT - 1] as RecipientDevice;
    const input = org.sealInput(list);
    const suite = SUITE[kem];
    const { secretKey, publicKey } = org.senderSigning;
    // Made once (bytes are the same under either provider) for the open rows.
    activate.node();
    const envelope = seal(input, body, org.sender, verified);
    const contentKey = systemRandom(32);
    const wraps = list.map((r) => sealBase(suite, r.kemPublicKey, INFO, AAD, contentKey));
    const bodyCt = getProvider().aeadSeal(AeadId.ChaCha20Poly1305, contentKey, NONCE, body, EMPTY);
    const sig = getProvider().ed25519Sign(getProvider().sha256(body), secretKey);
    const lastWrap = wraps[FANOUT - 1] as { enc: Uint8Array; ct: Uint8Array };

    for (const prov of PROVIDERS) {
      const floorSeal = `floor:${prov}:${kem}`;
      sealRows.push({
        key: `valise:${prov}:${kem}`,
        impl: `valise (${prov})`,
        kem: KEM_LABEL[kem],
        activate: activate[prov],
        floor: floorSeal,
        op: () => seal(input, body, org.sender, verified),
      });
      sealRows.push({
        key: floorSeal,
        impl: `floor (${prov})`,
        kem: KEM_LABEL[kem],
        activate: activate[prov],
        op: () => {
          const p = getProvider();
          const key = systemRandom(32);
          const hs = systemRandom(32);
          p.x25519PublicKey(hs);
          const entries = list.map((r) => [p.x25519(hs, hintPublic(r)), sealBase(suite, r.kemPublicKey, INFO, AAD, key)]);
          const ct = p.aeadSeal(AeadId.ChaCha20Poly1305, key, NONCE, body, EMPTY);
          return [entries, ct, p.ed25519Sign(p.sha256(body), secretKey)];
        },
      });
      openRows.push({
        key: `valise:${prov}:${kem}`,
        impl: `valise (${prov})`,
        kem: KEM_LABEL[kem],
        activate: activate[prov],
        floor: floorSeal,
        op: () => open(envelope, last.credentials, org.trust, { now: org.now }).body,
        check: () => assert(sameBytes(open(envelope, last.credentials, org.trust, { now: org.now }).body, body), 'valise 1 MiB open'),
      });
      // What a relay actually delivers: the same records behind a prelude holding only this entry.
      const slice = sliceEnvelope(envelope, FANOUT - 1);
      openRows.push({
        key: `valise-slice:${prov}:${kem}`,
        impl: `valise (${prov}), relay slice`,
        kem: KEM_LABEL[kem],
        activate: activate[prov],
        floor: floorSeal,
        op: () => open(slice, last.credentials, org.trust, { now: org.now }).body,
        check: () => assert(sameBytes(open(slice, last.credentials, org.trust, { now: org.now }).body, body), 'valise 1 MiB slice open'),
      });
      const lastHintSecret = hintSecret(last);
      const someHintKey = getProvider().x25519PublicKey(systemRandom(32));
      const floorOpen = () => {
        const p = getProvider();
        p.x25519(lastHintSecret, someHintKey);
        const key = openBase(suite, lastWrap.enc, last.kemSecretKey, INFO, AAD, lastWrap.ct);
        const pt = p.aeadOpen(AeadId.ChaCha20Poly1305, key, NONCE, bodyCt, EMPTY);
        if (pt === null || !p.ed25519Verify(sig, p.sha256(pt), publicKey)) throw new Error('floor: open failed');
        return pt;
      };
      openRows.push({
        key: floorSeal,
        impl: `floor (${prov})`,
        kem: KEM_LABEL[kem],
        activate: activate[prov],
        op: floorOpen,
        check: () => assert(sameBytes(floorOpen(), body), 'floor 1 MiB open'),
      });
    }
    assert(equalBytes(contentKey, openBase(suite, lastWrap.enc, last.kemSecretKey, INFO, AAD, lastWrap.ct)), 'floor key wrap');
  }

  const peerCols: Table['peers'] = [];
  if (peers.age) {
    const age = peers.age;
    const identities = await Promise.all(Array.from({ length: FANOUT }, () => ageX25519Identity()));
    const enc = new age.Encrypter();
    for (const id of identities) enc.addRecipient(await age.identityToRecipient(id));
    const dec = new age.Decrypter();
    dec.addIdentity(identities[FANOUT - 1] as CryptoKey);
    const file = await enc.encrypt(body);
    sealRows.push({ key: 'peer:age', impl: 'age-encryption (typage)', kem: 'X25519', op: () => enc.encrypt(body) });
    openRows.push({
      key: 'peer:age',
      impl: 'age-encryption (typage)',
      kem: 'X25519',
      op: () => dec.decrypt(file),
      check: async () => assert(sameBytes(await dec.decrypt(file), body), 'age 1 MiB decrypt'),
    });
    peerCols.push({ label: 'age', key: 'peer:age' });
  }
  return {
    seal: {
      id: 'fanout-134-seal',
      title: TITLES['fanout-134-seal'],
      note:
        `valise = \`seal\` for ${FANOUT} verified devices (${FANOUT / 2} people × 2). ` +
        `floor = ${FANOUT} × (HPKE \`sealBase\` of a 32-byte content key + one hint DH) + one X25519 key + ChaCha20-Poly1305 over 1 MiB + SHA-256 of the body + one Ed25519 signature. ` +
        `age = \`Encrypter.encrypt\` for ${FANOUT} X25519 recipients.`,
      rows: sortRows(sealRows),
      peers: peerCols,
    },
    open: {
      id: 'fanout-134-open',
      title: TITLES['fanout-134-open'],
      note:
        'valise = `open` of the whole envelope (finds its entry by hint among all entries, verifies the sender chain and signature); ' +
        '"relay slice" = `open` of what the relay delivers to that device (`sliceEnvelope`: the same records behind a one-entry prelude). ' +
        'floor = one hint DH + one HPKE `openBase` + ChaCha20-Poly1305 open of 1 MiB + SHA-256 + Ed25519 verify. ' +
        `age = \`Decrypter.decrypt\` with the last identity (it tries the stanzas in order: ${FANOUT} X25519 operations).`,
      rows: sortRows(openRows),
      peers: peerCols,
    },
  };
}

/** Node before noble; X-Wing before X25519; valise (whole, then slice) before its floor; peers last. */
function sortRows(rows: Row[]): Row[] {
  const rank = (r: Row) => {
    const [role, prov, kem] = r.key.split(':');
    if (role === 'peer') return 100 + rows.indexOf(r);
    return (prov === 'node' ? 0 : 20) + (kem === 'xwing' ? 0 : 5) + (role === 'valise' ? 0 : role === 'valise-slice' ? 1 : 2);
  };
  return [...rows].sort((a, b) => rank(a) - rank(b));
}

// ---------------------------------------------------------------------------------------------

function selectRows(table: Table, terms: string[]): Table {
  if (terms.length === 0) return table;
  const rows = table.rows.filter((r) => {
    const hay = `${table.id} ${table.title} ${r.impl} ${r.kem}`.toLowerCase();
    return terms.every((t) => hay.includes(t));
  });
  return { ...table, rows };
}

/** The commit measured, and whether the work tree had changes (results move with the code). */
function gitState(): string {
  try {
    const cwd = fileURLToPath(new URL('..', import.meta.url));
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no', '--', 'packages'], {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    return `commit ${head}${dirty ? ' + uncommitted changes in packages/' : ''}`;
  } catch {
    return 'commit unknown';
  }
}

function cpuModel(): string {
  const cpus = os.cpus();
  return `${cpus[0]?.model ?? 'unknown CPU'} × ${cpus.length}`;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const options: HarnessOptions = { ...(args.includes('--quick') ? QUICK_OPTIONS : DEFAULT_OPTIONS) };
  const verbose = args.includes('--verbose');
  if (verbose) options.log = (line) => console.error(line);
  const terms = args.filter((a) => !a.startsWith('--')).map((a) => a.toLowerCase());
  const started = Date.now();

  const peers = await loadPeers();
  const notes: string[] = [];
  if (peers.missing.length > 0) {
    const msg =
      `Peer libraries not installed (${peers.missing.join(', ')}): their rows are skipped. ` +
      'Install them with `npm --prefix bench ci` (or `cd bench && npm install`).';
    console.log(`> ${msg}\n`);
    notes.push(msg);
  }

  // Fixtures are made with the native provider (same bytes, less waiting), outside all timing.
  activate.node();
  const org = buildOrg();
  // Words that name a table pick tables (their fixtures are only built if picked); all words pick rows.
  const tableTerms = terms.filter((t) => Object.entries(TITLES).some(([id, title]) => `${id} ${title}`.toLowerCase().includes(t)));
  const wanted = (id: keyof typeof TITLES) => tableTerms.every((t) => `${id} ${TITLES[id]}`.toLowerCase().includes(t));
  const tables: Table[] = [];
  if (wanted('envelope-1k')) tables.push(await envelopeTable(org, peers));
  if (wanted('fanout-134-seal') || wanted('fanout-134-open')) {
    const f = await fanoutTables(org, peers);
    tables.push(f.seal, f.open);
  }

  const header = [
    '# Valise benchmarks',
    '',
    `${new Date().toISOString()} · Node ${process.version} · ${os.platform()} ${os.arch()} · ${cpuModel()} · ${gitState()}` +
      (terms.length > 0 ? ` · filter: ${terms.join(' ')}` : '') +
      (args.includes('--quick') ? ' · quick' : ''),
    '',
    'Median over the samples (each sample a batch of operations sized to ~' +
      `${options.sampleMs} ms after ${options.warmupMs} ms of warm-up; rows of a table are sampled round-robin). ` +
      'Ratios are time ratios (this row ÷ the reference, on medians): below 1.00x is faster than the reference.',
  ];
  console.log(header.join('\n'));
  const out: string[] = [...header];
  for (const n of notes) out.push('', `> ${n}`);

  const results = new Map<string, Map<string, Stats>>();
  for (const t of tables) {
    const sel = selectRows(t, terms);
    if (sel.rows.length === 0) continue;
    if (verbose) console.error(`measuring ${t.id} (${sel.rows.length} rows)`);
    const stats = await measure(sel.rows, options);
    results.set(t.id, stats);
    const block = [`## ${t.title} \`${t.id}\``, '', t.note ?? '', '', renderTable(sel, stats)].join('\n');
    console.log(`\n${block}`);
    out.push('', block);
  }

  const summary = goals(results);
  if (summary.length > 0) {
    const partial = terms.length > 0 ? ['', '_Filtered run: each verdict rests only on the rows measured here._'] : [];
    const block = ['## Goals', '', ...summary.map((s) => `- ${s}`), ...partial].join('\n');
    console.log(`\n${block}`);
    out.push('', block);
  }
  const elapsed = `Run took ${((Date.now() - started) / 1000).toFixed(0)} s.`;
  console.log(`\n${elapsed}`);
  out.push('', elapsed, '');

  if (!args.includes('--no-write')) {
    const path = fileURLToPath(new URL('./RESULTS.md', import.meta.url));
    writeFileSync(path, out.join('\n'));
    console.log(`(written to bench/RESULTS.md)`);
  }
}

/** One line per goal of the issue, with the numbers it rests on. */
function goals(results: Map<string, Map<string, Stats>>): string[] {
  const lines: string[] = [];
  const verdict = (ok: boolean) => (ok ? '**met**' : '**not met**');
  const env = results.get('envelope-1k');
  if (env) {
    const rs = KEMS.map((k) => ({ k, r: ratio(env, `valise:node:${k}`, `floor:node:${k}`) })).filter((x) => x.r !== undefined);
    if (rs.length > 0) {
      const ok = rs.every((x) => (x.r as number) <= 1.3);
      lines.push(
        `Valise on Node within 1.3x of the native floor (seal + open, 1 KiB): ${verdict(ok)} — ` +
          rs.map((x) => `${KEM_LABEL[x.k]} ${fmtRatio(x.r)}`).join(', '),
      );
    }
  }
  const cmp: { what: string; r: number | undefined }[] = [];
  if (env) {
    cmp.push({ what: '1 KiB vs @hpke/core', r: ratio(env, 'valise:node:xwing', 'peer:hpke') });
    cmp.push({ what: '1 KiB vs @hpke/core + Ed25519', r: ratio(env, 'valise:node:xwing', 'peer:hpke+sig') });
    cmp.push({ what: '1 KiB vs age', r: ratio(env, 'valise:node:xwing', 'peer:age') });
  }
  const fs = results.get('fanout-134-seal');
  if (fs) cmp.push({ what: `seal ×${FANOUT} vs age`, r: ratio(fs, 'valise:node:xwing', 'peer:age') });
  const fo = results.get('fanout-134-open');
  if (fo) cmp.push({ what: `open #${FANOUT} vs age`, r: ratio(fo, 'valise:node:xwing', 'peer:age') });
  const known = cmp.filter((c) => c.r !== undefined);
  if (known.length > 0) {
    const ok = known.every((c) => (c.r as number) < 1);
    lines.push(
      `Faster than both peers for the same work even with the post-quantum KEM on (valise (node) X-Wing ÷ peer): ${verdict(ok)} — ` +
        known.map((c) => `${c.what} ${fmtRatio(c.r)}`).join(', '),
    );
  }
  return lines;
}

await main();
