/**
 * `@valise/protocol`: identities, HPKE, sealed envelopes. Pure TypeScript on `@noble/*`, no I/O;
 * runs unchanged in browsers. On Node, `import { useNodeCrypto } from '@valise/protocol/node'`
 * makes the same operations use native primitives.
 */
/** Leak simulations (spec/marks.md §6): what a leaker can do to a marked text; for tests, benchmarks and the demo. */
export * as attacks from './attacks.js';
export * from './bytes.js';
export * from './cbor.js';
export * from './envelope.js';
export * from './envelope-wire.js';
export * from './errors.js';
export * from './fingerprint.js';
export * from './hkdf.js';
export * from './hpke.js';
export * from './identity.js';
export * from './labels.js';
export * from './marks.js';
export * from './padme.js';
export * from './provider.js';
export * from './random.js';
export * from './relay-frames.js';
export * from './safety-number.js';
export * from './stream.js';
export * from './tardos.js';
export * from './xwing.js';
