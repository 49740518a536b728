/**
 * Authentication in the upgrade: wrong, replayed, expired and foreign credentials get 401 with
 * a typed code and never a socket; revoked devices are refused, and disconnected when a newer
 * revocation list arrives while they are connected.
 */
import { getProvider, RelayAuthHeader, RelayErrorCode, RelayFrameType, relayAuthMessage, toBase64Url } from '@valise/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authHeaders, fetchChallenge, openSocket, RelayTestClient } from './client.js';
import { DAY, type InProcessRelay, makeOrg, now, removeDir, startTestRelay } from './helpers.js';

const org = makeOrg();
const alice = org.enrol('Alice');
const bob = org.enrol('Bob');
const carol = org.enrol('Carol', 'Embassy', { kem: 'x25519' });
const mallory = org.enrol('Mallory');
const otherOrg = makeOrg();
const stranger = otherOrg.enrol('Stranger');

let relay: InProcessRelay;
let clock = Date.now();
beforeAll(async () => {
  relay = await startTestRelay(org, { clock: () => clock, limits: { challengeTtlSeconds: 60 } });
});
afterAll(async () => {
  await relay.close();
  removeDir(relay.dataDir);
});

const host = () => new URL(relay.url).host;

async function attempt(headers: Record<string, string>) {
  const r = await openSocket(relay.url, headers);
  if ('ws' in r) {
    r.ws.close();
    return { status: 101, code: undefined };
  }
  return r;
}

