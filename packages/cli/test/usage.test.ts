/**
 * Every command's --help, and bad arguments: an actionable message on stderr, a JSON error with
 * --json, and a non-zero exit code from the documented set. In this process (runCli) for speed,
 * plus the built executable for the bin, the shebang and the exit codes of a real process.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { buildProgram, type CliIo, runCli } from '../src/cli.js';
import { ExitCode } from '../src/errors.js';
import { fixedPassphrases } from '../src/passphrase.js';
import { REPO, requireBuilt, valise } from './helpers.js';

const folder = mkdtempSync(join(tmpdir(), 'valise-cli-usage-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

function capture(env: NodeJS.ProcessEnv = {}, withPassphrases = true) {
  let out = '';
  let err = '';
  const io: CliIo = {
    out: (t) => {
      out += t;
    },
    err: (t) => {
      err += t;
    },
    readStdin: async () => new TextEncoder().encode('body from stdin'),
    stdinIsTTY: false,
    env,
    untilSignal: () => Promise.resolve(),
    ...(withPassphrases ? { passphrases: fixedPassphrases('usage home passphrase', 'usage bundle passphrase') } : {}),
  };
  return { io, out: () => out, err: () => err };
}

/** Every command path of the program: ['org'], ['org', 'init'], ... */
function commandPaths(): string[][] {
  const program = buildProgram(capture().io, () => {});
  const paths: string[][] = [];
  const walk = (cmd: Command, prefix: string[]) => {
    for (const sub of cmd.commands) {
      const path = [...prefix, sub.name()];
      paths.push(path);
      walk(sub, path);
    }
  };
  walk(program, []);
  return paths;
}

describe('help', () => {
  const paths = commandPaths();

  it('covers every command of the spec', () => {
    const names = paths.map((p) => p.join(' '));
    for (const c of [
      'org init',
      'person add',
      'person list',
      'office add',
      'office assign',
      'office list',
      'office export',
      'device enrol',
      'revoke',
      'revocation publish',
      'register',
      'send',
      'inbox',
      'read',
      'safety-number',
      'status',
      'directory import',
      'directory search',
      'relay serve',
      'relay backup',
      'relay restore',
      'demo',
    ]) {
      expect(names).toContain(c);
    }
  });

  it.each(paths.map((p) => [p.join(' '), p] as const))('valise %s --help', async (_name, path) => {
    const c = capture();
    expect(await runCli([...path, '--help'], c.io)).toBe(ExitCode.Ok);
    expect(c.out()).toContain(`Usage: valise ${path.join(' ')}`);
    expect(c.err()).toBe('');
  });

  it('valise --help lists the commands, the passphrase variables and the exit codes', async () => {
    const c = capture();
    expect(await runCli(['--help'], c.io)).toBe(0);
    expect(c.out()).toMatch(/VALISE_PASSPHRASE/);
    expect(c.out()).toMatch(/Exit codes: 0 ok/);
    for (const name of ['org', 'person', 'send', 'inbox', 'relay', 'demo']) expect(c.out()).toContain(name);
  });
});

