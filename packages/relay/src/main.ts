/**
 * The relay's command-line entry, called by `valise relay ...` (packages/cli) and by `cli.ts`:
 *
 *   serve   --data DIR --org-root FILE [--port N] [--host ADDR] [--public-host NAME]...
 *           [--revocation FILE] [--log-level LEVEL] [--limit NAME=VALUE]...
 *   backup  --data DIR --out FILE
 *   restore --from FILE --data DIR [--force]
 *
 * `serve` runs until SIGINT or SIGTERM, then shuts down gracefully.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fromBase64Url, fromHex } from '@valise/protocol';
import { pino } from 'pino';
import { backupRelay, restoreRelay } from './backup.js';
import { DEFAULT_LIMITS, type RelayLimits } from './options.js';
import { type RunningRelay, startRelay } from './server.js';

export interface RelayMainIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

const defaultIo: RelayMainIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

export const RELAY_USAGE = `usage:
  relay serve   --data DIR --org-root FILE [--port N] [--host ADDR] [--public-host NAME]...
                [--revocation FILE] [--log-level LEVEL] [--limit NAME=VALUE]...   (limits: see spec/relay.md)
  relay backup  --data DIR --out FILE
  relay restore --from FILE --data DIR [--force]`;

/**
 * Reads the organisation root's public key from a file holding it as 32 raw bytes, 64 hex digits,
 * 43 base64url characters, or JSON with a `publicKey` (or `rootPublicKey`) field in hex or base64url.
 */
export function readOrgRootPublicKey(path: string): Uint8Array {
  const raw = readFileSync(path);
  if (raw.length === 32) return new Uint8Array(raw);
  const text = raw.toString('utf8').trim();
  const parse = (s: string): Uint8Array | undefined => {
    if (/^[0-9a-fA-F]{64}$/.test(s)) return fromHex(s);
    if (/^[A-Za-z0-9_-]{43}$/.test(s)) return fromBase64Url(s);
    return undefined;
  };
  const direct = parse(text);
  if (direct !== undefined) return direct;
  if (text.startsWith('{')) {
    const obj = JSON.parse(text) as Record<string, unknown>;
    for (const k of ['publicKey', 'rootPublicKey', 'orgRootPublicKey']) {
      const v = obj[k];
      if (typeof v === 'string') {
        const key = parse(v);
        if (key !== undefined) return key;
      }
    }
  }
  throw new Error(`${path}: no organisation root public key (32 bytes, hex, base64url, or JSON {"publicKey": ...})`);
}

/** Parses `serve` arguments and starts the relay (without waiting for a signal). */
export async function serveFromArgs(args: string[]): Promise<RunningRelay> {
  const { values } = parseArgs({
    args,
    options: {
      data: { type: 'string' },
      'org-root': { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      'public-host': { type: 'string', multiple: true },
      revocation: { type: 'string' },
      'log-level': { type: 'string' },
      limit: { type: 'string', multiple: true },
    },
    strict: true,
  });
  const limits: Partial<RelayLimits> = {};
  for (const item of values.limit ?? []) {
    const m = /^([A-Za-z]+)=([0-9.]+)$/.exec(item);
    if (m === null || !((m[1] as string) in DEFAULT_LIMITS))
      throw new Error(`bad --limit ${item} (NAME=VALUE, NAME one of ${Object.keys(DEFAULT_LIMITS).join(', ')})`);
    limits[m[1] as keyof RelayLimits] = Number(m[2]);
  }
  if (values.data === undefined || values['org-root'] === undefined) throw new Error('serve needs --data DIR and --org-root FILE');
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad --port ${values.port}`);
  return startRelay({
    dataDir: values.data,
    orgRootPublicKey: readOrgRootPublicKey(values['org-root']),
    host: values.host ?? '127.0.0.1',
    port,
    limits,
    ...(values['public-host'] === undefined ? {} : { publicHosts: values['public-host'] }),
    ...(values.revocation === undefined ? {} : { revocationList: new Uint8Array(readFileSync(values.revocation)) }),
    logger: pino({ level: values['log-level'] ?? 'info', base: { service: 'valise-relay' } }),
  });
}

/** Resolves at the first SIGINT or SIGTERM (an operator's Ctrl-C or a service manager's stop). */
export function untilStopSignal(): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

/** Runs one relay command; resolves with the process exit code. */
export async function relayMain(argv: string[], io: RelayMainIo = defaultIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'serve': {
        const relay = await serveFromArgs(rest);
        await untilStopSignal();
        await relay.close();
        return 0;
      }
      case 'backup': {
        const { values } = parseArgs({ args: rest, options: { data: { type: 'string' }, out: { type: 'string' } }, strict: true });
        if (values.data === undefined || values.out === undefined) throw new Error('backup needs --data DIR and --out FILE');
        const r = await backupRelay(values.data, values.out);
        io.out(`backup written to ${values.out} (${r.bytes} bytes; ${r.prekeysRemoved} one-time prekeys left out)`);
        return 0;
      }
      case 'restore': {
        const { values } = parseArgs({
          args: rest,
          options: { from: { type: 'string' }, data: { type: 'string' }, force: { type: 'boolean' } },
          strict: true,
        });
        if (values.from === undefined || values.data === undefined) throw new Error('restore needs --from FILE and --data DIR');
        const r = restoreRelay(values.from, values.data, { force: values.force === true });
        io.out(`restored into ${values.data} (${r.prekeysRemoved} one-time prekeys wiped)`);
        return 0;
      }
      default:
        io.err(RELAY_USAGE);
        return 2;
    }
  } catch (err) {
    io.err(`relay ${command ?? ''}: ${(err as Error).message}`);
    return 1;
  }
}
