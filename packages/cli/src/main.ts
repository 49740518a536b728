#!/usr/bin/env node
/** The `valise` executable (package.json "bin" runs it through bin/valise.js). */
import { runCli } from './cli.js';

// `valise inbox | head`: a reader that goes away is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

process.exitCode = await runCli(process.argv.slice(2));
