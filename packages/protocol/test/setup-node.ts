import { useNodeCrypto } from '../src/node.js';

useNodeCrypto();
