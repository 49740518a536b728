/**
 * Padmé padding (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files and
 * Communication with PURBs", PETS 2019): rounds a length up so that at most O(log log L) bits
 * of it leak, with at most ~12% overhead (less for larger lengths).
 */
import { ArgumentError } from './errors.js';

export function padme(length: number): number {
  if (!Number.isSafeInteger(length) || length < 0) throw new ArgumentError(`padme: bad length ${length}`);
  if (length < 2) return length;
  const e = floorLog2(length);
  const s = floorLog2(e) + 1;
  const lastBits = e - s;
  const step = 2 ** lastBits;
  return Math.ceil(length / step) * step;
}

/** floor(log2(n)) for n >= 1, exactly (Math.log2 rounds just below powers of two). */
function floorLog2(n: number): number {
  let e = 0;
  while (2 ** (e + 1) <= n) e++;
  return e;
}
