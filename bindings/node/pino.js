'use strict';
// pino destination: `pino(opts, require('kepmlog/pino')({ source }))`, or a pino.transport
// target. It does not load pino: a destination is any object with write(line), and pino's
// own code (serializers, redaction, child bindings, formatters) has already run on the line.

const { EventEmitter } = require('node:events');
const { StringDecoder } = require('node:string_decoder');
const workerThreads = require('node:worker_threads');
const { Logger, toLevel } = require('./index.js');

/** pino's default level labels; the wire level of any number is found by pinoLevel. */
const PINO_LEVELS = Object.freeze({ trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 });

/** Options of the destination itself; every other key is a Logger option. */
const OWN_OPTIONS = ['logger', 'category', 'levels', 'categoryKey', 'correlationIdKey', 'flushTimeoutMs'];
/** Keys pino.transport (pinoWillSendConfig) and thread-stream ($context) add to a target's options. */
const TRANSPORT_KEYS = ['pinoWillSendConfig', '$context'];

/** pino's own fields, which KeeperLogger has no use for (the agent stamps time and knows the pid). */
const PINO_FIELDS = new Set(['level', 'time', 'pid', 'hostname']);

/**
 * An unterminated tail longer than this is logged as it is: only a writer that never ends its
 * lines gets here, and the core would cut the message at 16 KiB anyway.
 */
const MAX_PARTIAL = 16 * 1024 * 1024;

const DEFAULT_TIMEOUT_MS = Logger.exitFlushTimeoutMs;

/**
 * A pino level number -> wire level: each of pino's six levels and everything up to the next
 * one (a custom level 35 is Info, 45 Warning); below 20 is Verbose (trace), anything that is
 * not a number Info.
 */
function levelOfNumber(n) {
  if (typeof n !== 'number' || Number.isNaN(n)) return 1;
  if (n >= 60) return 4;
  if (n >= 50) return 3;
  if (n >= 40) return 2;
  if (n >= 30) return 1;
  if (n >= 20) return 0;
  return 5;
}

const hasOwn = (o, k) => o !== undefined && o !== null && Object.prototype.hasOwnProperty.call(o, k);

/**
 * A line's `level` (a number, or a label when `formatters.level` writes one) -> wire level.
 * `overrides` maps labels or numbers to kepmlog levels ({ audit: 'warning', 35: 'error' });
 * `levels` is pino's { labels, values } table (custom levels), which pino sends its destination.
 */
function pinoLevel(level, overrides, levels) {
  if (typeof level === 'string') {
    if (hasOwn(overrides, level)) return toLevel(overrides[level]);
    const n = hasOwn(levels && levels.values, level) ? levels.values[level] : PINO_LEVELS[level];
    if (n === undefined) return 1;
    if (hasOwn(overrides, String(n))) return toLevel(overrides[String(n)]);
    return levelOfNumber(n);
  }
  if (overrides !== undefined && typeof level === 'number') {
    const label = levels && levels.labels ? levels.labels[level] : undefined;
    if (label !== undefined && hasOwn(overrides, label)) return toLevel(overrides[label]);
    if (hasOwn(overrides, String(level))) return toLevel(overrides[String(level)]);
  }
  return levelOfNumber(level);
}

/** Destinations holding an unterminated line, delivered by the exit listener below. */
const partials = new Set();
let partialHookInstalled = false;

function installPartialHook() {
  if (partialHookInstalled) return;
  partialHookInstalled = true;
  // Prepended: it must run before the exit hook of index.js, which flushes every logger.
  process.prependListener('exit', () => {
    for (const d of partials) d._takePartial();
  });
}

function checkKey(name, v) {
  if (typeof v !== 'string' || v === '') throw new TypeError(`kepmlog/pino: options.${name} must be a non-empty string`);
  return v;
}

/**
 * A synchronous pino destination that sends every line to KeeperLogger through a kepmlog
 * Logger. `write` never throws and never blocks; a record the core refuses is counted in
 * `stats().refused` and emitted as 'warn' (or, with no 'warn' listener, reported once per
 * kind on stderr).
 */
