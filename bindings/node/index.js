'use strict';
// kepmlog for Node.js: log from a KEPM job task to the agent's KeeperLogger topic.
//
// The native addon (Rust core, napi-rs) does the work on its own thread; this file checks
// argument types (TypeError; values are the core's to check), re-classes the core's errors
// (napi errors whose `code` is the core's kind) as KepmlogError, and flushes every live logger
// when the process exits or is sent SIGTERM, SIGINT or SIGHUP.

const path = require('node:path');

/**
 * The platform package's name for this process (`kepmlog-linux-x64-gnu`, ...): the napi-rs
 * naming; the Windows addon is built with MinGW, hence `-gnu` there too.
 */
function platformId() {
  const { platform, arch } = process;
  if (platform === 'linux') {
    // glibcVersionRuntime is in the report only when Node runs on glibc.
    const report = process.report && typeof process.report.getReport === 'function' ? process.report.getReport() : null;
    const glibc = report && report.header && report.header.glibcVersionRuntime;
    return `linux-${arch}-${glibc ? 'gnu' : 'musl'}`;
  }
  if (platform === 'win32') return `win32-${arch}-gnu`;
  return `${platform}-${arch}`;
}

function notFound(e, what) {
  return e && e.code === 'MODULE_NOT_FOUND' && String(e.message).includes(what);
}

function loadFailed(file, e) {
  const err = new Error(
    `kepmlog: the native addon ${file} cannot be loaded (${e.message}); ` +
      'reinstall the package (npm install kepmlog, or npm install ./bindings/node from a checkout to build it with cargo)'
  );
  err.code = 'internal';
  err.cause = e;
  return err;
}

/**
 * The addon: the prebuilt platform package (an optional dependency of the published package)
 * when it is installed, else the kepmlog.node built from source by the install script of a
 * checkout (`npm install ./bindings/node`).
 */
function loadNative() {
  const id = platformId();
  const pkg = `kepmlog-${id}`;
  try {
    return require(pkg);
  } catch (e) {
    if (!notFound(e, pkg)) throw loadFailed(pkg, e);
  }
  const local = path.join(__dirname, 'kepmlog.node');
  try {
    return require('./kepmlog.node');
  } catch (e) {
    if (!notFound(e, 'kepmlog.node')) throw loadFailed(local, e);
    const err = new Error(
      `kepmlog has no prebuilt binary for ${id} and none was built from source: the package ${pkg} ` +
        `is not installed (npm skips it on another platform, or with --omit=optional) and there is no ${local}; ` +
        'build it from a kepmlog checkout with Rust installed: npm install /path/to/kepmlog/bindings/node'
    );
    err.code = 'internal';
    err.cause = e;
    throw err;
  }
}

const native = loadNative();

/**
 * Level names already parsed by the core (`native.parseLevel`), so the hot path stays in JS.
 * Only valid names are kept, and at most LEVEL_CACHE_MAX of them.
 */
const levelCache = new Map();
const LEVEL_CACHE_MAX = 64;

/** The six levels by their vendor names. */
const Level = Object.freeze({ Debug: 0, Info: 1, Warning: 2, Error: 3, Critical: 4, Verbose: 5 });

/** The core's timeout for a logger closed without one: the exit hook's and flush/shutdown's default. */
const DEFAULT_TIMEOUT_MS = native.defaultCloseTimeoutMs();
const DEFAULT_BLOCK_MS = 1000;

/** The `code` of every core error (the core's ErrorKind names). */
const CORE_KINDS = new Set(native.errorKinds());
/** What a failed flush/shutdown could not deliver, set on its error by the native side. */
const OUTCOME_FIELDS = ['undelivered', 'denied', 'deniedTopics', 'undeliverable'];

/** A failure reported by the core; `code` is its stable kind (e.g. 'empty_message', 'denied'). */
class KepmlogError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'KepmlogError';
    this.code = code;
  }
}

/**
 * The core's error as the KepmlogError users catch. The addon throws plain Errors (napi-rs
 * cannot throw an instance of a JS class), whose code and message are already the core's.
 */
function fromNative(e) {
  // Only the addon's plain Errors: a RangeError or TypeError of this file stays what it is.
  if (!(e instanceof Error) || Object.getPrototypeOf(e) !== Error.prototype || !CORE_KINDS.has(e.code)) return e;
  const err = new KepmlogError(e.code, e.message);
  for (const key of OUTCOME_FIELDS) if (key in e) err[key] = e[key];
  return err;
}

function rethrowNative(e) {
  throw fromNative(e);
}

