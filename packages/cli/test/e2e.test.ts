/**
 * End to end with the built command: `valise` child processes against `valise relay serve` on
 * 127.0.0.1. An administrator creates the organisation; three clients enrol and register; they
 * exchange items; the relay restarts between send and receive and nothing is lost; every item is
 * seen exactly once across repeated `inbox` runs. Output is read through --json.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RelayProcess, requireBuilt, startRelayProcess, valise, valiseJson } from './helpers.js';

const folder = mkdtempSync(join(tmpdir(), 'valise-cli-e2e-'));
// A low scrypt cost keeps the many short processes quick; the default is covered by secure-file.test.ts.
const env = { VALISE_PASSPHRASE: 'e2e home passphrase', VALISE_BUNDLE_PASSPHRASE: 'e2e bundle passphrase', VALISE_SCRYPT_LOG_N: '12' };
const home = (name: string) => ['--home', join(folder, name)];
const run = <T = Record<string, unknown>>(name: string, args: string[], input?: string) =>
  valiseJson<T>([...home(name), ...args], input === undefined ? { env } : { env, input });

let relay: RelayProcess | undefined;
let rootFile = '';
const people: Record<string, { personId: string; bundle: string; deviceCertId: string }> = {};

interface Item {
  n: number;
  subject: string;
  from: string;
  read: boolean;
}
interface Inbox {
  fetched: { new: number; duplicates: number; rejected: number; held: number };
  items: Item[];
}

beforeAll(async () => {
  requireBuilt();
  const org = await run<{ orgId: string; rootFile: string; revocationFile: string }>('admin', ['org', 'init']);
  expect(org.orgId).toMatch(/^[0-9a-f]{32}$/);
  rootFile = org.rootFile;
  relay = await startRelayProcess([
    '--data',
    join(folder, 'relay'),
    '--org-root',
    rootFile,
    '--port',
    '0',
    '--revocation',
    org.revocationFile,
  ]);
  const staff = [
    ['hq', 'Amina Diallo', 'Head of Registry', 'Headquarters'],
    ['paris', 'Claire Dubois', 'Ambassador', 'Embassy in Paris'],
    ['nairobi', 'Wanjiru Kamau', 'Ambassador', 'Embassy in Nairobi'],
  ];
  for (const [key, name, title, unit] of staff as [string, string, string, string][]) {
    const p = await run<{ personId: string }>('admin', ['person', 'add', '--name', name, '--title', title, '--unit', unit]);
    const bundle = join(folder, `${key}.bundle`);
    const d = await run<{ certId: string }>('admin', [
      'device',
      'enrol',
      '--person',
      p.personId,
      '--label',
      `${key} workstation`,
      '--out',
      bundle,
    ]);
    people[key] = { personId: p.personId, bundle, deviceCertId: d.certId };
  }
  for (const key of Object.keys(people)) {
    const r = await run<{ deviceCertId: string; relay: string }>(key, [
      'register',
      '--bundle',
      people[key]?.bundle as string,
      '--relay',
      relay.url,
    ]);
    expect(r.deviceCertId).toBe(people[key]?.deviceCertId);
  }
}, 120_000);

afterAll(async () => {
  await relay?.stop();
  rmSync(folder, { recursive: true, force: true });
});

describe('valise end to end (child processes)', { timeout: 120_000 }, () => {
  it('exchanges items; the relay restarts between send and receive; nothing is lost; each item is seen once', async () => {
    const bodyFile = join(folder, 'circular.txt');
    writeFileSync(bodyFile, 'CIRCULAR 7/2026\n\nPlease review the fee schedule.\n');
    const s1 = await run<{ envelopes: { messageId: string }[]; devices: number }>('hq', [
      'send',
      '--to',
      'Claire Dubois',
      '--to',
      'Wanjiru Kamau',
      '--subject',
      'Circular 7/2026',
      '--classification',
      'CONFIDENTIAL',
      '--file',
      bodyFile,
    ]);
    expect(s1.devices).toBe(2);
    expect(s1.envelopes[0]?.messageId).toMatch(/^[0-9a-f]{32}$/);
    // Body on standard input, recipient by person id.
    await run(
      'paris',
      ['send', '--to', people.hq?.personId as string, '--subject', 'Receipt of circular 7', '--file', '-'],
      'Received, thank you.\n',
    );

    // Restart the relay on the same port and data folder: what it acknowledged is still there.
    const port = relay?.port as number;
    expect(await relay?.stop()).toBe(0);
    relay = await startRelayProcess(['--data', join(folder, 'relay'), '--org-root', rootFile, '--port', String(port)]);
    expect(relay.port).toBe(port);

    const paris = await run<Inbox>('paris', ['inbox']);
    expect(paris.fetched.new).toBe(1);
    expect(paris.items.map((i) => i.subject)).toEqual(['Circular 7/2026']);
    const nairobi = await run<Inbox>('nairobi', ['inbox']);
    expect(nairobi.fetched.new).toBe(1);
    const hq = await run<Inbox>('hq', ['inbox']);
    expect(hq.items.map((i) => [i.subject, i.from])).toEqual([['Receipt of circular 7', 'Claire Dubois']]);

    const item = await run<{ item: { sender: { name: string }; classification: string }; body: string }>('nairobi', ['read', '1']);
    expect(item.body).toBe('CIRCULAR 7/2026\n\nPlease review the fee schedule.\n');
    expect(item.item.sender.name).toBe('Amina Diallo');
    expect(item.item.classification).toBe('CONFIDENTIAL');

    // Exactly once, across repeated runs.
    for (let i = 0; i < 2; i++) {
      const again = await run<Inbox>('paris', ['inbox']);
      expect(again.fetched.new).toBe(0);
      expect(again.items).toHaveLength(1);
    }
    const offline = await run<Inbox>('nairobi', ['inbox', '--offline']);
    expect(offline.items).toEqual([expect.objectContaining({ n: 1, read: true })]);

    // Human output of read.
    const human = await valise([...home('paris'), 'read', '1'], { env });
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/From: +Amina Diallo \(Head of Registry, Headquarters\)/);
    expect(human.stdout).toMatch(/Please review the fee schedule\./);
  });

  it('safety numbers match, and a wrong passphrase is refused without damage', async () => {
    const a = await run<{ safetyNumber: string; qrPayload: string }>('paris', ['safety-number', '--with', 'Amina Diallo']);
    const b = await run<{ safetyNumber: string; qrPayload: string }>('hq', ['safety-number', '--with', people.paris?.personId as string]);
    expect(a.safetyNumber).toMatch(/^\d{60}$/);
    expect(a.safetyNumber).toBe(b.safetyNumber);
    expect(a.qrPayload).toBe(b.qrPayload);
    const wrong = await valise([...home('paris'), 'inbox', '--json'], { env: { ...env, VALISE_PASSPHRASE: 'not the passphrase' } });
    expect(wrong.code).toBe(3);
    expect(JSON.parse(wrong.stdout)).toMatchObject({ ok: false, error: { code: 'wrong-passphrase', exitCode: 3 } });
    expect(wrong.stderr).toMatch(/wrong passphrase/);
    const status = await run<{ items: { total: number } }>('paris', ['status']);
    expect(status.items.total).toBe(1);
  });

  it('revocation reaches the relay: the revoked device can no longer connect', async () => {
    // The administrator's home has no device: revoke writes the list; a client publishes it.
    const r = await run<{ sequence: number; file: string; published: boolean }>('admin', [
      'revoke',
      '--cert',
      people.nairobi?.deviceCertId as string,
    ]);
    expect(r).toMatchObject({ sequence: 2, published: false });
    await run('hq', ['revocation', 'publish', r.file]);
    const refused = await valise([...home('nairobi'), 'inbox', '--json'], { env });
    expect(refused.code).toBe(6);
    expect(JSON.parse(refused.stdout).error.code).toBe('relay-auth-revoked');
    const send = await valise([...home('hq'), 'send', '--to', 'Wanjiru Kamau', '--subject', 'x', '--file', '-', '--json'], {
      env,
      input: 'x',
    });
    expect(send.code).toBe(5);
    expect(JSON.parse(send.stdout).error.code).toBe('verify-revoked');
  });
});
