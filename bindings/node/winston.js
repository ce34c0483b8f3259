'use strict';
// winston transport: `require('kepmlog/winston')`. Needs the optional peer dependency
// `winston-transport` (installed with winston), which only this module loads.

const path = require('node:path');
const { createRequire } = require('node:module');
const { Logger, toLevel } = require('./index.js');

/**
 * winston-transport as the application sees it. npm links a local package
 * (`npm install ./bindings/node`) as a symlink, and Node resolves this file's requires from the
 * link's target, outside the application: so the application's own node_modules (next to its
 * main script, or the working directory) are searched too.
 */
function loadTransport() {
  const bases = [];
  if (require.main && require.main.filename) bases.push(require.main.filename);
  if (process.argv[1]) bases.push(path.resolve(process.argv[1]));
  bases.push(path.join(process.cwd(), 'noop.js'));
  let first;
  try {
    return require('winston-transport');
  } catch (e) {
    first = e;
  }
  for (const base of bases) {
    try {
      return createRequire(base)('winston-transport');
    } catch {
      // next candidate
    }
  }
  const err = new Error(
    "kepmlog/winston needs the 'winston-transport' package (it comes with winston): npm install winston"
  );
  err.code = 'MODULE_NOT_FOUND';
  err.cause = first;
  throw err;
}

const Transport = loadTransport();

const LEVEL = Symbol.for('level');

/** winston's npm, syslog and cli level names -> KeeperLogger wire levels; others log as Info. */
const WINSTON_LEVELS = new Map([
  ['emerg', 4],
  ['alert', 4],
  ['crit', 4],
  ['fatal', 4],
  ['critical', 4],
  ['error', 3],
  ['warn', 2],
  ['warning', 2],
  ['notice', 1],
  ['info', 1],
  ['http', 1],
  ['help', 1],
  ['data', 1],
  ['prompt', 1],
  ['input', 1],
  ['verbose', 5],
  ['silly', 5],
  ['trace', 5],
  ['debug', 0],
]);

/** Fields of a winston info object that are not copied into Context. */
const OWN_FIELDS = new Set(['level', 'message', 'category', 'correlationId']);

function winstonLevel(name, overrides) {
  if (overrides && Object.prototype.hasOwnProperty.call(overrides, name)) return toLevel(overrides[name]);
  const v = WINSTON_LEVELS.get(String(name).toLowerCase());
  return v === undefined ? 1 : v;
}

function errorJson(key, value) {
  if (value instanceof Error) {
    const out = { name: value.name, message: value.message, stack: value.stack };
    for (const k of Object.keys(value)) out[k] = value[k];
    return out;
  }
  return typeof value === 'bigint' ? value.toString() : value;
}

/** Context: the entry's own fields beyond level/message/category/correlationId, as JSON. */
function contextOf(info, error) {
  let meta;
  for (const key of Object.keys(info)) {
    if (OWN_FIELDS.has(key)) continue;
    (meta || (meta = {}))[key] = info[key];
  }
  if (error && error.stack && !(meta && 'stack' in meta)) (meta || (meta = {})).stack = error.stack;
  if (!meta) return '';
  try {
    return JSON.stringify(meta, errorJson);
  } catch (e) {
    return `[context not serializable: ${e.message}]`;
  }
}

/**
 * A winston transport that sends every log entry to KeeperLogger through a kepmlog Logger.
 *
 * - level: `info[Symbol.for('level')]` mapped by name (error -> Error, warn -> Warning,
 *   info/http -> Info, verbose/silly -> Verbose, debug -> Debug; syslog emerg/alert/crit ->
 *   Critical); `levels: { myLevel: 'error' }` overrides.
 * - Category: `info.category`, else the transport's `category` option, else the logger's default.
 * - CorrelationId: `info.correlationId`. Context: the entry's other fields (metadata, `stack`
 *   of errors) as JSON.
 */
class KeeperLoggerTransport extends Transport {
  constructor(opts = {}) {
    if (opts === null || typeof opts !== 'object') {
      throw new TypeError('kepmlog/winston: options must be an object');
    }
    const { logger, loggerOptions, category, levels, ...transportOptions } = opts;
    super(transportOptions);
    if (logger !== undefined && !(logger instanceof Logger)) {
      throw new TypeError('kepmlog/winston: options.logger must be a kepmlog Logger');
    }
    if (category !== undefined && typeof category !== 'string') {
      throw new TypeError('kepmlog/winston: options.category must be a string');
    }
    if (levels !== undefined) {
      if (levels === null || typeof levels !== 'object') {
        throw new TypeError('kepmlog/winston: options.levels must be an object of level names');
      }
      for (const name of Object.keys(levels)) toLevel(levels[name]);
    }
    this.name = opts.name || 'kepmlog';
    this.category = category || '';
    // Not `this.levels`: winston sets that to its own name -> priority table when piping.
    this.levelMap = levels;
    this.ownsLogger = logger === undefined;
    this.logger = logger || new Logger(loggerOptions);
  }

  log(info, callback) {
    try {
      const level = winstonLevel(info[LEVEL] || info.level, this.levelMap);
      const category = typeof info.category === 'string' && info.category !== '' ? info.category : this.category;
      // winston passes `logger.error(err)` as the Error itself or with the Error as message.
      const error = info.message instanceof Error ? info.message : info instanceof Error ? info : undefined;
      let message = info.message instanceof Error ? info.message.message : info.message;
      if (typeof message !== 'string') message = message === undefined || message === null ? '' : String(message);
      const correlationId = typeof info.correlationId === 'string' ? info.correlationId : '';
      this.logger.log(level, category, message, { correlationId, context: contextOf(info, error) });
    } catch (e) {
      // A transport must not break the application's logging: winston forwards 'warn' to
      // the logger, and an unhandled 'warn' is harmless (unlike 'error').
      this.emit('warn', e);
    }
    setImmediate(() => this.emit('logged', info));
    if (callback) callback();
  }

  /** Resolves with the number of records still undelivered at the deadline. */
  flush(timeoutMs) {
    return this.logger.flush(timeoutMs);
  }

  close() {
    if (this.ownsLogger) {
      this.logger.shutdown().catch((e) => this.emit('warn', e));
    }
  }
}


module.exports = { KeeperLoggerTransport, winstonLevel };
module.exports.default = KeeperLoggerTransport;
