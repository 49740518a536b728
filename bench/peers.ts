/**
 * Peer libraries, loaded only if `bench/node_modules` has them (`npm --prefix bench ci`).
 *
 * They are imported through a variable specifier with the few types used declared here, so the
 * repository type-checks (tsconfig.test.json includes bench/) without the peers installed.
 */

export interface HpkeCoreSuite {
  kem: { generateKeyPair(): Promise<CryptoKeyPair> };
  seal(
    params: { recipientPublicKey: CryptoKey; info?: Uint8Array },
    pt: Uint8Array,
    aad?: Uint8Array,
  ): Promise<{ ct: ArrayBuffer; enc: ArrayBuffer }>;
  open(
    params: { recipientKey: CryptoKey | CryptoKeyPair; enc: ArrayBuffer; info?: Uint8Array },
    ct: ArrayBuffer,
    aad?: Uint8Array,
  ): Promise<ArrayBuffer>;
}

export interface AgeModule {
  Encrypter: new () => { addRecipient(s: string): void; encrypt(file: Uint8Array): Promise<Uint8Array> };
  Decrypter: new () => { addIdentity(s: string | CryptoKey): void; decrypt(file: Uint8Array): Promise<Uint8Array> };
  identityToRecipient(identity: string | CryptoKey): Promise<string>;
}

export interface Peers {
  /** DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20-Poly1305, or undefined with the reason. */
  hpke?: HpkeCoreSuite;
  age?: AgeModule;
  missing: string[];
}

async function tryImport(specifier: string): Promise<Record<string, unknown> | undefined> {
  try {
    return (await import(specifier)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

export async function loadPeers(): Promise<Peers> {
  const missing: string[] = [];
  const out: Peers = { missing };

  const core = await tryImport('@hpke/core');
  const chacha = await tryImport('@hpke/chacha20poly1305');
  if (core && chacha) {
    type Ctor = new (arg?: unknown) => unknown;
    const CipherSuite = core.CipherSuite as Ctor;
    const Kem = core.DhkemX25519HkdfSha256 as Ctor;
    const Kdf = core.HkdfSha256 as Ctor;
    const Aead = chacha.Chacha20Poly1305 as Ctor;
    out.hpke = new CipherSuite({ kem: new Kem(), kdf: new Kdf(), aead: new Aead() }) as HpkeCoreSuite;
  } else {
    if (!core) missing.push('@hpke/core');
    if (!chacha) missing.push('@hpke/chacha20poly1305');
  }

  const age = await tryImport('age-encryption');
  if (age) out.age = age as unknown as AgeModule;
  else missing.push('age-encryption');
  return out;
}

/**
 * A non-extractable X25519 private key made by WebCrypto. Typage accepts a CryptoKey identity,
 * which spares it re-importing the raw key on every decryption: the fastest way to use it, as
 * Valise's own node provider caches its imported keys.
 */
export async function ageX25519Identity(): Promise<CryptoKey> {
  const pair = (await crypto.subtle.generateKey({ name: 'X25519' }, false, ['deriveBits'])) as CryptoKeyPair;
  return pair.privateKey;
}

/** An Ed25519 pair in WebCrypto, for the "@hpke/core + Ed25519" row (same work as Valise's signature). */
export async function webCryptoEd25519(): Promise<CryptoKeyPair> {
  return (await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])) as CryptoKeyPair;
}
