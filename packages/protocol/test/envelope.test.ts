import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { concat, equalBytes, toHex, utf8 } from '../src/bytes.js';
import { createOpener, createSealer, open, type SealInput, seal, verifyEvidence } from '../src/envelope.js';
import { DistributionKind, readPreludeFrame, sliceEnvelope, splitEnvelope } from '../src/envelope-wire.js';
import { DecodeError, OpenError, SealError, ValiseError, VerifyError, VerifyReason } from '../src/errors.js';
import { KemId } from '../src/hpke.js';
import { issueRevocationList } from '../src/identity.js';
import { padme } from '../src/padme.js';
import { CHUNK_SIZE } from '../src/stream.js';
import { makeOrg, NOW, type TestDevice, type TestOrg, YEAR } from './helpers/org.js';

const input = (extra: Partial<SealInput> = {}): SealInput => ({
  subject: 'Circular 12/2027: consular fees',
  classification: 'CONFIDENTIAL',
  distribution: [{ kind: DistributionKind.Office, id: new Uint8Array(16).fill(1), name: 'All missions' }],
  createdAt: NOW,
  ...extra,
});

let org: TestOrg;
let hq: TestDevice;
let embassies: TestDevice[];
let outsider: TestDevice;
let pool: TestDevice[]; // DHKEM-X25519 devices for large recipient counts

beforeAll(() => {
  org = makeOrg('envelope-tests');
  hq = org.addDevice('Head of Registry', 'Headquarters');
  embassies = ['Paris', 'Rome', 'Nairobi'].map((city) => org.addDevice(`Ambassador in ${city}`, `Embassy in ${city}`));
  outsider = org.addDevice('Not addressed', 'Headquarters');
  pool = Array.from({ length: 200 }, (_, i) => org.addDevice(`Officer ${i}`, 'Mission', { kem: KemId.DhkemX25519HkdfSha256 }));
}, 120_000);

const opts = () => ({ randomForTesting: org.random });
const openAt = { now: NOW };

describe('seal and open', () => {
  it('delivers the body, metadata, sender and distribution list to every recipient', () => {
    const body = utf8('The consular fee schedule changes on 1 March.');
    const env = seal(
      input(),
      body,
      hq.sender,
      embassies.map((e) => e.verified),
      opts(),
    );
    for (const [i, e] of embassies.entries()) {
      const got = open(env, e.recipient, org.trust, openAt);
      expect(got.body).toEqual(body);
      expect(got.subject).toBe('Circular 12/2027: consular fees');
      expect(got.classification).toBe('CONFIDENTIAL');
      expect(got.sender.person.name).toBe('Head of Registry');
      expect(equalBytes(got.sender.device.certId, hq.device.certId)).toBe(true);
      expect(got.recipientIndex).toBe(i);
      expect(got.recipients.map(toHex)).toEqual(embassies.map((x) => toHex(x.device.certId)));
      expect(got.distribution[0]?.name).toBe('All missions');
      expect(got.personal).toBeUndefined();
    }
  });

  it('round-trips any content for any 1..200 recipients (DHKEM-X25519)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.integer({ min: 1, max: 200 }), fc.nat(), (body, n, pick) => {
        const recipients = pool.slice(0, n);
        const env = seal(
          input(),
          body,
          hq.sender,
          recipients.map((r) => r.verified),
          opts(),
        );
        for (const r of [recipients[pick % n], recipients[n - 1]] as TestDevice[]) {
          expect(open(env, r.recipient, org.trust, openAt).body).toEqual(body);
        }
        expect(() => open(env, outsider.recipient, org.trust, openAt)).toThrow(OpenError);
      }),
      { numRuns: 6 },
    );
  }, 120_000);

  it('round-trips multi-record bodies of any length around the chunk size', () => {
    for (const len of [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 17]) {
      const body = org.random(len);
      const env = seal(input(), body, hq.sender, [embassies[0]!.verified], opts());
      expect(open(env, embassies[0]!.recipient, org.trust, openAt).body).toEqual(body);
    }
  });

  it('pads the stream to a Padmé bucket, so nearby body lengths give identical sizes', () => {
    const sizes = new Map<number, number>();
    for (const len of [0, 100, 101, 1000, 1003, 5000, 70000]) {
      const env = seal(input(), new Uint8Array(len), hq.sender, [embassies[0]!.verified], opts());
      const ct = env.length - readPreludeFrame(env).recordsOffset;
      const plaintext = ct - 16 * Math.ceil(ct / (CHUNK_SIZE + 16));
      expect(padme(plaintext)).toBe(plaintext);
      sizes.set(len, env.length);
    }
    expect(sizes.get(100)).toBe(sizes.get(101));
    expect(sizes.get(1000)).toBe(sizes.get(1003));
  });

  it('a non-recipient cannot open, and cannot tell why', () => {
    const env = seal(
      input(),
      utf8('x'),
      hq.sender,
      embassies.map((e) => e.verified),
      opts(),
    );
    try {
      open(env, outsider.recipient, org.trust, openAt);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(OpenError);
      expect((err as Error).message).toBe(new OpenError().message);
      expect(JSON.stringify(err)).not.toContain('entry');
    }
  });

  it('never modifies its inputs', () => {
    const body = utf8('immutable');
    const before = body.slice();
    const env = seal(input(), body, hq.sender, [embassies[0]!.verified], opts());
    const envCopy = env.slice();
    open(env, embassies[0]!.recipient, org.trust, openAt);
    expect(body).toEqual(before);
    expect(env).toEqual(envCopy);
  });
});

