/**
 * Randomness. Production code always draws from the platform CSPRNG (`crypto.getRandomValues`,
 * in browsers and Node alike). A deterministic source exists for test vectors only, and can be
 * passed to an operation only through an option named `randomForTesting`, so that production
 * code cannot pick a fixed seed by accident.
 */
import { chacha20 } from '@noble/ciphers/chacha.js';
import { ArgumentError } from './errors.js';
import { Label, labelled } from './labels.js';
import { getProvider } from './provider.js';

export type RandomSource = (length: number) => Uint8Array;

const MAX_GET_RANDOM = 65536;

export const systemRandom: RandomSource = (length) => {
  const out = new Uint8Array(length);
  for (let o = 0; o < length; o += MAX_GET_RANDOM) {
    globalThis.crypto.getRandomValues(out.subarray(o, Math.min(length, o + MAX_GET_RANDOM)));
  }
  return out;
};

/**
 * A reproducible random source for test vectors: the ChaCha20 keystream under
 * SHA-256(labelled("valise/v1/test-random", seed)). Never use it to protect anything.
 */
export function deterministicRandomForTesting(seed: Uint8Array | string): RandomSource {
  const s = typeof seed === 'string' ? new TextEncoder().encode(seed) : seed;
  const key = getProvider().sha256(labelled(Label.TestRandom, s));
  const nonce = new Uint8Array(12);
  let block = 0;
  return (length) => {
    if (!Number.isSafeInteger(length) || length < 0) throw new ArgumentError(`random: bad length ${length}`);
    const blocks = Math.ceil(length / 64);
    const stream = chacha20(key, nonce, new Uint8Array(blocks * 64), undefined, block);
    block += blocks;
    return stream.subarray(0, length);
  };
}

/** Picks the caller's testing source if given, else the system CSPRNG. */
export function randomFrom(options?: { randomForTesting?: RandomSource }): RandomSource {
  return options?.randomForTesting ?? systemRandom;
}