describe('bad arguments', () => {
  const home = join(folder, 'nothing-here');
  const cases: [string, string[], number, RegExp][] = [
    ['unknown command', ['bogus'], ExitCode.Usage, /unknown command 'bogus'/],
    ['unknown option', ['inbox', '--frobnicate'], ExitCode.Usage, /unknown option '--frobnicate'/],
    ['missing required option', ['person', 'add', '--name', 'A'], ExitCode.Usage, /required option '--title <title>' not specified/],
    ['not a number', ['inbox', '--quiet-ms', 'soon'], ExitCode.Usage, /argument 'soon' is invalid.*milliseconds/],
    ['out of range', ['--timeout', '5', 'status'], ExitCode.Usage, /from 100 to 600000/],
    [
      'bad choice',
      ['device', 'enrol', '--person', 'a'.repeat(32), '--label', 'x', '--kem', 'rsa'],
      ExitCode.Usage,
      /Allowed choices are xwing, x25519/,
    ],
    ['command group without a command', ['office'], ExitCode.Usage, /Usage: valise office/],
    [
      'malformed person id',
      ['--home', home, 'device', 'enrol', '--person', '12', '--label', 'x'],
      ExitCode.Usage,
      /32 hexadecimal digits.*\n.*valise person list/,
    ],
    ['malformed item id', ['--home', home, 'read', 'yesterday'], ExitCode.Usage, /not an item number/],
    [
      'malformed revocation target',
      ['--home', home, 'revoke', '--cert', 'everyone'],
      ExitCode.Usage,
      /--cert: expected 32 hexadecimal digits/,
    ],
    ['no home yet', ['--home', home, 'status'], ExitCode.NotFound, /no valise home in .*\n.*valise org init.*valise register/],
    ['administration without a home', ['--home', home, 'person', 'list'], ExitCode.NotFound, /no valise home/],
    ['no relay given', ['register', '--bundle', 'x.valise'], ExitCode.Usage, /required option '--relay <url>'/],
    [
      'bundle that does not exist',
      ['--home', home, 'register', '--bundle', join(folder, 'none.valise'), '--relay', 'http://127.0.0.1:9'],
      ExitCode.NotFound,
      /no such file/,
    ],
    ['no recipient', ['--home', home, 'send', '--subject', 'x'], ExitCode.Usage, /no recipient\n.*--to/],
    ['relay without root file', ['relay', 'serve', '--data', join(folder, 'r')], ExitCode.Usage, /required option '--org-root <file>'/],
    [
      'relay root file missing',
      ['relay', 'serve', '--data', join(folder, 'r'), '--org-root', join(folder, 'none.pub')],
      ExitCode.NotFound,
      /does not exist\n.*org init/,
    ],
    [
      'bad relay URL',
      ['--home', home, 'register', '--bundle', 'x.valise', '--relay', 'ftp://x'],
      ExitCode.Usage,
      /not a relay URL: ftp:\/\/x\n.*http:\/\/HOST:PORT/,
    ],
  ];

  it.each(cases)('%s', async (_name, args, code, message) => {
    const c = capture();
    expect(await runCli(args, c.io)).toBe(code);
    expect(c.err()).toMatch(message);
    expect(c.out()).toBe('');
  });

  it('an empty standard input is not taken for a body', async () => {
    const c = capture();
    c.io.readStdin = async () => new Uint8Array(0);
    expect(await runCli(['--home', home, 'send', '--to', 'someone', '--subject', 'x'], c.io)).toBe(ExitCode.Usage);
    expect(c.err()).toMatch(/standard input is empty\n.*--file FILE/);
  });

  it('--json errors are one JSON object on stdout', async () => {
    const c = capture();
    expect(await runCli(['--json', '--home', home, 'status'], c.io)).toBe(ExitCode.NotFound);
    const e = JSON.parse(c.out());
    expect(e).toMatchObject({ ok: false, error: { code: 'no-home', exitCode: ExitCode.NotFound } });
    expect(e.error.hint).toMatch(/valise org init/);
    const u = capture();
    expect(await runCli(['--json', 'bogus'], u.io)).toBe(ExitCode.Usage);
    expect(JSON.parse(u.out())).toMatchObject({ ok: false, error: { code: 'usage' } });
  });

  it('without a passphrase and without a terminal, says which variable to set', async () => {
    const c = capture({}, false);
    expect(await runCli(['--home', join(folder, 'new'), 'org', 'init'], c.io)).toBe(ExitCode.Passphrase);
    expect(c.err()).toMatch(/no terminal to ask on\n.*VALISE_PASSPHRASE/);
  });

  it('refuses a too weak scrypt setting and a short passphrase for new files', async () => {
    const c = capture({ VALISE_SCRYPT_LOG_N: '4' });
    expect(await runCli(['--home', join(folder, 'weak'), 'org', 'init'], c.io)).toBe(ExitCode.Usage);
    const s = capture({ VALISE_PASSPHRASE: 'short' }, false);
    expect(await runCli(['--home', join(folder, 'short'), 'org', 'init'], s.io)).toBe(ExitCode.Passphrase);
    expect(s.err()).toMatch(/shorter than 8/);
  });
});

describe('the built executable', { timeout: 60_000 }, () => {
  it('runs through the bin link with the shebang, and exits with the documented codes', async () => {
    requireBuilt();
    const { spawnSync } = await import('node:child_process');
    const bin = join(REPO, 'node_modules', '.bin', 'valise');
    const version = spawnSync(bin, ['--version'], { encoding: 'utf8' });
    expect(version.status).toBe(0);
    expect(version.stdout.trim()).toBe('0.1.0');
    const help = await valise(['send', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--classification <text>/);
    const bad = await valise(['send', '--to']);
    expect(bad.code).toBe(ExitCode.Usage);
    expect(bad.stderr).toMatch(/argument missing/);
    const missing = await valise(['--home', join(folder, 'nope'), 'inbox'], { env: { VALISE_PASSPHRASE: 'whatever passphrase' } });
    expect(missing.code).toBe(ExitCode.NotFound);
    expect(missing.stderr).toMatch(/valise register --bundle FILE --relay URL/);
  });
});
