// Type definitions for kepmlog (Node.js binding). Written by hand to match index.js.

/** KeeperLogger wire levels. Note Verbose (5) is the least severe level. */
export declare const Level: Readonly<{
  Debug: 0;
  Info: 1;
  Warning: 2;
  Error: 3;
  Critical: 4;
  Verbose: 5;
}>;

/** A wire value 0..5. */
export type LevelValue = 0 | 1 | 2 | 3 | 4 | 5;

/**
 * A level name (case-insensitive: debug, info, warning, error, critical, verbose, plus the
 * aliases warn, fatal, trace) or a wire value 0..5.
 */
export type LevelLike =
  | LevelValue
  | 'debug' | 'info' | 'warning' | 'warn' | 'error' | 'critical' | 'fatal' | 'verbose' | 'trace'
  | (string & {});

/** Stable error codes, equal to the Rust core's `ErrorKind::as_str()`. */
export type ErrorCode =
  | 'missing_job_id'
  | 'invalid_job_id'
  | 'invalid_token'
  | 'invalid_option'
  | 'empty_message'
  | 'invalid_level'
  | 'invalid_event'
  | 'queue_full'
  | 'shut_down'
  | 'forked'
  | 'timeout'
  | 'denied'
  | 'undeliverable'
  | 'internal';

/**
 * A failure the core reports (wrong argument types throw TypeError, bad option values a
 * RangeError with the core's message and `code: 'invalid_option'`). The message is the core's
 * and says what to change.
 */
export declare class KepmlogError extends Error {
  readonly code: ErrorCode;
  /**
   * Set on the errors of flush/shutdown ('denied', 'undeliverable'): the core's outcome.
   * Records not acknowledged at the deadline.
   */
  readonly undelivered?: number;
  /** Records the broker refused since the previous flush or shutdown. */
  readonly denied?: number;
  /** The topics of those refusals, each once; add them to mqttTopics.allowedPublications. */
  readonly deniedTopics?: string[];
  /** Records given up since the previous flush or shutdown (larger than the broker's Maximum Packet Size). */
  readonly undeliverable?: number;
}

export interface LoggerOptions {
  /** `MetaData.Source`: the tool's name as shown in logs. Default: the token. */
  source?: string;
  /** Category used when a call passes '' (or null/undefined). Default 'General'. */
  defaultCategory?: string;
  /** Default: `process.env.KEEPER_JOB_ID` (set by the agent when the job declares mqttTopics). */
  jobId?: string;
  /** Client-id token: letters, digits, hyphens. Default: the main script's file name, made safe. */
  token?: string;
  /** Agent HTTPS API base. Default: `--keeper-api-base` in process.argv, else https://127.0.0.1:6889. */
  apiBase?: string;
  /** PEM file of CAs to trust. Without it, TLS verification is skipped, and only for loopback hosts. */
  caBundle?: string;
  /** Broker address; skips Plugin Settings discovery. "host:port" (IPv6 in brackets: "[::1]:8675") or { host, port }. */
  broker?: string | { host: string; port: number };
  /** Records the queue holds. Default 65536. */
  queueCapacity?: number;
  /** When the queue is full: 'drop' (default; counted in stats().dropped) or 'block' (wait up to blockTimeoutMs); any case. */
  overflow?: 'drop' | 'block';
  /** Longest wait for queue room with overflow 'block'. Default 1000. */
  blockTimeoutMs?: number;
  /** Topic of `event()`. Default `Jobs/{jobId}/events`; list it in the job's allowedPublications. */
  eventTopic?: string;
  /** Plugin Settings request timeout. Default 3000. */
  settingsTimeoutMs?: number;
  /** Bound of the shutdown done when a logger is garbage-collected un-shut-down. Default 5000. */
  dropTimeoutMs?: number;
  /** Arguments searched for `--keeper-api-base`. Default `process.argv`. */
  args?: string[];
  /** The tool's main script, whose file name makes the default token. Default `process.argv[1]`
   * (set it where that is not the tool's, e.g. in a worker thread). */
  scriptPath?: string;
  /** Print the library's own diagnostics (`kepmlog: ...`) on stderr. Default true. */
  stderrDiagnostics?: boolean;
  /**
   * Without a job id: 'error' (throw 'missing_job_id', which names the fix) or 'stderr' (create
   * the logger anyway, print one `kepmlog:` warning and write every record as a text line on
   * stderr, which the agent captures as the task's output). Default: KEPMLOG_FALLBACK, else 'error'.
   */
  fallback?: 'error' | 'stderr';
  /** At shutdown (and exit), write the records still undelivered at the deadline to stderr as text lines. Default true. */
  undeliveredToStderr?: boolean;
  /**
   * The crash-safe spool: every accepted record is also written to a file under this directory
   * before the log call returns, and what a killed run, or one whose broker never came up, did
   * not deliver is sent by the job's next run. Default: KEPMLOG_SPOOL_DIR, else no spool. It
   * must be this user's and writable by nobody else (created 0700 when missing).
   */
  spoolDir?: string;
}

export interface LogOptions {
  /** `MetaData.CorrelationId`. Default ''. */
  correlationId?: string | null;
  /** `MetaData.Context`: a string, or an object sent as its JSON. Newlines become spaces. */
  context?: string | object | null;
}