describe('relay authentication', { timeout: 30_000 }, () => {
  it('accepts a valid device (X-Wing or X25519) and refuses a replayed challenge', async () => {
    const challenge = await fetchChallenge(relay.url);
    const headers = authHeaders(alice.creds, challenge, host());
    const ok = await openSocket(relay.url, headers);
    expect('ws' in ok).toBe(true);
    if ('ws' in ok) ok.ws.close();
    const replay = await attempt(headers);
    expect(replay).toMatchObject({ status: 401, code: RelayErrorCode.AuthChallenge });
    const c = await RelayTestClient.connect(relay.url, carol.creds);
    await c.close();
  });

  it('refuses a challenge it never issued and an expired one', async () => {
    const forged = authHeaders(alice.creds, new Uint8Array(32).fill(1), host());
    expect(await attempt(forged)).toMatchObject({ status: 401, code: RelayErrorCode.AuthChallenge });
    const challenge = await fetchChallenge(relay.url);
    clock += 61_000;
    try {
      expect(await attempt(authHeaders(alice.creds, challenge, host()))).toMatchObject({ status: 401, code: RelayErrorCode.AuthChallenge });
    } finally {
      clock = Date.now();
    }
  });

  it('refuses a bad signature, a signature by another device, and a signature over another host', async () => {
    const c1 = await fetchChallenge(relay.url);
    const h1 = authHeaders(alice.creds, c1, host());
    h1[RelayAuthHeader.Signature] = toBase64Url(new Uint8Array(64).fill(3));
    expect(await attempt(h1)).toMatchObject({ status: 401, code: RelayErrorCode.AuthSignature });

    const c2 = await fetchChallenge(relay.url);
    const h2 = authHeaders(alice.creds, c2, host());
    h2[RelayAuthHeader.Signature] = toBase64Url(getProvider().ed25519Sign(relayAuthMessage(c2, host()), bob.signingSecretKey));
    expect(await attempt(h2)).toMatchObject({ status: 401, code: RelayErrorCode.AuthSignature });

    const c3 = await fetchChallenge(relay.url);
    const h3 = authHeaders(alice.creds, c3, 'relay.elsewhere.example');
    expect(await attempt(h3)).toMatchObject({ status: 401, code: RelayErrorCode.AuthSignature });
  });

  it('refuses certificates of another organisation, mismatched chains and malformed headers', async () => {
    expect(await attempt(authHeaders(stranger.creds, await fetchChallenge(relay.url), host()))).toMatchObject({
      status: 401,
      code: RelayErrorCode.AuthCertificate,
    });
    const mixed = { ...alice.creds, deviceCert: bob.creds.deviceCert };
    expect(await attempt(authHeaders(mixed, await fetchChallenge(relay.url), host()))).toMatchObject({
      status: 401,
      code: RelayErrorCode.AuthCertificate,
    });
    const h = authHeaders(alice.creds, await fetchChallenge(relay.url), host());
    delete h[RelayAuthHeader.DeviceCert];
    expect(await attempt(h)).toMatchObject({ status: 401, code: RelayErrorCode.AuthMalformed });
    const h2 = authHeaders(alice.creds, await fetchChallenge(relay.url), host());
    h2[RelayAuthHeader.PersonCert] = 'not base64!';
    expect(await attempt(h2)).toMatchObject({ status: 401, code: RelayErrorCode.AuthMalformed });
    expect(await attempt({})).toMatchObject({ status: 401, code: RelayErrorCode.AuthMalformed });
  });

  it('refuses an expired certificate', async () => {
    const old = org.enrol('Retired', 'Embassy', { validUntil: now() + 100 });
    clock = Date.now() + 200_000;
    try {
      const challenge = await fetchChallenge(relay.url);
      expect(await attempt(authHeaders(old.creds, challenge, host()))).toMatchObject({ status: 401, code: RelayErrorCode.AuthCertificate });
    } finally {
      clock = Date.now();
    }
  });

  it('accepts the browser form (query parameters)', async () => {
    const challenge = await fetchChallenge(relay.url);
    const h = authHeaders(bob.creds, challenge, host());
    const q = new URLSearchParams({
      pc: h[RelayAuthHeader.PersonCert] as string,
      dc: h[RelayAuthHeader.DeviceCert] as string,
      ch: h[RelayAuthHeader.Challenge] as string,
      sig: h[RelayAuthHeader.Signature] as string,
    });
    const { default: WebSocket } = await import('ws');
    const ws = new WebSocket(`${relay.url.replace('http', 'ws')}/v1/connect?${q}`);
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    ws.close();
  });

  it('disconnects a device revoked while connected, then refuses it', async () => {
    const m = await RelayTestClient.connect(relay.url, mallory.creds);
    const a = await RelayTestClient.connect(relay.url, alice.creds);
    const list = org.revoke(1, [mallory.device.certId]);
    const r = await a.request({ type: RelayFrameType.RevocationPublish, list: list.bytes });
    expect(r.type).toBe(RelayFrameType.Ok);
    expect((await m.closed).code).toBe(1008);
    expect(await attempt(authHeaders(mallory.creds, await fetchChallenge(relay.url), host()))).toMatchObject({
      status: 401,
      code: RelayErrorCode.AuthRevoked,
    });
    // The same list again, an older one, a forged one: refused with typed codes; Alice stays connected.
    expect(await a.request({ type: RelayFrameType.RevocationPublish, list: list.bytes })).toMatchObject({
      code: RelayErrorCode.RevocationStale,
    });
    const foreign = otherOrg.revoke(5, []);
    expect(await a.request({ type: RelayFrameType.RevocationPublish, list: foreign.bytes })).toMatchObject({
      code: RelayErrorCode.RevocationInvalid,
    });
    const got = await a.request({ type: RelayFrameType.RevocationGet });
    expect(got.type === RelayFrameType.RevocationList && got.list?.length).toBe(list.bytes.length);
    // Revoking the person revokes every device of theirs.
    const bobDevice = await RelayTestClient.connect(relay.url, bob.creds);
    expect(
      (await a.request({ type: RelayFrameType.RevocationPublish, list: org.revoke(2, [mallory.device.certId, bob.person.certId]).bytes }))
        .type,
    ).toBe(RelayFrameType.Ok);
    expect((await bobDevice.closed).code).toBe(1008);
    await a.close();
  });

  it('keeps enforcing a revocation list past its nextUpdate', async () => {
    clock = Date.now() + 30 * DAY * 1000;
    try {
      expect(await attempt(authHeaders(mallory.creds, await fetchChallenge(relay.url), host()))).toMatchObject({
        status: 401,
        code: RelayErrorCode.AuthRevoked,
      });
    } finally {
      clock = Date.now();
    }
  });

  it('serves only known paths and refuses an upgrade elsewhere', async () => {
    const res = await fetch(`${relay.url}/nope`);
    expect(res.status).toBe(404);
    expect(res.headers.get(RelayAuthHeader.Error)).toBe(RelayErrorCode.NotFound);
    const { default: WebSocket } = await import('ws');
    const ws = new WebSocket(`${relay.url.replace('http', 'ws')}/elsewhere`);
    const status = await new Promise<number>((resolve) => {
      ws.once('unexpected-response', (_req, r) => resolve(r.statusCode ?? 0));
      ws.once('error', () => resolve(-1));
    });
    expect(status).toBe(404);
  });
});