class KeeperLoggerDestination extends EventEmitter {
  constructor(options = {}) {
    super();
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      throw new TypeError('kepmlog/pino: options must be an object');
    }
    const loggerOptions = {};
    for (const key of Object.keys(options)) {
      if (!OWN_OPTIONS.includes(key) && !TRANSPORT_KEYS.includes(key)) loggerOptions[key] = options[key];
    }
    const { logger, category, levels, flushTimeoutMs } = options;
    if (logger !== undefined && !(logger instanceof Logger)) {
      throw new TypeError('kepmlog/pino: options.logger must be a kepmlog Logger');
    }
    if (logger !== undefined && Object.keys(loggerOptions).length > 0) {
      throw new TypeError(
        `kepmlog/pino: options.logger is a ready Logger: give Logger options (${Object.keys(loggerOptions).join(', ')}) ` +
          'to new Logger(...) instead'
      );
    }
    if (category !== undefined && typeof category !== 'string') {
      throw new TypeError('kepmlog/pino: options.category must be a string');
    }
    if (levels !== undefined) {
      if (levels === null || typeof levels !== 'object') {
        throw new TypeError('kepmlog/pino: options.levels must be an object of level labels or numbers');
      }
      for (const name of Object.keys(levels)) toLevel(levels[name]);
    }
    if (flushTimeoutMs !== undefined && (typeof flushTimeoutMs !== 'number' || !(flushTimeoutMs >= 0))) {
      throw new RangeError('kepmlog/pino: options.flushTimeoutMs must be a number of milliseconds >= 0');
    }
    this.category = category || '';
    this.categoryKey = options.categoryKey === undefined ? 'category' : checkKey('categoryKey', options.categoryKey);
    this.correlationIdKey =
      options.correlationIdKey === undefined ? 'correlationId' : checkKey('correlationIdKey', options.correlationIdKey);
    this.levelMap = levels;
    this.flushTimeoutMs = flushTimeoutMs === undefined ? DEFAULT_TIMEOUT_MS : flushTimeoutMs;
    // pino tells its destination its messageKey, errorKey and custom levels ('message' event).
    this.messageKey = 'msg';
    this.pinoLevels = undefined;
    this.ownsLogger = logger === undefined;
    this.logger = logger || newLogger(loggerOptions);
    this.refused = 0;
    this.notJson = 0;
    this._partial = '';
    this._decoder = undefined;
    this._reported = new Set();
    this._ended = false;
    this._closed = undefined;
    this.on('message', (m) => this._config(m));
  }

  _config(message) {
    if (!message || message.code !== 'PINO_CONFIG' || !message.config) return;
    const { messageKey, levels } = message.config;
    if (typeof messageKey === 'string' && messageKey !== '') this.messageKey = messageKey;
    if (levels && typeof levels === 'object') this.pinoLevels = levels;
  }

  /** What pino calls: one or more lines (a transport's chunks may end mid-line). Always true. */
  write(chunk) {
    let s;
    try {
      s = typeof chunk === 'string' ? chunk : this._text(chunk);
    } catch (e) {
      this._refuse(e);
      return true;
    }
    if (this._partial !== '') {
      s = this._partial + s;
      this._partial = '';
      partials.delete(this);
    }
    let start = 0;
    let nl = s.indexOf('\n');
    // pino's case: exactly one line, with its newline.
    if (nl === s.length - 1) {
      this._line(s, 0, nl);
      return true;
    }
    while (nl !== -1) {
      this._line(s, start, nl);
      start = nl + 1;
      nl = s.indexOf('\n', start);
    }
    if (start < s.length) {
      if (s.length - start > MAX_PARTIAL) {
        this._line(s, start, s.length);
      } else {
        this._partial = start === 0 ? s : s.slice(start);
        partials.add(this);
        installPartialHook();
      }
    }
    return true;
  }

  _text(chunk) {
    if (chunk instanceof Uint8Array) {
      // A character may be split across two buffers.
      if (this._decoder === undefined) this._decoder = new StringDecoder('utf8');
      return this._decoder.write(chunk);
    }
    return String(chunk);
  }

  /** Logs a held unterminated line as it is. */
  _takePartial() {
    if (this._decoder !== undefined) {
      const rest = this._decoder.end();
      if (rest !== '') this._partial += rest;
    }
    if (this._partial === '') return;
    const s = this._partial;
    this._partial = '';
    partials.delete(this);
    this._line(s, 0, s.length);
  }

  _line(s, start, end) {
    if (end > start && s.charCodeAt(end - 1) === 13) end--; // pino's crlf option
    if (end <= start) return;
    const line = start === 0 && end === s.length ? s : s.slice(start, end);
    let obj;
    if (line.charCodeAt(0) === 123 /* { */) {
      try {
        obj = JSON.parse(line);
      } catch {
        obj = undefined;
      }
    }
    try {
      if (obj !== null && typeof obj === 'object' && !Array.isArray(obj)) {
        this._record(obj);
      } else {
        // Not pino's JSON (a custom formatter, pino-pretty in a pipeline, a stray print):
        // the line is the message; a blank line carries nothing and is skipped.
        if (!/\S/.test(line)) return;
        this.notJson++;
        this.logger.log(1, this.category, line);
      }
    } catch (e) {
      this._refuse(e);
    }
  }

  _record(obj) {
    const messageKey = this.messageKey;
    const categoryKey = this.categoryKey;
    const correlationKey = this.correlationIdKey;
    let level;
    let message;
    let category = this.category;
    let correlationId;
    // Null prototype: a "__proto__" key of the line stays a plain field.
    let meta;
    for (const key in obj) {
      const v = obj[key];
      if (key === messageKey) {
        message = v;
      } else if (PINO_FIELDS.has(key)) {
        if (key === 'level') level = v;
      } else if (key === categoryKey && typeof v === 'string') {
        // '' is the logger's default category, as in every kepmlog call.
        if (v !== '') category = v;
      } else if (key === correlationKey && (typeof v === 'string' || typeof v === 'number')) {
        correlationId = String(v);
      } else {
        (meta || (meta = Object.create(null)))[key] = v;
      }
    }
    const context = meta === undefined ? '' : JSON.stringify(meta);
    if (typeof message !== 'string') {
      message = message === undefined || message === null ? '' : typeof message === 'object' ? JSON.stringify(message) : String(message);
    }
    // `log.info({ user })` has no msg: the fields are all there is to show, so they are the
    // Message too (KeeperLogger refuses an empty one).
    if (context !== '' && !/\S/.test(message)) message = context;
    const wire = pinoLevel(level, this.levelMap, this.pinoLevels);
    this.logger.log(wire, category, message, { correlationId, context });
  }

  _refuse(e) {
    this.refused++;
    if (this.listenerCount('warn') > 0) {
      this.emit('warn', e);
      return;
    }
    const kind = (e && e.code) || (e && e.name) || 'error';
    if (this._reported.has(kind)) return;
    this._reported.add(kind);
    process.stderr.write(
      `kepmlog: pino: a record was not logged (${kind}): ${e && e.message}; ` +
        'later ones of this kind are only counted (destination.stats().refused)\n'
    );
  }

  /**
   * A flush's denial or give-up: the core has already written it on stderr, so it is only
   * emitted, for a 'warn' listener; it is not a refused record.
   */
  _flushFailed(e) {
    if (this.listenerCount('warn') > 0) this.emit('warn', e);
  }

  /** Blocks until every record written so far is acknowledged, or flushTimeoutMs; pino calls it after fatal. */
  flushSync() {
    this._takePartial();
    if (this.logger.isShutDown) return 0;
    try {
      return this.logger.flushSync(this.flushTimeoutMs);
    } catch (e) {
      this._flushFailed(e);
      return 0;
    }
  }

  /**
   * pino's `logger.flush(cb)`: cb() once every record written so far is acknowledged or at
   * flushTimeoutMs. A denial is emitted as 'warn', never passed to cb: pino's transport worker
   * would turn it into an 'error' that ends the transport.
   */
  flush(cb) {
    this._takePartial();
    const done = this.logger.isShutDown ? Promise.resolve(0) : this.logger.flush(this.flushTimeoutMs);
    done.then(
      () => cb && cb(),
      (e) => {
        this._flushFailed(e);
        if (cb) cb();
      }
    );
  }

  /**
   * Delivers what is left (a Logger it created is shut down, a given one flushed), then emits
   * 'finish' and 'close': pino's transport worker waits for 'close' before it exits.
   */
  end(chunk, cb) {
    if (typeof chunk === 'function') {
      cb = chunk;
      chunk = undefined;
    }
    if (chunk !== undefined && chunk !== null) this.write(chunk);
    this._takePartial();
    if (!this._closed) {
      this._ended = true;
      const done = this.ownsLogger
        ? this.logger.shutdown(this.flushTimeoutMs)
        : this.logger.isShutDown
          ? Promise.resolve(0)
          : this.logger.flush(this.flushTimeoutMs);
      this._closed = done
        .catch((e) => this._flushFailed(e))
        .then(() => {
          this.emit('finish');
          this.emit('close');
        });
    }
    if (cb) this._closed.then(() => cb());
    return this;
  }

  /** Always true: how pino(destination), with no options, tells a stream from its options. */
  get writable() {
    return true;
  }

  get writableEnded() {
    return this._ended;
  }

  /** The logger's counters plus `refused` (records the core would not take) and `notJson` (lines logged as text). */
  stats() {
    return { ...this.logger.stats(), refused: this.refused, notJson: this.notJson };
  }
}