/**
 * Runs a core value check of an option: its refusal becomes the RangeError the API promises
 * for bad values, with the core's message and `code` 'invalid_option'.
 */
function coreValue(check) {
  try {
    return check();
  } catch (e) {
    if (e instanceof Error && e.code === 'invalid_option') {
      const err = new RangeError(e.message);
      err.code = e.code;
      throw err;
    }
    throw fromNative(e);
  }
}

function describe(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'string' ? `the string ${JSON.stringify(v)}` : `a ${typeof v}`;
}

function checkString(name, v) {
  if (typeof v !== 'string') throw new TypeError(`kepmlog: ${name} must be a string, got ${describe(v)}`);
}

function checkTimeout(name, v) {
  if (typeof v !== 'number') throw new TypeError(`kepmlog: ${name} must be a number of milliseconds, got ${describe(v)}`);
  if (!Number.isFinite(v) || v < 0) {
    throw new RangeError(`kepmlog: ${name} must be a finite number of milliseconds >= 0, got ${v}`);
  }
  return v;
}

/** A level name (the core's names and aliases, any case: 'warn', 'fatal', 'trace', ...) or number 0..5 -> wire value. */
function toLevel(level) {
  if (typeof level === 'number') {
    if (Number.isInteger(level) && level >= 0 && level <= 5) return level;
    throw new RangeError(`kepmlog: level ${level} is not 0..5 (Debug, Info, Warning, Error, Critical, Verbose)`);
  }
  if (typeof level === 'string') {
    let v = levelCache.get(level);
    if (v !== undefined) return v;
    v = native.parseLevel(level);
    if (v >= 0) {
      if (levelCache.size < LEVEL_CACHE_MAX) levelCache.set(level, v);
      return v;
    }
    throw new RangeError(
      `kepmlog: unknown level ${JSON.stringify(level)}: use debug, info, warning (warn), error, ` +
        'critical (fatal), verbose (trace), or 0..5'
    );
  }
  throw new TypeError(`kepmlog: level must be a level name or a number 0..5, got ${describe(level)}`);
}

const STRING_OPTIONS = ['source', 'defaultCategory', 'jobId', 'token', 'apiBase', 'caBundle', 'eventTopic', 'spoolDir'];
const KNOWN_OPTIONS = new Set([
  ...STRING_OPTIONS,
  'broker',
  'queueCapacity',
  'overflow',
  'blockTimeoutMs',
  'settingsTimeoutMs',
  'dropTimeoutMs',
  'args',
  'scriptPath',
  'stderrDiagnostics',
  'fallback',
  'undeliveredToStderr',
]);

