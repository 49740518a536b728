import { describe, expect, it } from 'vitest';
import { fromHex, toHex, utf8 } from '../src/bytes.js';
import { xchacha20poly1305Open, xchacha20poly1305Seal } from '../src/provider.js';

// draft-irtf-cfrg-xchacha-03, Appendix A.3.1 (AEAD_XChaCha20_Poly1305).
const key = fromHex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f');
const nonce = fromHex('404142434445464748494a4b4c4d4e4f5051525354555657');
const aad = fromHex('50515253c0c1c2c3c4c5c6c7');
const pt = utf8("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
const ct =
  'bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52e';
const tag = 'c0875924c1c7987947deafd8780acf49';

describe('XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha-03 A.3.1)', () => {
  it('seals to the published ciphertext and tag, and opens it', () => {
    expect(toHex(xchacha20poly1305Seal(key, nonce, pt, aad))).toBe(ct + tag);
    expect(xchacha20poly1305Open(key, nonce, fromHex(ct + tag), aad)).toEqual(pt);
  });

  it('returns null for a flipped bit, and refuses bad key or nonce sizes', () => {
    const t = fromHex(ct + tag);
    t[3]! ^= 1;
    expect(xchacha20poly1305Open(key, nonce, t, aad)).toBeNull();
    expect(() => xchacha20poly1305Seal(key, nonce.subarray(0, 12), pt, aad)).toThrow(/24-byte nonce/);
  });
});
