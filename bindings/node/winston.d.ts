// Type definitions for kepmlog/winston.
import TransportStream = require('winston-transport');
import type { Logger, LoggerOptions, LevelLike, LevelValue } from './index';

export interface KeeperLoggerTransportOptions extends TransportStream.TransportStreamOptions {
  /** The kepmlog Logger to send through. Default: a new Logger(loggerOptions), shut down on close(). */
  logger?: Logger;
  /** Options of the Logger the transport creates when `logger` is not given. */
  loggerOptions?: LoggerOptions;
  /** Category when an entry has no `category` field. Default: the logger's default category. */
  category?: string;
  /** Level-name overrides, e.g. { audit: 'warning' }. */
  levels?: Record<string, LevelLike>;
  name?: string;
}

/**
 * winston transport to KeeperLogger. Level by name (error, warn, info/http, verbose/silly,
 * debug; syslog emerg/alert/crit -> Critical); Category from `info.category`; CorrelationId
 * from `info.correlationId`; the other fields as JSON in Context.
 */
export declare class KeeperLoggerTransport extends TransportStream {
  constructor(options?: KeeperLoggerTransportOptions);
  readonly logger: Logger;
  /** Resolves with the number of records undelivered at the deadline. */
  flush(timeoutMs?: number): Promise<number>;
}

/** winston level name -> wire level (unknown names -> Info). */
export declare function winstonLevel(name: string, overrides?: Record<string, LevelLike>): LevelValue;

export default KeeperLoggerTransport;
