/** `valise relay serve|backup|restore`: runs the relay of `@valise/relay` (no relay code here). */
import { readFileSync } from 'node:fs';
import { backupRelay, type RunningRelay, readOrgRootPublicKey, restoreRelay, startRelay } from '@valise/relay';
import { pino } from 'pino';
import { CliError, ExitCode, usageError } from './errors.js';

export { untilStopSignal } from '@valise/relay';

export interface RelayServeOptions {
  data: string;
  orgRoot: string;
  port?: number;
  host?: string;
  publicHost?: string[];
  revocation?: string;
  logLevel?: string;
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export async function relayServe(opts: RelayServeOptions): Promise<RunningRelay> {
  let root: Uint8Array;
  try {
    root = readOrgRootPublicKey(opts.orgRoot);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new CliError(
        'file-not-found',
        `${opts.orgRoot} does not exist`,
        ExitCode.NotFound,
        'give the root public key file written by `valise org init` (--org-root FILE)',
      );
    }
    throw new CliError(
      'bad-org-root',
      (err as Error).message,
      ExitCode.Usage,
      'give the root public key file written by `valise org init`',
    );
  }
  const level = opts.logLevel ?? 'info';
  if (!LEVELS.includes(level)) throw usageError(`--log-level: expected one of ${LEVELS.join(', ')}`);
  try {
    return await startRelay({
      dataDir: opts.data,
      orgRootPublicKey: root,
      host: opts.host ?? '127.0.0.1',
      port: opts.port ?? 0,
      ...(opts.publicHost === undefined || opts.publicHost.length === 0 ? {} : { publicHosts: opts.publicHost }),
      ...(opts.revocation === undefined ? {} : { revocationList: new Uint8Array(readFileSync(opts.revocation)) }),
      logger: pino({ level, base: { service: 'valise-relay' } }),
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE')
      throw new CliError('port-in-use', `port ${opts.port} is in use`, ExitCode.Conflict, 'choose another --port, or 0 for any free port');
    if (e.code === 'EACCES')
      throw new CliError('permission-denied', e.message, ExitCode.Failure, 'ports below 1024 need privileges; choose another --port');
    throw err;
  }
}

export async function relayBackup(opts: { data: string; out: string }): Promise<{ file: string; bytes: number }> {
  const r = await backupRelay(opts.data, opts.out);
  return { file: opts.out, bytes: r.bytes };
}

export function relayRestore(opts: { from: string; data: string; force?: boolean }): { data: string } {
  restoreRelay(opts.from, opts.data, { force: opts.force === true });
  return { data: opts.data };
}
