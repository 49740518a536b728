/**
 * Where passphrases come from: an environment variable (scripts, tests) or a prompt on the
 * terminal without echo. `VALISE_PASSPHRASE` unlocks the home; `VALISE_BUNDLE_PASSPHRASE`
 * protects the bundles handed to people and devices.
 */
import { CliError, ExitCode } from './errors.js';

export type PassphrasePurpose =
  /** Unlock an existing home. */
  | 'home'
  /** Choose the passphrase of a new home. */
  | 'new-home'
  /** Open a bundle. */
  | 'bundle'
  /** Choose the passphrase of a new bundle. */
  | 'new-bundle';

export interface PassphraseSource {
  get(purpose: PassphrasePurpose, what: string): Promise<string>;
}

export const ENV_HOME_PASSPHRASE = 'VALISE_PASSPHRASE';
export const ENV_BUNDLE_PASSPHRASE = 'VALISE_BUNDLE_PASSPHRASE';

const MIN_NEW_LENGTH = 8;

/** Reads a line from the terminal without echoing it. */
export function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  const out = process.stderr;
  return new Promise((resolve, reject) => {
    out.write(question);
    const wasRaw = stdin.isRaw;
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    let value = '';
    const done = (err?: Error) => {
      stdin.off('data', onData);
      stdin.setRawMode(wasRaw);
      stdin.pause();
      out.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return done();
        if (ch === '\u0003') return done(new CliError('interrupted', 'interrupted', ExitCode.Failure));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else if (ch >= ' ') value += ch;
      }
    };
    stdin.on('data', onData);
  });
}

/** Environment first, then the terminal; refuses to guess when neither is available. */
export function defaultPassphraseSource(env: NodeJS.ProcessEnv = process.env): PassphraseSource {
  return {
    async get(purpose, what) {
      const isBundle = purpose === 'bundle' || purpose === 'new-bundle';
      const name = isBundle ? ENV_BUNDLE_PASSPHRASE : ENV_HOME_PASSPHRASE;
      const fromEnv = env[name];
      if (fromEnv !== undefined && fromEnv !== '') {
        if ((purpose === 'new-home' || purpose === 'new-bundle') && fromEnv.length < MIN_NEW_LENGTH) {
          throw new CliError(
            'weak-passphrase',
            `${name} is shorter than ${MIN_NEW_LENGTH} characters`,
            ExitCode.Passphrase,
            'choose a longer passphrase',
          );
        }
        return fromEnv;
      }
      if (!process.stdin.isTTY) {
        throw new CliError(
          'passphrase-required',
          `a passphrase is needed for ${what}, and there is no terminal to ask on`,
          ExitCode.Passphrase,
          `set ${name} in the environment, or run the command in a terminal`,
        );
      }
      if (purpose === 'home' || purpose === 'bundle') return promptHidden(`Passphrase for ${what}: `);
      for (;;) {
        const first = await promptHidden(`New passphrase for ${what}: `);
        if (first.length < MIN_NEW_LENGTH) {
          process.stderr.write(`At least ${MIN_NEW_LENGTH} characters, please.\n`);
          continue;
        }
        const again = await promptHidden('Repeat it: ');
        if (first === again) return first;
        process.stderr.write('The two did not match; again.\n');
      }
    },
  };
}

/** Fixed passphrases, for the demo and for tests that call commands in-process. */
export function fixedPassphrases(home: string, bundle: string): PassphraseSource {
  return { get: async (purpose) => (purpose === 'bundle' || purpose === 'new-bundle' ? bundle : home) };
}