describe('personal payloads', () => {
  it('gives each recipient its own payload, bound by the signed header', () => {
    const recipients = embassies.map((e) => e.verified);
    const env = seal(
      input({ personal: (i) => utf8(`copy for recipient ${i}${'.'.repeat(i * 7)}`) }),
      utf8('shared'),
      hq.sender,
      recipients,
      opts(),
    );
    const { prelude } = readPreludeFrame(env);
    // Entries are padded to one size so that they do not tell recipients apart.
    expect(new Set(prelude.entries.map((e) => e.ct.length)).size).toBe(1);
    for (const [i, e] of embassies.entries()) {
      const got = open(env, e.recipient, org.trust, openAt);
      expect(new TextDecoder().decode(got.personal)).toBe(`copy for recipient ${i}${'.'.repeat(i * 7)}`);
      expect(new TextDecoder().decode(got.body)).toBe('shared');
    }
  });

  it('refuses oversized personal payloads', () => {
    expect(() =>
      seal(input({ personal: () => new Uint8Array((1 << 20) + 1) }), utf8(''), hq.sender, [embassies[0]!.verified], opts()),
    ).toThrow(SealError);
  });
});

describe('tampering', () => {
  const expectTypedFailure = (env: Uint8Array, who: TestDevice, bit: number) => {
    const t = env.slice();
    t[bit >> 3]! ^= 1 << (bit & 7);
    try {
      open(t, who.recipient, org.trust, openAt);
    } catch (err) {
      expect(err instanceof DecodeError || err instanceof OpenError || err instanceof VerifyError).toBe(true);
      return;
    }
    throw new Error(`bit ${bit} flipped without detection`);
  };

  it('a flipped bit in any byte gives a typed error (one recipient, DHKEM-X25519, every byte)', () => {
    const r = pool[0]!;
    const env = seal(input(), org.random(150), hq.sender, [r.verified], opts());
    // One bit per byte, cycling through the bit positions: every field is hit.
    for (let byte = 0; byte < env.length; byte++) expectTypedFailure(env, r, byte * 8 + (byte % 8));
  }, 60_000);

  it('a flipped bit anywhere gives a typed error (one recipient, X-Wing, sampled)', () => {
    const env = seal(input(), org.random(150), hq.sender, [embassies[0]!.verified], opts());
    fc.assert(
      fc.property(fc.nat(env.length * 8 - 1), (bit) => expectTypedFailure(env, embassies[0]!, bit)),
      { numRuns: 500 },
    );
  }, 60_000);

  it('a flip in another recipient’s entry affects only that recipient', () => {
    const env = seal(
      input(),
      utf8('body'),
      hq.sender,
      embassies.slice(0, 2).map((e) => e.verified),
      opts(),
    );
    const { prelude, preludeBytes } = readPreludeFrame(env);
    const second = prelude.entries[1]!;
    const at = 4 + indexOf(preludeBytes, second.ct) + 5;
    const t = env.slice();
    t[at]! ^= 1;
    expect(open(t, embassies[0]!.recipient, org.trust, openAt).body).toEqual(utf8('body'));
    expect(() => open(t, embassies[1]!.recipient, org.trust, openAt)).toThrow(OpenError);
  });

  it('detects truncation anywhere and trailing bytes', () => {
    const env = seal(input(), org.random(CHUNK_SIZE + 100), hq.sender, [embassies[0]!.verified], opts());
    for (const cut of [1, 3, 4, 100, 2000, env.length - 1000, env.length - 85, env.length - 1]) {
      expect(() => open(env.subarray(0, cut), embassies[0]!.recipient, org.trust, openAt)).toThrow(ValiseError);
    }
    expect(() => open(concat(env, new Uint8Array(1)), embassies[0]!.recipient, org.trust, openAt)).toThrow(OpenError);
  });

  it('detects chunks swapped between two envelopes for the same recipient', () => {
    const a = seal(input(), org.random(3 * CHUNK_SIZE), hq.sender, [embassies[0]!.verified], opts());
    const b = seal(input(), org.random(3 * CHUNK_SIZE), hq.sender, [embassies[0]!.verified], opts());
    const ra = readPreludeFrame(a).recordsOffset;
    const rb = readPreludeFrame(b).recordsOffset;
    const chunk = CHUNK_SIZE + 16;
    const t = a.slice();
    t.set(b.subarray(rb + chunk, rb + 2 * chunk), ra + chunk);
    expect(() => open(t, embassies[0]!.recipient, org.trust, openAt)).toThrow(OpenError);
  });

  it('an entry cannot be re-used under another sender’s header (entries bind the header digest)', () => {
    // Recipient A knows the content key of an envelope also sent to B; it re-seals the stream
    // with its own header and signature, keeping B's entry. B must refuse it.
    const env = seal(input(), utf8('original'), hq.sender, [embassies[0]!.verified, embassies[1]!.verified], opts());
    const forged = seal(input(), utf8('forged'), embassies[0]!.sender, [embassies[0]!.verified, embassies[1]!.verified], opts());
    const { prelude: p1, recordsOffset: o1 } = readPreludeFrame(env);
    void p1;
    const { recordsOffset: o2 } = readPreludeFrame(forged);
    // Same entries (B's wrap of the original content key), forged stream: B fails to open.
    expect(() => open(concat(env.subarray(0, o1), forged.subarray(o2)), embassies[1]!.recipient, org.trust, openAt)).toThrow(OpenError);
  });
});