/** Inside pino.transport's worker thread, where process.argv is the worker's, not the tool's. */
function inTransportWorker() {
  return !workerThreads.isMainThread;
}

function newLogger(options) {
  if (!inTransportWorker()) return new Logger(options);
  const { args } = options;
  if (args === undefined) {
    if (typeof options.token === 'string' && (options.apiBase !== undefined || options.broker !== undefined)) {
      return new Logger({ ...options, args: [] });
    }
    throw new TypeError(
      "kepmlog/pino in a worker thread (pino.transport) cannot see the tool's arguments: process.argv there is " +
        "the worker's; pass options: { args: process.argv } (for --keeper-api-base and the client-id token), " +
        'or token and apiBase explicitly'
    );
  }
  if (!Array.isArray(args)) return new Logger(options);
  // The token is named after the tool's script: args[1] of the tool's process.argv.
  const scriptPath = options.scriptPath === undefined && typeof args[1] === 'string' ? args[1] : options.scriptPath;
  return new Logger({ ...options, scriptPath });
}

/** pino.transport waits for its worker's stream; pino sends the config to that worker. */
function whenConfigured(destination) {
  const port = workerThreads.parentPort;
  const data = workerThreads.workerData;
  if (!port || !data || !data.workerData || data.workerData.pinoWillSendConfig !== true) return destination;
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      port.off('message', onMessage);
      resolve(destination);
    };
    const onMessage = (m) => {
      if (m && m.code === 'PINO_CONFIG') {
        destination._config(m);
        done();
      }
    };
    // pino posts it as it creates the logger; a transport never given to pino() starts anyway.
    const timer = setTimeout(done, 1000);
    port.on('message', onMessage);
  });
}

/**
 * `require('kepmlog/pino')(options)`: a destination for `pino(opts, destination)`. Options: a
 * ready Logger (`{ logger }`) or Logger options (`{ source, apiBase, ... }`), plus `category`,
 * `levels`, `categoryKey`, `correlationIdKey`, `flushTimeoutMs`. As a pino.transport target
 * (in a worker thread) it resolves once pino has sent its config.
 */
function kepmlogPino(options) {
  const destination = new KeeperLoggerDestination(options);
  return inTransportWorker() ? whenConfigured(destination) : destination;
}

module.exports = kepmlogPino;
module.exports.KeeperLoggerDestination = KeeperLoggerDestination;
module.exports.pinoLevel = pinoLevel;
module.exports.default = kepmlogPino;
