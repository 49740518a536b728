/** Runs the built `valise` (packages/cli/dist/main.js) as a child process. */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
export const REPO = fileURLToPath(new URL('../../..', import.meta.url));

export function requireBuilt(): void {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` first`);
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function valise(args: string[], options: { env?: NodeJS.ProcessEnv; input?: string | Uint8Array } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      cwd: REPO,
      env: { ...process.env, VALISE_HOME: '', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    if (options.input !== undefined) child.stdin.end(options.input);
    else child.stdin.end();
  });
}

/** Runs a command with --json and returns the parsed object; fails the test on a non-zero exit. */
export async function valiseJson<T = Record<string, unknown>>(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; input?: string } = {},
): Promise<T> {
  const r = await valise([...args, '--json'], options);
  if (r.code !== 0) throw new Error(`valise ${args.join(' ')} exited ${r.code}: ${r.stdout}${r.stderr}`);
  const obj = JSON.parse(r.stdout) as { ok: boolean } & T;
  if (obj.ok !== true) throw new Error(`valise ${args.join(' ')}: ${r.stdout}`);
  return obj;
}

export interface RelayProcess {
  child: ChildProcess;
  port: number;
  url: string;
  stop(): Promise<number | null>;
}

/** `valise relay serve` in a child process; resolves once it logs "relay listening". */
export function startRelayProcess(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RelayProcess> {
  const child = spawn(process.execPath, [MAIN, 'relay', 'serve', ...args], {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`relay did not start: ${stderr}`)), 30_000);
    child.stdout?.on('data', (c: Buffer) => {
      buf += c.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          const o = JSON.parse(line) as { msg?: string; port?: number };
          if (o.msg === 'relay listening' && typeof o.port === 'number') {
            clearTimeout(timer);
            const port = o.port;
            resolve({
              child,
              port,
              url: `http://127.0.0.1:${port}`,
              stop: async () => {
                child.kill('SIGTERM');
                return exited;
              },
            });
          }
        } catch {
          // not a log line
        }
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`relay exited (${code}) before listening: ${stderr}`));
    });
  });
}
