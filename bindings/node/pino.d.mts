// ESM view of pino.d.ts: the factory as the default export, the class and pinoLevel by name.
import kepmlogPino from './pino.js';

export type PinoDestinationOptions = kepmlogPino.PinoDestinationOptions;
export type DestinationStats = kepmlogPino.DestinationStats;
export declare const KeeperLoggerDestination: typeof kepmlogPino.KeeperLoggerDestination;
export type KeeperLoggerDestination = kepmlogPino.KeeperLoggerDestination;
export declare const pinoLevel: typeof kepmlogPino.pinoLevel;
export default kepmlogPino;
