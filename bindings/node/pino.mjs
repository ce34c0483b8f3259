// ESM entry of the pino destination: the same objects as pino.js.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const kepmlogPino = require('./pino.js');

export const { KeeperLoggerDestination, pinoLevel } = kepmlogPino;
export default kepmlogPino;
