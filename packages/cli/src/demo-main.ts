#!/usr/bin/env node
/** `npm run demo`: the narrated demo (the same as `valise demo`). */
import { runDemo } from './demo.js';

try {
  await runDemo();
} catch (err) {
  process.stderr.write(`demo failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
}
