// ESM entry: the same objects as the CommonJS entry (one native addon, one exit hook).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const kepmlog = require('./index.js');

export const { Logger, Level, KepmlogError, toLevel, version } = kepmlog;
export default Logger;
