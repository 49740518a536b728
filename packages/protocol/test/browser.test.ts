/**
 * The core must run unchanged in a browser: no `node:` import outside the native provider's
 * entry point, and a browser bundle that seals and opens with nothing but what a page has
 * (crypto.getRandomValues, TextEncoder/TextDecoder).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createContext, runInContext } from 'node:vm';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

const srcDir = fileURLToPath(new URL('../src/', import.meta.url));

describe('browser compatibility', () => {
  it('imports nothing from node: outside node.ts', () => {
    const offenders = readdirSync(srcDir)
      .filter((f) => f.endsWith('.ts') && f !== 'node.ts')
      .filter((f) => /from\s+['"](node:|fs|path|crypto|buffer|os)['"/]/.test(readFileSync(join(srcDir, f), 'utf8')));
    expect(offenders).toEqual([]);
  });

  it('a browser bundle seals and opens in a context with only browser globals', async () => {
    const entry = `
      import * as V from ${JSON.stringify(join(srcDir, 'index.ts'))};
      export function run() {
        const rnd = V.deterministicRandomForTesting('browser');
        const root = V.generateOrgRoot({ randomForTesting: rnd });
        const trust = { rootPublicKey: root.publicKey };
        const now = 1800000000;
        const validity = { validFrom: now - 100, validUntil: now + 100 };
        const mk = (name) => {
          const identity = V.generatePersonIdentity({ randomForTesting: rnd });
          const person = V.issuePersonCert(root, { identityKey: identity.publicKey, name, title: 't', unit: 'u', ...validity }, { randomForTesting: rnd });
          const signingSecretKey = rnd(32);
          const enc = V.xwingKeyPairFromSeed(rnd(32));
          const device = V.issueDeviceCert(identity, person, { signingKey: V.getProvider().ed25519PublicKey(signingSecretKey),
            encryption: { kem: V.KemId.XWing, publicKey: enc.publicKey }, label: 'browser', ...validity }, { randomForTesting: rnd });
          const chain = { person: person.bytes, device: device.bytes };
          return { chain, signingSecretKey, device, enc, verified: V.verifyDeviceChain(chain, trust, now) };
        };
        const a = mk('A'), b = mk('B');
        const env = V.seal({ subject: 's', classification: 'c', distribution: [] }, V.utf8('hello from a page'), a, [b.verified]);
        const got = V.open(env, { device: b.device, encryptionSecretKey: b.enc.secretKey }, trust, { now });
        return { provider: V.getProvider().name, body: new TextDecoder().decode(got.body), sender: got.sender.person.name };
      }`;
    const out = await build({
      stdin: { contents: entry, resolveDir: srcDir, loader: 'ts' },
      bundle: true,
      platform: 'browser',
      format: 'iife',
      globalName: 'Valise',
      write: false,
      logLevel: 'silent',
    });
    const code = out.outputFiles[0]?.text as string;
    expect(code).not.toMatch(/require\(["']node:/);
    const getRandomValues = <T extends ArrayBufferView | null>(a: T): T =>
      globalThis.crypto.getRandomValues(a as Uint8Array) as unknown as T;
    const sandbox = createContext({ crypto: { getRandomValues }, TextEncoder, TextDecoder, console });
    runInContext(code, sandbox);
    const result = runInContext('Valise.run()', sandbox);
    expect(result).toEqual({ provider: 'noble', body: 'hello from a page', sender: 'A' });
  }, 60_000);
});
