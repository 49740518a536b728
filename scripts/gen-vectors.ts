/** `npm run vectors`: writes test-vectors/<area>/<case>.json from fixed seeds. */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { useNodeCrypto } from '../packages/protocol/src/node.js';
import { generateAllVectors, vectorJson, vectorPath } from '../packages/protocol/test/vectors/generate.js';

useNodeCrypto();
const root = join(dirname(fileURLToPath(import.meta.url)), '..', 'test-vectors');
const vectors = generateAllVectors();
const areas = new Set(vectors.map((v) => v.area));
for (const area of areas) rmSync(join(root, area), { recursive: true, force: true });
for (const v of vectors) {
  const path = join(root, vectorPath(v));
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, vectorJson(v));
}
console.log(`wrote ${vectors.length} vectors in ${[...areas].map((a) => `${a} (${readdirSync(join(root, a)).length})`).join(', ')}`);
