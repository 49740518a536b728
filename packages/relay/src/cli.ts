/** Runs the relay commands directly: `node packages/relay/dist/cli.js serve --data DIR --org-root FILE`. */
import { relayMain } from './main.js';

process.exitCode = await relayMain(process.argv.slice(2));
