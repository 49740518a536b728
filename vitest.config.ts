import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (p: string) => fileURLToPath(new URL(`./packages/${p}`, import.meta.url));
const alias = {
  '@valise/protocol/node': src('protocol/src/node.ts'),
  '@valise/protocol': src('protocol/src/index.ts'),
};

// The protocol suite runs twice, once per crypto provider: both must give the same bytes.
export default defineConfig({
  resolve: { alias },
  test: {
    projects: [
      {
        resolve: { alias },
        test: {
          name: 'protocol:noble',
          include: ['packages/protocol/test/**/*.test.ts'],
          setupFiles: [src('protocol/test/setup-noble.ts')],
        },
      },
      {
        resolve: { alias },
        test: { name: 'protocol:node', include: ['packages/protocol/test/**/*.test.ts'], setupFiles: [src('protocol/test/setup-node.ts')] },
      },
      {
        resolve: { alias },
        test: {
          name: 'relay+cli',
          include: ['packages/relay/test/**/*.test.ts', 'packages/cli/test/**/*.test.ts'],
          setupFiles: [src('protocol/test/setup-node.ts')],
        },
      },
    ],
  },
});
