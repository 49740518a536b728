/** Test organisation, devices, envelopes, and relays (in-process and child-process). */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type DeviceCert,
  generateOrgRoot,
  generatePersonIdentity,
  getProvider,
  issueDeviceCert,
  issuePersonCert,
  issueRevocationList,
  KemId,
  type OrgRoot,
  type PersonCert,
  type RelayRoute,
  type RevocationList,
  seal,
  systemRandom,
  type TrustStore,
  toHex,
  type VerifiedDevice,
  verifyDeviceChain,
  xwingKeyPairFromSeed,
} from '@valise/protocol';
import { pino } from 'pino';
import { type RelayOptions, type RunningRelay, startRelay } from '../src/index.js';
import type { DeviceCredentials } from './client.js';

export const DAY = 24 * 3600;
export const now = () => Math.floor(Date.now() / 1000);

export interface TestDevice {
  name: string;
  person: PersonCert;
  device: DeviceCert;
  verified: VerifiedDevice;
  creds: DeviceCredentials;
  signingSecretKey: Uint8Array;
  encryptionSecretKey: Uint8Array;
  /** The device's mailbox id: its certificate id. */
  mailbox: Uint8Array;
}

export interface TestOrg {
  root: OrgRoot;
  trust: TrustStore;
  enrol(name: string, unit?: string, options?: { kem?: 'xwing' | 'x25519'; validUntil?: number }): TestDevice;
  revoke(sequence: number, ids: Uint8Array[], options?: { nextUpdate?: number }): RevocationList;
}

export function makeOrg(): TestOrg {
  const root = generateOrgRoot();
  const trust: TrustStore = { rootPublicKey: root.publicKey };
  return {
    root,
    trust,
    enrol(name, unit = 'Embassy', options = {}) {
      const t = now();
      const validUntil = options.validUntil ?? t + 365 * DAY;
      const identity = generatePersonIdentity();
      const person = issuePersonCert(root, {
        identityKey: identity.publicKey,
        name,
        title: 'Officer',
        unit,
        validFrom: t - DAY,
        validUntil,
      });
      const signingSecretKey = systemRandom(32);
      let encryptionSecretKey: Uint8Array;
      let encryption: { kem: number; publicKey: Uint8Array };
      if (options.kem === 'x25519') {
        encryptionSecretKey = systemRandom(32);
        encryption = { kem: KemId.DhkemX25519HkdfSha256, publicKey: getProvider().x25519PublicKey(encryptionSecretKey) };
      } else {
        const kp = xwingKeyPairFromSeed(systemRandom(32));
        encryptionSecretKey = kp.secretKey;
        encryption = { kem: KemId.XWing, publicKey: kp.publicKey };
      }
      const device = issueDeviceCert(identity, person, {
        signingKey: getProvider().ed25519PublicKey(signingSecretKey),
        encryption,
        label: `${name} workstation`,
        validFrom: t - DAY,
        validUntil,
      });
      const verified = verifyDeviceChain({ person: person.bytes, device: device.bytes }, trust, t);
      return {
        name,
        person,
        device,
        verified,
        creds: { personCert: person.bytes, deviceCert: device.bytes, signingSecretKey },
        signingSecretKey,
        encryptionSecretKey,
        mailbox: device.certId,
      };
    },
    revoke(sequence, ids, options = {}) {
      const t = now();
      return issueRevocationList(root, { sequence, issuedAt: t - 10, nextUpdate: options.nextUpdate ?? t + 7 * DAY, revoked: ids });
    },
  };
}

/** Seals `body` from `sender` to `recipients` (one entry each, in order). */
export function sealFor(sender: TestDevice, recipients: TestDevice[], body: Uint8Array | string, subject = 'Test item'): Uint8Array {
  const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
  return seal(
    { subject, classification: 'CONFIDENTIAL', distribution: [] },
    bytes,
    { chain: { person: sender.person.bytes, device: sender.device.bytes }, signingSecretKey: sender.signingSecretKey },
    recipients.map((r) => r.verified),
  );
}

export const routesFor = (recipients: TestDevice[]): RelayRoute[] => recipients.map((r, i) => ({ entryIndex: i, mailbox: r.mailbox }));

export function tempDir(prefix = 'valise-relay-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A pino logger whose lines are kept in `lines` (as written: JSON text). */
export function captureLogger(level = 'debug') {
  const lines: string[] = [];
  const logger = pino({ level, base: { service: 'valise-relay' } }, { write: (s: string) => lines.push(s) });
  return { logger, lines };
}

export interface InProcessRelay {
  relay: RunningRelay;
  url: string;
  dataDir: string;
  logs: string[];
  close(): Promise<void>;
}

/** Starts a relay in this process on 127.0.0.1, port 0, with captured logs. */
export async function startTestRelay(org: TestOrg, options: Partial<RelayOptions> = {}): Promise<InProcessRelay> {
  const dataDir = options.dataDir ?? tempDir();
  const { logger, lines } = captureLogger();
  const relay = await startRelay({ orgRootPublicKey: org.root.publicKey, dataDir, logger, ...options });
  return {
    relay,
    url: relay.url,
    dataDir,
    logs: lines,
    close: async () => {
      await relay.close();
    },
  };
}

export const removeDir = (dir: string) => rmSync(dir, { recursive: true, force: true });

const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../../..', import.meta.url));

export interface ChildRelay {
  child: ChildProcess;
  url: string;
  port: number;
  logs: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `relay serve` in a child process (through tsx) and waits until it listens. */
export async function spawnRelay(dataDir: string, org: TestOrg, extraArgs: string[] = []): Promise<ChildRelay> {
  const rootFile = join(dataDir, '..', `${toHex(org.root.orgId)}.root`);
  writeFileSync(rootFile, toHex(org.root.publicKey));
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', CLI, 'serve', '--data', dataDir, '--org-root', rootFile, '--port', '0', '--log-level', 'info', ...extraArgs],
    { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const logs: string[] = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`relay child did not start: ${stderr}`)), 30_000);
    child.stdout?.on('data', (c: Buffer) => {
      buf += c.toString();
      let i = buf.indexOf('\n');
      while (i >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        logs.push(line);
        try {
          const obj = JSON.parse(line) as { msg?: string; port?: number };
          if (obj.msg === 'relay listening' && typeof obj.port === 'number') {
            clearTimeout(timer);
            resolve(obj.port);
          }
        } catch {
          // not a log line
        }
        i = buf.indexOf('\n');
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`relay child exited (${code ?? signal}) before listening: ${stderr}`));
    });
  });
  return { child, url: `http://127.0.0.1:${port}`, port, logs, exited };
}
