// ESM view of index.d.ts: the same declarations, with Logger as the default export.
export * from './index.js';
import { Logger } from './index.js';
export default Logger;