export interface Stats {
  /** Records and events taken into the queue. accepted = delivered + denied + failed + pending. */
  accepted: number;
  /** Acknowledged by the broker with a success reason code. */
  delivered: number;
  /** Not taken because the queue was full (not part of accepted). */
  dropped: number;
  /** Refused by the broker (topic not in allowedPublications). */
  denied: number;
  /** Still undelivered when the logger shut down. */
  failed: number;
  /**
   * Written to stderr as text lines: with fallback 'stderr' and no job id every record (none
   * is then accepted); otherwise the undelivered ones written at shutdown (also in failed).
   */
  printed: number;
  /** Accepted and not yet settled. */
  pending: number;
  /** Records an earlier run of the job left in the spool, sent by this logger first (part of accepted). */
  recovered: number;
  /** Records the spool's cap removed from disk before they were delivered (a crash would lose them). */
  spoolDropped: number;
  reconnects: number;
  connected: boolean;
  lastError: string | null;
  /** "host:port" of the broker in use, once known. */
  broker: string | null;
  clientId: string;
}

/**
 * A KeeperLogger client for one job task. Logging never blocks and never does I/O on the JS
 * thread; a native worker thread publishes with QoS 1 over TLS MQTT v5. The logger never keeps
 * the event loop alive: a script that logs and ends exits by itself, and a `process.on('exit')`
 * hook flushes every live logger (bounded by `Logger.exitFlushTimeoutMs`), as do SIGTERM,
 * SIGINT and SIGHUP listeners before the process dies of the signal (see `handleSignals`).
 */
export declare class Logger {
  /** Creates the logger at once; discovery and connection run on its worker. Throws KepmlogError
   * (e.g. 'missing_job_id', 'invalid_job_id', 'invalid_option'), TypeError or RangeError. */
  constructor(options?: LoggerOptions);

  /** A logger configured from the job's process: KEEPER_JOB_ID, `--keeper-api-base` in process.argv. */
  static fromJob(sourceOrOptions?: string | LoggerOptions): Logger;

  /** Milliseconds the exit hook (and the signal hook) may spend flushing all loggers. Default: the core's close timeout (5000). */
  static exitFlushTimeoutMs: number;

  /**
   * Process-wide: whether kepmlog listens to SIGTERM, SIGINT and SIGHUP (each that has no
   * listener when the first Logger is created; none on Windows) to flush every live logger
   * within `exitFlushTimeoutMs`, then re-raise the signal so the process still dies of it.
   * With a listener the program added since, kepmlog only flushes and that listener decides.
   * Default true, unless `KEPMLOG_SIGNALS=0`; an assignment wins over the environment.
   * Setting false removes kepmlog's listeners; true after a Logger exists adds them at once.
   * A value that is not a boolean throws TypeError.
   */
  static handleSignals: boolean;

  /** Logs one record. Returns true when accepted, false when dropped because the queue was full.
   * Throws KepmlogError 'empty_message' / 'shut_down', RangeError for an unknown level. */
  log(level: LevelLike, category: string | null | undefined, message: string, options?: LogOptions): boolean;
  debug(category: string | null | undefined, message: string, options?: LogOptions): boolean;
  info(category: string | null | undefined, message: string, options?: LogOptions): boolean;
  warn(category: string | null | undefined, message: string, options?: LogOptions): boolean;
  /** Same as warn. */
  warning(category: string | null | undefined, message: string, options?: LogOptions): boolean;
  error(category: string | null | undefined, message: string, options?: LogOptions): boolean;
  critical(category: string | null | undefined, message: string, options?: LogOptions): boolean;
  verbose(category: string | null | undefined, message: string, options?: LogOptions): boolean;

  /** Publishes one JSON object to the event topic (QoS 1). true = accepted, false = dropped. */
  event(object: Record<string, unknown>): boolean;

  /**
   * Resolves with 0 once every record accepted before the call is acknowledged, or at the
   * deadline with the number still undelivered (they stay queued; a deadline alone is not an
   * error). Waits on the libuv thread pool. Rejects with KepmlogError 'denied' when the broker
   * refused publishes since the previous flush or shutdown, else 'undeliverable' when records
   * were given up; both carry undelivered, denied, deniedTopics and undeliverable.
   * @param timeoutMs default 5000 (the core's close timeout)
   */
  flush(timeoutMs?: number): Promise<number>;
  /** Like flush, blocking the JS thread (for exit paths): returns the count or throws. */
  flushSync(timeoutMs?: number): number;
  /** Flushes until the deadline, disconnects and stops the worker; idempotent. Resolves with the
   * number undelivered at the deadline (counted as failed, written to stderr unless
   * undeliveredToStderr is false); rejects like flush, the logger being shut down all the same.
   * Later log calls throw 'shut_down'. */
  shutdown(timeoutMs?: number): Promise<number>;
  /** Like shutdown, blocking the JS thread: returns the count or throws. */
  shutdownSync(timeoutMs?: number): number;
  stats(): Stats;

  /** `{jobId}_{token}_{pid}` as sent to the broker. */
  readonly clientId: string;
  readonly jobId: string;
  readonly source: string;
  readonly eventTopic: string;
  readonly isShutDown: boolean;
  /** True when records go to stderr instead of KeeperLogger (fallback 'stderr' and no job id). */
  readonly writesToStderr: boolean;
}

/** Level name or number -> wire value; RangeError / TypeError otherwise. */
export declare function toLevel(level: LevelLike): LevelValue;

/** Version of the native addon. */
export declare const version: string;

export default Logger;