describe('sender verification', () => {
  it('rejects a revoked sender with a typed reason', () => {
    const env = seal(input(), utf8('x'), hq.sender, [embassies[0]!.verified], opts());
    const crl = issueRevocationList(org.root, { sequence: 1, issuedAt: NOW, nextUpdate: NOW + 3600, revoked: [hq.device.certId] });
    try {
      open(env, embassies[0]!.recipient, { ...org.trust, revocationList: crl }, openAt);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(VerifyError);
      expect((err as VerifyError).reason).toBe(VerifyReason.Revoked);
    }
  });

  it('rejects an expired sender certificate', () => {
    const shortLived = org.addDevice('Temp', 'HQ', { validFrom: NOW - 10, validUntil: NOW + 10 });
    const env = seal(input(), utf8('x'), shortLived.sender, [embassies[0]!.verified], opts());
    expect(() => open(env, embassies[0]!.recipient, org.trust, { now: NOW + YEAR })).toThrow(
      expect.objectContaining({ reason: VerifyReason.Expired }),
    );
  });

  it('rejects a sender of another organisation', () => {
    const other = makeOrg('another-org').addDevice('Impostor', 'Embassy in Paris');
    const env = seal(input(), utf8('x'), other.sender, [embassies[0]!.verified], opts());
    expect(() => open(env, embassies[0]!.recipient, org.trust, openAt)).toThrow(VerifyError);
  });

  it('refuses unverified recipients and mixed KEMs', () => {
    const fake = { ...embassies[0]!.verified, verified: false } as unknown as TestDevice['verified'];
    expect(() => seal(input(), utf8('x'), hq.sender, [fake], opts())).toThrow(SealError);
    expect(() => seal(input(), utf8('x'), hq.sender, [embassies[0]!.verified, pool[0]!.verified], opts())).toThrow(/same KEM/);
    expect(() => seal(input(), utf8('x'), hq.sender, [], opts())).toThrow(SealError);
  });
});

