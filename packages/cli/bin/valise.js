#!/usr/bin/env node
// The `valise` executable. A committed file rather than dist/main.js, so that `npm ci` on a fresh
// clone (before any build) can link it into node_modules/.bin; it runs the built command.
import '../dist/main.js';
