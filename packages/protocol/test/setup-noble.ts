import { nobleProvider, useProvider } from '../src/provider.js';

useProvider(nobleProvider);