function nativeOptions(options) {
  if (options === undefined || options === null) options = {};
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`kepmlog: Logger options must be an object, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) {
      throw new TypeError(`kepmlog: unknown option ${JSON.stringify(key)}; known options: ${[...KNOWN_OPTIONS].join(', ')}`);
    }
  }
  const o = {};
  for (const key of STRING_OPTIONS) {
    if (options[key] !== undefined) {
      checkString(`options.${key}`, options[key]);
      o[key] = options[key];
    }
  }
  if (o.jobId === undefined && process.env.KEEPER_JOB_ID !== undefined) o.jobId = process.env.KEEPER_JOB_ID;
  // Values are the core's to check (coreValue): the same rules and messages in every binding.
  const broker = options.broker;
  if (broker !== undefined) {
    if (typeof broker === 'string') {
      const parsed = coreValue(() => native.parseBroker(broker));
      o.brokerHost = parsed.host;
      o.brokerPort = parsed.port;
    } else if (broker && typeof broker === 'object') {
      const host = broker.host;
      let port = broker.port;
      if (typeof port === 'string' && /^\d+$/.test(port)) port = Number(port);
      checkString('options.broker.host', host);
      if (typeof port !== 'number') {
        throw new TypeError(`kepmlog: options.broker.port must be an integer, got ${describe(port)}`);
      }
      if (!Number.isInteger(port)) throw new RangeError(`kepmlog: options.broker.port must be an integer, got ${port}`);
      coreValue(() => native.checkBroker(host, port));
      o.brokerHost = host;
      o.brokerPort = port;
    } else {
      throw new TypeError(`kepmlog: options.broker must be "host:port" or { host, port }, got ${describe(broker)}`);
    }
  }
  if (options.queueCapacity !== undefined) {
    // The addon takes a 32-bit count; whether it is enough (at least 1) is the core's rule, and
    // a negative one is refused like 0.
    const capacity = options.queueCapacity;
    if (typeof capacity !== 'number') {
      throw new TypeError(`kepmlog: options.queueCapacity must be an integer, got ${describe(capacity)}`);
    }
    if (!Number.isInteger(capacity) || capacity > 0xffffffff) {
      throw new RangeError(`kepmlog: options.queueCapacity must be an integer up to 4294967295, got ${capacity}`);
    }
    coreValue(() => native.checkQueueCapacity(Math.max(capacity, 0)));
    o.queueCapacity = capacity;
  }
  let block = false;
  if (options.overflow !== undefined) {
    if (typeof options.overflow !== 'string') {
      throw new TypeError(`kepmlog: options.overflow must be 'drop' or 'block', got ${describe(options.overflow)}`);
    }
    block = coreValue(() => native.overflowBlocks(options.overflow));
  }
  if (block) {
    o.overflowBlockMs =
      options.blockTimeoutMs === undefined ? DEFAULT_BLOCK_MS : checkTimeout('options.blockTimeoutMs', options.blockTimeoutMs);
  } else if (options.blockTimeoutMs !== undefined) {
    checkTimeout('options.blockTimeoutMs', options.blockTimeoutMs);
  }
  if (options.settingsTimeoutMs !== undefined) {
    o.settingsTimeoutMs = checkTimeout('options.settingsTimeoutMs', options.settingsTimeoutMs);
  }
  if (options.dropTimeoutMs !== undefined) o.dropTimeoutMs = checkTimeout('options.dropTimeoutMs', options.dropTimeoutMs);
  const args = options.args === undefined ? process.argv : options.args;
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) {
    throw new TypeError('kepmlog: options.args must be an array of strings');
  }
  o.args = args.slice();
  // The core names the token after the script (and knows what is not one).
  if (options.scriptPath !== undefined) {
    checkString('options.scriptPath', options.scriptPath);
    o.scriptPath = options.scriptPath;
  } else if (typeof process.argv[1] === 'string') {
    o.scriptPath = process.argv[1];
  }
  if (options.stderrDiagnostics !== undefined) {
    if (typeof options.stderrDiagnostics !== 'boolean') {
      throw new TypeError(`kepmlog: options.stderrDiagnostics must be a boolean, got ${describe(options.stderrDiagnostics)}`);
    }
    o.stderrDiagnostics = options.stderrDiagnostics;
  }
  if (options.fallback !== undefined) {
    // The core checks the value (and KEPMLOG_FALLBACK when this is unset).
    checkString('options.fallback', options.fallback);
    o.fallback = options.fallback;
  }
  if (options.undeliveredToStderr !== undefined) {
    if (typeof options.undeliveredToStderr !== 'boolean') {
      throw new TypeError(`kepmlog: options.undeliveredToStderr must be a boolean, got ${describe(options.undeliveredToStderr)}`);
    }
    o.undeliveredToStderr = options.undeliveredToStderr;
  }
  return o;
}

/**
 * Flushes every live logger synchronously within `Logger.exitFlushTimeoutMs` and reports on
 * stderr how many records it could not deliver (`when`: 'exit', 'SIGTERM', ...). With
 * `ending`, the loggers still behind at the deadline are shut down, which writes their records
 * to stderr; without it (a signal the program handles itself) they go on. Never throws:
 * denials and records given up are left out of the count, since there is no caller to report
 * them to and the core has written them on stderr.
 */
function flushEveryLogger(when, ending) {
  const ms = Logger.exitFlushTimeoutMs;
  const timeout = typeof ms === 'number' && ms >= 0 ? ms : DEFAULT_TIMEOUT_MS;
  const undelivered = native.flushAllSync(timeout, ending);
  if (undelivered > 0) {
    process.stderr.write(`kepmlog: ${undelivered} record(s) undelivered at ${when}\n`);
  }
}

let exitHookInstalled = false;

function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' listeners must be synchronous: the native side flushes every live logger (and waits
  // for garbage-collected ones still delivering) within one deadline, then shuts down those
  // still behind so their records reach stderr. A listener does not keep the event loop alive.
  process.on('exit', () => flushEveryLogger('exit', true));
}

/**
 * The termination signals whose default action (ending the process without 'exit'
 * listeners) would lose what is queued. None on Windows: a task is ended there by
 * TerminateProcess, which nothing in the process sees, and Ctrl+C does not reach a job task.
 */
const HOOK_SIGNALS = process.platform === 'win32' ? [] : ['SIGTERM', 'SIGINT', 'SIGHUP'];
/** Signals reach the main thread only: a worker thread's listener would never run. */
const { isMainThread } = require('node:worker_threads');
/** kepmlog's listener per signal, while it is installed. */
const signalListeners = new Map();
/** Logger.handleSignals as set by the program; undefined: KEPMLOG_SIGNALS decides. */
let signalsChoice;
let loggerCreated = false;

function signalsEnabled() {
  if (signalsChoice !== undefined) return signalsChoice;
  const v = (process.env.KEPMLOG_SIGNALS || '').trim().toLowerCase();
  return !['0', 'false', 'no', 'off'].includes(v);
}

function onSignal(sig) {
  const mine = signalListeners.get(sig);
  // A listener the program added since kepmlog's decides how the process stops: kepmlog only
  // delivers, and stays for the next signal.
  const programHandles = process.listeners(sig).some((l) => l !== mine);
  if (!programHandles) {
    // The last listener gone, the signal's default action is back: a second one during the
    // flush ends the process at once.
    process.removeListener(sig, mine);
    signalListeners.delete(sig);
  }
  try {
    flushEveryLogger(sig, !programHandles);
  } finally {
    // Die of the signal as its default action would have (exit status 128+n in a shell).
    if (!programHandles) process.kill(process.pid, sig);
  }
}

/** Listens to every hook signal nobody listens to yet. Signal listeners are unref'd by Node:
 * they never keep the event loop alive. */
function installSignalHooks() {
  if (!isMainThread) return;
  for (const sig of HOOK_SIGNALS) {
    const mine = signalListeners.get(sig);
    if (mine !== undefined && process.listeners(sig).includes(mine)) continue;
    signalListeners.delete(sig); // removed by the program (removeAllListeners): not ours any more
    if (process.listenerCount(sig) !== 0) continue;
    const listener = () => onSignal(sig);
    signalListeners.set(sig, listener);
    process.on(sig, listener);
  }
}

function uninstallSignalHooks() {
  for (const [sig, listener] of signalListeners) process.removeListener(sig, listener);
  signalListeners.clear();
}

/** At the first Logger, never at require(). */
function installSignalHooksOnce() {
  if (loggerCreated) return;
  loggerCreated = true;
  if (signalsEnabled()) installSignalHooks();
}

const NATIVE = Symbol('kepmlog.native');

class Logger {
  /**
   * @param {import('./index').LoggerOptions} [options]
   */
  constructor(options) {
    const o = nativeOptions(options);
    let r;
    try {
      r = native.createLogger(o);
    } catch (e) {
      throw fromNative(e);
    }
    Object.defineProperty(this, NATIVE, { value: r });
    installExitHook();
    installSignalHooksOnce();
  }

  /**
   * Whether kepmlog takes SIGTERM, SIGINT and SIGHUP (those without a listener when the first
   * Logger is created) to deliver what is queued before the process dies of the signal.
   * Default true, unless KEPMLOG_SIGNALS=0; setting it wins over the environment. Setting
   * false removes kepmlog's listeners; true after a Logger exists installs them at once.
   */
  static get handleSignals() {
    return signalsEnabled();
  }

  static set handleSignals(enabled) {
    if (typeof enabled !== 'boolean') {
      throw new TypeError(`kepmlog: Logger.handleSignals must be a boolean, got ${describe(enabled)}`);
    }
    signalsChoice = enabled;
    if (!enabled) uninstallSignalHooks();
    else if (loggerCreated) installSignalHooks();
  }

  /**
   * A logger set up the way the agent starts a job task: job id from KEEPER_JOB_ID, API base
   * from `--keeper-api-base` in process.argv, token from the script's file name.
   */
  static fromJob(sourceOrOptions) {
    if (typeof sourceOrOptions === 'string') return new Logger({ source: sourceOrOptions });
    return new Logger({ ...(sourceOrOptions || {}), args: process.argv });
  }

  /** Logs one record; true = accepted, false = dropped because the queue was full. */
  log(level, category, message, options) {
    return this._log(toLevel(level), category, message, options);
  }

  debug(category, message, options) {
    return this._log(0, category, message, options);
  }
  info(category, message, options) {
    return this._log(1, category, message, options);
  }
  warn(category, message, options) {
    return this._log(2, category, message, options);
  }
  warning(category, message, options) {
    return this._log(2, category, message, options);
  }
  error(category, message, options) {
    return this._log(3, category, message, options);
  }
  critical(category, message, options) {
    return this._log(4, category, message, options);
  }
  verbose(category, message, options) {
    return this._log(5, category, message, options);
  }

  _log(level, category, message, options) {
    if (typeof category !== 'string') {
      if (category !== undefined && category !== null) checkString('category', category);
      category = '';
    }
    if (typeof message !== 'string') checkString('message', message);
    let correlationId;
    let context;
    if (options !== undefined && options !== null) {
      if (typeof options !== 'object') {
        throw new TypeError(`kepmlog: log options must be { correlationId, context }, got ${describe(options)}`);
      }
      const c = options.correlationId;
      if (c !== undefined && c !== null) {
        checkString('options.correlationId', c);
        correlationId = c;
      }
      const x = options.context;
      if (x !== undefined && x !== null) {
        if (typeof x === 'string') context = x;
        else if (typeof x === 'object') context = JSON.stringify(x);
        else throw new TypeError(`kepmlog: options.context must be a string or an object, got ${describe(x)}`);
      }
    }
    try {
      return this[NATIVE].log(level, category, message, correlationId, context);
    } catch (e) {
      throw fromNative(e);
    }
  }

  /** Publishes one JSON object to the job's event topic (QoS 1). true = accepted. */
  event(object) {
    if (object === null || typeof object !== 'object' || Array.isArray(object)) {
      throw new TypeError(`kepmlog: event must be a plain object, got ${describe(object)}`);
    }
    const json = JSON.stringify(object);
    try {
      return this[NATIVE].event(json);
    } catch (e) {
      throw fromNative(e);
    }
  }

  /**
   * Resolves when every record accepted before the call is acknowledged (0), or at the
   * deadline with the number still undelivered. Waits on the libuv thread pool. Rejects with
   * KepmlogError 'denied' / 'undeliverable' (carrying the outcome) for records denied or given
   * up since the previous flush or shutdown.
   */
  flush(timeoutMs = DEFAULT_TIMEOUT_MS) {
    try {
      checkTimeout('timeoutMs', timeoutMs);
      return this[NATIVE].flush(timeoutMs).catch(rethrowNative);
    } catch (e) {
      return Promise.reject(fromNative(e));
    }
  }

  /** Like flush, but blocks the JS thread; for exit paths. Returns the undelivered count. */
  flushSync(timeoutMs = DEFAULT_TIMEOUT_MS) {
    checkTimeout('timeoutMs', timeoutMs);
    try {
      return this[NATIVE].flushSync(timeoutMs);
    } catch (e) {
      throw fromNative(e);
    }
  }

  /**
   * Flushes until the deadline, disconnects, stops the worker. Idempotent. Resolves with the
   * number given up at the deadline; rejects like flush (the logger is shut down all the same).
   */
  shutdown(timeoutMs = DEFAULT_TIMEOUT_MS) {
    try {
      checkTimeout('timeoutMs', timeoutMs);
      return this[NATIVE].shutdown(timeoutMs).catch(rethrowNative);
    } catch (e) {
      return Promise.reject(fromNative(e));
    }
  }

  shutdownSync(timeoutMs = DEFAULT_TIMEOUT_MS) {
    checkTimeout('timeoutMs', timeoutMs);
    try {
      return this[NATIVE].shutdownSync(timeoutMs);
    } catch (e) {
      throw fromNative(e);
    }
  }

  /** Counters: accepted = delivered + denied + failed + pending; dropped is not accepted. */
  stats() {
    const s = JSON.parse(this[NATIVE].statsJson());
    return {
      accepted: s.accepted,
      delivered: s.delivered,
      dropped: s.dropped,
      denied: s.denied,
      failed: s.failed,
      printed: s.printed,
      pending: s.pending,
      recovered: s.recovered,
      spoolDropped: s.spool_dropped,
      reconnects: s.reconnects,
      connected: s.connected,
      lastError: s.last_error,
      broker: s.broker,
      clientId: s.client_id,
    };
  }

  get clientId() {
    return this[NATIVE].clientId;
  }
  get jobId() {
    return this[NATIVE].jobId;
  }
  get source() {
    return this[NATIVE].source;
  }
  get eventTopic() {
    return this[NATIVE].eventTopic;
  }
  get isShutDown() {
    return this[NATIVE].isShutDown;
  }
  /** True when records go to stderr instead of KeeperLogger (fallback 'stderr' and no job id). */
  get writesToStderr() {
    return this[NATIVE].writesToStderr;
  }
}

/** Milliseconds the process.on('exit') hook may spend flushing all loggers. */
Logger.exitFlushTimeoutMs = DEFAULT_TIMEOUT_MS;

module.exports = { Logger, Level, KepmlogError, toLevel, version: native.nativeVersion() };
module.exports.default = Logger;
