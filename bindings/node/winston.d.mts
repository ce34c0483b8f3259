// ESM view of winston.d.ts.
export * from './winston.js';
import { KeeperLoggerTransport } from './winston.js';
export default KeeperLoggerTransport;
