// ESM entry of the winston adapter.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const adapter = require('./winston.js');

export const { KeeperLoggerTransport, winstonLevel } = adapter;
export default KeeperLoggerTransport;
