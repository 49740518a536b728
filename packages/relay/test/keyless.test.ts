/**
 * The relay never holds a key that opens an envelope. Items carrying a known marker go through
 * the relay; neither its database files (WAL included) nor its logs contain the marker in any
 * common form, and no byte the clients ever send it (upgrade headers and frames) contains a
 * device's secret key: the relay never receives one.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { open, RelayAuthHeader, RelayFrameType } from '@valise/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authHeaders, fetchChallenge, openSocket, RelayTestClient } from './client.js';
import { type InProcessRelay, makeOrg, removeDir, routesFor, sealFor, startTestRelay, type TestDevice } from './helpers.js';

const MARKER = 'VALISE-MARKER-c0ffee-7f3a9c-do-not-leak';

const org = makeOrg();
const hq = org.enrol('Head of Registry', 'Headquarters');
const paris = org.enrol('Ambassador to Paris', 'Embassy in Paris');
const lima = org.enrol('Consul in Lima', 'Embassy in Lima', { kem: 'x25519' });
const devices = [hq, paris, lima];

/** Every form in which a byte string commonly shows up in files and logs. */
function forms(bytes: Uint8Array): Buffer[] {
  const b = Buffer.from(bytes);
  const out = [b, Buffer.from(b.toString('hex')), Buffer.from(b.toString('hex').toUpperCase())];
  // base64 of the bytes at each of the three alignments (a substring of a longer encoding).
  for (let shift = 0; shift < 3; shift++) {
    const part = b.subarray(shift);
    for (const enc of ['base64', 'base64url'] as const) {
      const text = part.toString(enc).replace(/=+$/, '');
      // Drop the last characters, which depend on what follows.
      out.push(Buffer.from(text.slice(0, Math.max(8, text.length - 4))));
    }
  }
  out.push(Buffer.from(b.toString('utf16le')));
  return out;
}

const secrets = (d: TestDevice) => [d.signingSecretKey, d.encryptionSecretKey];

let relay: InProcessRelay;
const transmitted: Buffer[] = [];
beforeAll(async () => {
  relay = await startTestRelay(org);
});
afterAll(async () => {
  removeDir(relay.dataDir);
});

function recordingClient(c: RelayTestClient): RelayTestClient {
  const send = c.ws.send.bind(c.ws);
  c.ws.send = ((data: Uint8Array, ...rest: unknown[]) => {
    transmitted.push(Buffer.from(data));
    return (send as (...a: unknown[]) => void)(data, ...rest);
  }) as typeof c.ws.send;
  return c;
}

async function connect(d: TestDevice): Promise<RelayTestClient> {
  // Record the upgrade headers too.
  const challenge = await fetchChallenge(relay.url);
  const headers = authHeaders(d.creds, challenge, new URL(relay.url).host);
  transmitted.push(Buffer.from(JSON.stringify(headers)));
  const r = await openSocket(relay.url, headers);
  if (!('ws' in r)) throw new Error(`refused: ${r.code}`);
  return recordingClient(new RelayTestClient(r.ws, r.early));
}

describe('the relay holds no key', { timeout: 60_000 }, () => {
  it('finds the marker in each form it looks for (the scan itself works)', () => {
    const m = Buffer.from(MARKER);
    const hay = [
      Buffer.concat([Buffer.from('..'), m, Buffer.from('..')]),
      Buffer.from(`x${m.toString('hex')}y`),
      Buffer.from(`{"a":"${Buffer.concat([Buffer.from('ab'), m]).toString('base64')}"}`),
      Buffer.from(`q${Buffer.concat([Buffer.from('z'), m, Buffer.from('tail')]).toString('base64url')}`),
    ];
    for (const h of hay) expect(forms(m).some((f) => h.includes(f))).toBe(true);
  });

  it('stores and logs no plaintext, and never receives a secret key', async () => {
    const a = await connect(hq);
    const b = await connect(paris);
    const c = await connect(lima);
    for (const d of devices) {
      await a.request({ type: RelayFrameType.DirectoryPublish, personCert: d.person.bytes, deviceCert: d.device.bytes });
    }
    const body = `${MARKER}\n`.repeat(50);
    for (let i = 0; i < 10; i++) {
      const r = await a.send(sealFor(hq, [paris], body, `${MARKER} subject ${i}`), routesFor([paris]));
      expect(r.type).toBe(RelayFrameType.Stored);
      const r2 = await a.send(sealFor(hq, [lima], body, `${MARKER} subject ${i}`), routesFor([lima]));
      expect(r2.type).toBe(RelayFrameType.Stored);
    }
    const got = await b.waitForDeliveries(10);
    await c.waitForDeliveries(10);
    // The recipients can read it: the marker really is inside.
    expect(
      new TextDecoder().decode(
        open(got[0]!.envelope, { device: paris.device, encryptionSecretKey: paris.encryptionSecretKey }, org.trust).body,
      ),
    ).toContain(MARKER);
    // Half acknowledged (deleted), half left in the mailbox.
    await b.ack(got.slice(0, 5).map((d) => d.messageId));

    // While the relay runs (WAL not yet checkpointed), then after it stopped.
    const scan = () => {
      const files = readdirSync(relay.dataDir).map((f) => join(relay.dataDir, f));
      expect(files.some((f) => f.endsWith('-wal'))).toBe(true);
      return files.map((f) => readFileSync(f));
    };
    const running = scan();
    await Promise.all([a.close(), b.close(), c.close()]);
    await relay.close();
    const stopped = readdirSync(relay.dataDir).map((f) => readFileSync(join(relay.dataDir, f)));
    const logs = Buffer.from(relay.logs.join(''));
    expect(relay.logs.length).toBeGreaterThan(20);

    const marker = forms(new TextEncoder().encode(MARKER));
    for (const blob of [...running, ...stopped, logs]) {
      for (const form of marker) expect(blob.includes(form)).toBe(false);
    }
    // Logs carry ids, sizes and codes: no certificate, no envelope bytes, no key.
    for (const d of devices) {
      for (const form of forms(d.person.bytes.subarray(0, 24))) expect(logs.includes(form)).toBe(false);
      for (const form of forms(d.device.encryption.publicKey.subarray(0, 24))) expect(logs.includes(form)).toBe(false);
    }
    for (const delivery of got) {
      for (const form of forms(delivery.envelope.subarray(delivery.envelope.length - 40))) expect(logs.includes(form)).toBe(false);
    }

    // No secret key of any device ever left the devices.
    expect(transmitted.length).toBeGreaterThan(20);
    expect(transmitted[0]?.includes(Buffer.from(RelayAuthHeader.Signature))).toBe(true);
    for (const d of devices) {
      for (const key of secrets(d)) {
        for (const form of forms(key)) {
          for (const t of transmitted) expect(t.includes(form)).toBe(false);
          for (const blob of [...running, ...stopped, logs]) expect(blob.includes(form)).toBe(false);
        }
      }
    }
  });
});
