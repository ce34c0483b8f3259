// Type definitions for kepmlog/pino. The CommonJS module is the factory function itself
// (`require('kepmlog/pino')(options)`), hence `export =`. No pino types are needed: the
// destination is structurally a pino DestinationStream (write(msg: string)).
import { EventEmitter } from 'node:events';
import type { Logger, LoggerOptions, LevelLike, LevelValue, Stats } from './index';

declare namespace kepmlogPino {
  /** Logger options (`source`, `apiBase`, ...) from which a Logger is created, or a ready `logger`. */
  export interface PinoDestinationOptions extends LoggerOptions {
    /** The kepmlog Logger to send through (then no Logger option may be given). Default: a new
     * Logger from the other options, shut down by end(). */
    logger?: Logger;
    /** Category of records without a `category` field. Default: the logger's default category. */
    category?: string;
    /** Level overrides by pino label or number, e.g. { audit: 'warning', 35: 'error' }. */
    levels?: Record<string, LevelLike>;
    /** Field that holds the Category. Default 'category'. */
    categoryKey?: string;
    /** Field that holds the CorrelationId. Default 'correlationId'. */
    correlationIdKey?: string;
    /** Bound of flushSync(), flush() and end(). Default: the core's close timeout (5000). */
    flushTimeoutMs?: number;
  }

  export interface DestinationStats extends Stats {
    /** Records the core would not take (e.g. an empty message, a shut-down logger). */
    refused: number;
    /** Lines that were not a JSON object, logged as their text at Info. */
    notJson: number;
  }

  /**
   * A synchronous pino destination to KeeperLogger. Level by pino number (10 trace -> Verbose,
   * 20 debug -> Debug, 30 info -> Info, 40 warn -> Warning, 50 error -> Error, 60 fatal ->
   * Critical; a custom number takes the level at or below it), `msg` -> Message, `category` ->
   * Category, `correlationId` -> CorrelationId, the other fields (`err` included) as JSON in
   * Context. Emits 'warn' with the error of a record the core refuses; never throws from write.
   */
  export class KeeperLoggerDestination extends EventEmitter {
    constructor(options?: PinoDestinationOptions);
    readonly logger: Logger;
    /** One or more lines; a trailing unterminated line is held until the next write, flush, end or exit. Returns true. */
    write(chunk: string | Uint8Array): boolean;
    /** Waits (blocking) until everything written is acknowledged, or flushTimeoutMs; returns the number undelivered. */
    flushSync(): number;
    /** pino's logger.flush(cb): cb() once everything written is acknowledged, or at flushTimeoutMs. */
    flush(cb?: (err?: Error | null) => void): void;
    /** Delivers the rest (shutting down a Logger it created), then emits 'finish' and 'close'. */
    end(cb?: () => void): this;
    end(chunk: string | Uint8Array, cb?: () => void): this;
    /** Always true, so that pino(destination) takes it for a stream. */
    readonly writable: true;
    readonly writableEnded: boolean;
    stats(): DestinationStats;
    on(event: 'warn', listener: (error: Error) => void): this;
    on(event: 'finish' | 'close', listener: () => void): this;
    on(event: string | symbol, listener: (...args: any[]) => void): this;
  }

  /** pino level (number or label) -> wire level, with optional overrides and pino's { labels, values } table. */
  export function pinoLevel(
    level: number | string | undefined,
    overrides?: Record<string, LevelLike>,
    levels?: { labels?: Record<number, string>; values?: Record<string, number> }
  ): LevelValue;

  export { kepmlogPino as default };
}

/**
 * A KeeperLogger destination for `pino(options, destination)`. Inside a worker thread (as a
 * pino.transport target) it returns a Promise of the destination, resolved once pino has sent
 * its configuration.
 */
declare function kepmlogPino(options?: kepmlogPino.PinoDestinationOptions): kepmlogPino.KeeperLoggerDestination;

export = kepmlogPino;