describe('streaming', () => {
  it('seals and opens a large body in pieces with bounded buffers', () => {
    const total = 5 * CHUNK_SIZE + 12345;
    const s = createSealer(input(), hq.sender, [embassies[1]!.verified], opts());
    const o = createOpener(embassies[1]!.recipient, org.trust, openAt);
    let received = 0;
    let maxPiece = 0;
    const feed = (bytes: Uint8Array) => {
      for (let i = 0; i < bytes.length; i += 10_000) {
        for (const chunk of o.push(bytes.subarray(i, i + 10_000))) {
          received += chunk.length;
          maxPiece = Math.max(maxPiece, chunk.length);
        }
      }
    };
    feed(s.head);
    for (let sent = 0; sent < total; sent += 7000) feed(s.update(new Uint8Array(Math.min(7000, total - sent)).fill(sent % 251)));
    // The header arrives with the first released chunk, well before the end.
    expect(o.unverifiedHeader?.subject).toBe('Circular 12/2027: consular fees');
    feed(s.final());
    const done = o.final();
    for (const chunk of done.rest) received += chunk.length;
    expect(received).toBe(total);
    expect(done.bodyLength).toBe(total);
    expect(maxPiece).toBeLessThanOrEqual(CHUNK_SIZE);
  });
});

describe('sealer input checks', () => {
  it('refuses what no recipient could open', () => {
    const one = [embassies[0]!.verified];
    expect(() => seal(input({ subject: 'bad \uD800 text' }), utf8(''), hq.sender, one, opts())).toThrow(SealError);
    expect(() => seal(input({ createdAt: 1.5 }), utf8(''), hq.sender, one, opts())).toThrow(SealError);
    expect(() =>
      seal(input({ distribution: [{ kind: 9 as 1, id: new Uint8Array(16), name: 'x' }] }), utf8(''), hq.sender, one, opts()),
    ).toThrow(SealError);
    expect(() => seal(input({ distribution: [{ kind: 1, id: new Uint8Array(3), name: 'x' }] }), utf8(''), hq.sender, one, opts())).toThrow(
      SealError,
    );
    const wrongKey = { ...hq.sender, signingSecretKey: embassies[0]!.signingSecretKey };
    expect(() => seal(input(), utf8(''), wrongKey, one, opts())).toThrow(/does not match/);
  });
});

describe('evidence', () => {
  it('lets a recipient show a third party what the sender signed', () => {
    const env = seal(input(), utf8('signed content'), hq.sender, [embassies[0]!.verified], opts());
    const got = open(env, embassies[0]!.recipient, org.trust, openAt);
    expect(verifyEvidence(got.evidence, hq.device.signingKey)).toBe(true);
    expect(verifyEvidence(got.evidence, embassies[0]!.device.signingKey)).toBe(false);
    const altered = { ...got.evidence, bodyDigest: got.evidence.bodyDigest.map((b, i) => (i === 0 ? b ^ 1 : b)) };
    expect(verifyEvidence(altered, hq.device.signingKey)).toBe(false);
    expect(verifyEvidence(got.evidence, hq.device.signingKey, { body: utf8('signed content') })).toBe(true);
    expect(verifyEvidence(got.evidence, hq.device.signingKey, { body: utf8('other content') })).toBe(false);
  });

  it('proves which personal copy a recipient received', () => {
    const recipients = embassies.slice(0, 2).map((e) => e.verified);
    const env = seal(input({ personal: (i) => utf8(`copy ${i}`) }), utf8('annex'), hq.sender, recipients, opts());
    const got = open(env, embassies[1]!.recipient, org.trust, openAt);
    expect(verifyEvidence(got.evidence, hq.device.signingKey, { personal: utf8('copy 1') })).toBe(true);
    expect(verifyEvidence(got.evidence, hq.device.signingKey, { personal: utf8('copy 0') })).toBe(false);
  });
});

describe('relay slicing', () => {
  it('each recipient opens its own slice, which holds no other entry', () => {
    const env = seal(
      input(),
      utf8('sliced'),
      hq.sender,
      embassies.map((e) => e.verified),
      opts(),
    );
    const { deliveries, records } = splitEnvelope(env);
    expect(deliveries).toHaveLength(3);
    for (const [i, e] of embassies.entries()) {
      const mine = concat(deliveries[i]!, records);
      expect(readPreludeFrame(mine).prelude.entries).toHaveLength(1);
      expect(open(mine, e.recipient, org.trust, openAt).body).toEqual(utf8('sliced'));
      expect(sliceEnvelope(env, i)).toEqual(mine);
    }
    expect(() => open(concat(deliveries[0]!, records), embassies[1]!.recipient, org.trust, openAt)).toThrow(OpenError);
  });
});

describe('bad input', () => {
  it('random bytes give only typed errors', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        try {
          open(bytes, embassies[0]!.recipient, org.trust, openAt);
        } catch (err) {
          expect(ValiseError.is(err)).toBe(true);
          return;
        }
        throw new Error('random bytes opened');
      }),
      { numRuns: 300 },
    );
  });
});

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  throw new Error('not found');
}
