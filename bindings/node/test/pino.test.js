'use strict';
// The pino destination delivers through a real devagent: exact MetaData per level and field,
// the shared vectors, and child processes that log through pino (directly and as a
// pino.transport) and end without calling anything.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const pino = require('pino');
const { Logger } = require('kepmlog');
const kepmlogPino = require('kepmlog/pino');
const { KeeperLoggerDestination, pinoLevel } = kepmlogPino;
const { DevAgent, repoRoot, runNodeFixture } = require('./helpers');

const vectors = JSON.parse(fs.readFileSync(path.join(repoRoot(), 'tests', 'vectors', 'records.json'), 'utf8'));

let agent;
test.before(async () => {
  agent = await DevAgent.start();
});
test.after(async () => {
  await agent.stop();
});

let seq = 0;
function newTag(what) {
  return `${what}-${process.pid}-${++seq}`;
}

function tagged(tag) {
  return (e) => e.event === 'message' && e.topic === 'KeeperLogger' && e.payload.MetaData.CorrelationId === tag;
}

function meta(level, category, message, correlationId, context = '', source = 'PinoTool') {
  return { MessageType: 4, LogLevel: level, Source: source, Category: category, Message: message, CorrelationId: correlationId, Context: context };
}

/** A destination with its own Logger on the devagent, and 'warn' collected. */
function destination(extra = {}) {
  const dest = kepmlogPino({ ...agent.brokerOptions(), jobId: 'pino-job', source: 'PinoTool', ...extra });
  const warnings = [];
  dest.on('warn', (e) => warnings.push(e));
  return { dest, warnings };
}

async function received(tag, n) {
  const got = await agent.waitCount(tagged(tag), n);
  return got.map((e) => e.payload.MetaData);
}

test('pino levels map onto the six KeeperLogger levels, custom numbers by range', () => {
  const expect = { 10: 5, 20: 0, 30: 1, 40: 2, 50: 3, 60: 4, 5: 5, 15: 5, 25: 0, 35: 1, 45: 2, 55: 3, 70: 4 };
  for (const [n, wire] of Object.entries(expect)) assert.equal(pinoLevel(Number(n)), wire, `level ${n}`);
  const labels = { trace: 5, debug: 0, info: 1, warn: 2, error: 3, fatal: 4, other: 1 };
  for (const [label, wire] of Object.entries(labels)) assert.equal(pinoLevel(label), wire, label);
  assert.equal(pinoLevel(undefined), 1);
  assert.equal(pinoLevel('nope'), 1);
  const levels = { labels: { 35: 'audit' }, values: { audit: 35 } };
  assert.equal(pinoLevel(35, undefined, levels), 1);
  assert.equal(pinoLevel(35, { audit: 'warning' }, levels), 2);
  assert.equal(pinoLevel('audit', { audit: 'critical' }, levels), 4);
  assert.equal(pinoLevel('audit', undefined, levels), 1);
  assert.equal(pinoLevel(35, { 35: 'error' }), 3);
});

test('every pino level, category, message, correlation id, context and err arrive exactly', async () => {
  const { dest, warnings } = destination({ category: 'App' });
  assert.ok(dest instanceof KeeperLoggerDestination);
  assert.ok(dest.logger instanceof Logger);
  const log = pino({ level: 'trace' }, dest);
  const tag = newTag('levels');
  log.trace({ correlationId: tag }, 'trace msg');
  log.debug({ correlationId: tag }, 'debug msg');
  log.info({ correlationId: tag }, 'info msg');
  log.warn({ correlationId: tag }, 'warn msg');
  log.error({ correlationId: tag }, 'error msg');
  log.fatal({ correlationId: tag }, 'fatal msg');
  log.info({ correlationId: tag, category: 'Scan', dir: '/srv', n: 3, nested: { ok: true } }, 'with context');
  log.error({ correlationId: tag, err: new Error('boom') }, 'failed');
  const child = log.child({ category: 'Child', correlationId: tag });
  child.warn(new Error('bare error'));
  child.info({ user: 'bob' });
  child.info('multi\nline');
  log.info({ correlationId: tag, category: '' }, 'empty category');
  assert.equal(await dest.logger.flush(10000), 0);
  const got = await received(tag, 12);
  const errCtx = JSON.parse(got[7].Context);
  assert.deepEqual(Object.keys(errCtx), ['err']);
  assert.equal(errCtx.err.type, 'Error');
  assert.equal(errCtx.err.message, 'boom');
  assert.match(errCtx.err.stack, /^Error: boom\n {4}at /);
  const bare = JSON.parse(got[8].Context);
  assert.equal(bare.err.message, 'bare error');
  assert.deepEqual(got, [
    meta(5, 'App', 'trace msg', tag),
    meta(0, 'App', 'debug msg', tag),
    meta(1, 'App', 'info msg', tag),
    meta(2, 'App', 'warn msg', tag),
    meta(3, 'App', 'error msg', tag),
    meta(4, 'App', 'fatal msg', tag),
    meta(1, 'Scan', 'with context', tag, '{"dir":"/srv","n":3,"nested":{"ok":true}}'),
    meta(3, 'App', 'failed', tag, got[7].Context),
    meta(2, 'Child', 'bare error', tag, got[8].Context),
    // No msg: the fields are the Message too.
    meta(1, 'Child', '{"user":"bob"}', tag, '{"user":"bob"}'),
    meta(1, 'Child', 'multi line', tag),
    meta(1, 'App', 'empty category', tag),
  ]);
  for (const m of got) assert.deepEqual(Object.keys(m), Object.keys(meta(0, '', '', '')));
  assert.deepEqual(warnings, []);
  const s = dest.stats();
  assert.equal(s.refused, 0);
  assert.equal(s.notJson, 0);
  assert.equal(s.dropped, 0);
  dest.end();
  await new Promise((resolve) => dest.once('close', resolve));
  assert.equal(dest.logger.isShutDown, true);
});

test('custom levels, a level formatter, a messageKey and other keys come from pino', async () => {
  const { dest } = destination({ levels: { notice: 'warning' } });
  const log = pino(
    {
      level: 'trace',
      customLevels: { audit: 35, notice: 45, emergency: 70 },
      messageKey: 'message',
      formatters: { level: (label) => ({ level: label }) },
    },
    dest
  );
  const tag = newTag('custom');
  log.audit({ correlationId: tag }, 'audit');
  log.notice({ correlationId: tag }, 'notice');
  log.emergency({ correlationId: tag }, 'emergency');
  log.warn({ correlationId: tag, msg: 'a field now' }, 'warn');
  assert.equal(await dest.logger.flush(10000), 0);
  assert.deepEqual(await received(tag, 4), [
    meta(1, 'General', 'audit', tag),
    meta(2, 'General', 'notice', tag),
    meta(4, 'General', 'emergency', tag),
    meta(2, 'General', 'warn', tag, '{"msg":"a field now"}'),
  ]);

  const keyed = destination({ categoryKey: 'area', correlationIdKey: 'reqId' });
  const log2 = pino({ base: { app: 'x' } }, keyed.dest);
  const tag2 = newTag('keys');
  log2.info({ area: 'Net', reqId: tag2, category: 'kept' }, 'renamed keys');
  assert.equal(await keyed.dest.logger.flush(10000), 0);
  assert.deepEqual(await received(tag2, 1), [meta(1, 'Net', 'renamed keys', tag2, '{"app":"x","category":"kept"}')]);
  await Promise.all([dest.logger.shutdown(5000), keyed.dest.logger.shutdown(5000)]);
});

test('lines that are not JSON are logged as text; bad input is counted, never thrown', async () => {
  const { dest, warnings } = destination();
  const tag = newTag('text');
  // A pino whose lines are not JSON any more (a streamWrite hook, like a custom formatter).
  const log = pino({ hooks: { streamWrite: (s) => `[${tag}] ${s}` } }, dest);
  log.info('hooked');
  const text = (m) => m.topic === 'KeeperLogger' && m.payload.MetaData.Message.startsWith(`[${tag}]`);
  const hooked = await agent.waitFor((e) => e.event === 'message' && text(e));
  assert.equal(hooked.payload.MetaData.LogLevel, 1);
  assert.equal(hooked.payload.MetaData.Category, 'General');
  assert.match(hooked.payload.MetaData.Message, /^\[[^\]]+\] \{"level":30,"time":\d+,"pid":\d+,"hostname":".*","msg":"hooked"\}$/);

  assert.equal(dest.write(''), true);
  assert.equal(dest.write('\n  \n\r\n'), true);
  assert.equal(dest.write(`{"level":40,"msg":"two","correlationId":"${tag}"}\n{"level":50,"msg":"lines","correlationId":"${tag}"}\r\n`), true);
  assert.equal(dest.write(Buffer.from(`{"level":30,"msg":"a buffer","correlationId":"${tag}"}\n`)), true);
  assert.equal(dest.write(`{"level":30,"msg":"split `), true);
  assert.equal(dest.write(`across writes","correlationId":"${tag}"}\n`), true);
  assert.equal(dest.write('{"level":30,"msg":"broken JSON"\n'), true);
  assert.equal(dest.write('[1,2]\n'), true);
  assert.equal(dest.write('{"level":30,"msg":""}\n'), true);
  assert.equal(dest.write('{"level":30,"msg":" \\t "}\n'), true);
  assert.equal(dest.write(`{"level":30,"msg":"last, unterminated","correlationId":"${tag}"}`), true);
  dest.flushSync();
  assert.equal(await dest.logger.flush(10000), 0);
  assert.deepEqual(await received(tag, 5), [
    meta(2, 'General', 'two', tag),
    meta(3, 'General', 'lines', tag),
    meta(1, 'General', 'a buffer', tag),
    meta(1, 'General', 'split across writes', tag),
    // Held until flushSync: an unterminated line is not lost, nor cut.
    meta(1, 'General', 'last, unterminated', tag),
  ]);
  await agent.waitFor((e) => e.event === 'message' && e.payload && e.payload.MetaData && e.payload.MetaData.Message === '[1,2]');
  await agent.waitFor((e) => e.event === 'message' && e.payload && e.payload.MetaData && e.payload.MetaData.Message === '{"level":30,"msg":"broken JSON"');
  assert.deepEqual(
    warnings.map((e) => e.code),
    ['empty_message', 'empty_message']
  );
  const s = dest.stats();
  assert.equal(s.refused, 2);
  assert.equal(s.notJson, 3);

  // Without a 'warn' listener: one stderr line per kind, then only the count.
  const quiet = kepmlogPino({ ...agent.brokerOptions(), jobId: 'pino-job', source: 'PinoTool' });
  const written = [];
  const stderrWrite = process.stderr.write;
  process.stderr.write = (s, ...rest) => (String(s).startsWith('kepmlog: pino:') ? written.push(String(s)) > 0 : stderrWrite.call(process.stderr, s, ...rest));
  try {
    pino(quiet).info('');
    pino(quiet).info('   ');
  } finally {
    process.stderr.write = stderrWrite;
  }
  assert.equal(written.length, 1);
  assert.match(written[0], /^kepmlog: pino: a record was not logged \(empty_message\): kepmlog: .*destination\.stats\(\)\.refused\)\n$/);
  assert.equal(quiet.stats().refused, 2);
  await quiet.logger.shutdown(5000);

  // A shut-down logger refuses, which is reported, not thrown.
  await dest.logger.shutdown(5000);
  assert.equal(dest.write('{"level":30,"msg":"too late"}\n'), true);
  assert.equal(warnings.at(-1).code, 'shut_down');
  assert.equal(dest.stats().refused, 3);
});

test('a destination can share an application Logger; options are checked', async () => {
  const logger = new Logger({ ...agent.brokerOptions(), jobId: 'pino-job', source: 'Shared' });
  const dest = kepmlogPino({ logger, category: 'ViaPino' });
  const log = pino(dest);
  const tag = newTag('shared');
  log.info({ correlationId: tag }, 'through pino');
  logger.info('Direct', 'direct', { correlationId: tag });
  assert.equal(await logger.flush(10000), 0);
  assert.deepEqual(await received(tag, 2), [meta(1, 'ViaPino', 'through pino', tag, '', 'Shared'), meta(1, 'Direct', 'direct', tag, '', 'Shared')]);
  // end() flushes a given Logger and leaves it to its owner.
  await new Promise((resolve) => dest.end(resolve));
  assert.equal(logger.isShutDown, false);
  await logger.shutdown(5000);

  assert.throws(() => kepmlogPino({ logger: {} }), TypeError);
  assert.throws(() => kepmlogPino({ logger, source: 'X' }), /options\.logger is a ready Logger: give Logger options \(source\)/);
  assert.throws(() => kepmlogPino({ ...agent.brokerOptions(), jobId: 'pino-job', sourc: 'typo' }), /unknown option "sourc"/);
  assert.throws(() => kepmlogPino({ ...agent.brokerOptions(), jobId: 'pino-job', levels: { audit: 'loud' } }), RangeError);
  assert.throws(() => kepmlogPino({ ...agent.brokerOptions(), jobId: 'pino-job', categoryKey: '' }), TypeError);
});

test('pino.multistream: the destination beside another stream, levels per stream', async () => {
  const { dest } = destination();
  const lines = [];
  const other = { write: (s) => lines.push(s) };
  const log = pino({ level: 'debug' }, pino.multistream([{ stream: other, level: 'debug' }, { stream: dest, level: 'warn' }]));
  const tag = newTag('multi');
  log.debug({ correlationId: tag }, 'only the other stream');
  log.warn({ correlationId: tag }, 'both');
  log.error({ correlationId: tag }, 'both again');
  assert.equal(await dest.logger.flush(10000), 0);
  assert.deepEqual(await received(tag, 2), [meta(2, 'General', 'both', tag), meta(3, 'General', 'both again', tag)]);
  assert.equal(lines.length, 3);
  await dest.logger.shutdown(5000);
});

/** The pino method of a vector's level. */
const PINO_METHOD = { Debug: 'debug', Info: 'info', Warning: 'warn', Error: 'error', Critical: 'fatal', Verbose: 'trace' };

test('the shared vectors without a text Context give the expected MetaData through pino', async () => {
  const { dest, warnings } = destination({ source: vectors.logger.source, defaultCategory: vectors.logger.default_category });
  const log = pino({ level: 'trace' }, dest);
  // Context through pino is the JSON of the line's other fields, never a vector's free text.
  const cases = vectors.cases.filter((c) => c.input.context === '');
  assert.ok(cases.length >= 20);
  const expected = [];
  const errors = [];
  for (const c of cases) {
    const before = warnings.length;
    log[PINO_METHOD[c.input.level_name]]({ category: c.input.category, correlationId: c.input.correlation_id }, c.input.message);
    if (c.error) {
      assert.equal(warnings.length, before + 1, c.name);
      errors.push([c.name, c.error]);
      assert.equal(warnings.at(-1).code, c.error, c.name);
    } else {
      assert.equal(warnings.length, before, c.name);
      expected.push(c);
    }
  }
  assert.ok(errors.length >= 3);
  assert.equal(await dest.logger.flush(20000), 0);
  const got = await agent.waitCount(
    (e) => e.event === 'message' && e.topic === 'KeeperLogger' && e.payload.MetaData.Source === vectors.logger.source,
    expected.length
  );
  assert.equal(got.length, expected.length);
  got.forEach((m, i) => {
    assert.deepEqual(m.payload.MetaData, expected[i].expect, expected[i].name);
    assert.deepEqual(Object.keys(m.payload.MetaData), Object.keys(expected[i].expect), expected[i].name);
  });
  assert.equal(dest.stats().refused, errors.length);
  await dest.logger.shutdown(5000);
});

/** Runs a fixture; resolves with its exit code, stdout and stderr, or rejects past `limitMs`. */

function runFixture(file, tag, opts = {}) {
  return runNodeFixture(agent, 'pino-exit-job', file, tag, opts);
}

async function allArrive(tag, n) {
  const got = await agent.waitCount(tagged(tag), n, 30000);
  assert.equal(got.length, n);
  const seen = new Set(got.map((e) => e.payload.MetaData.Message));
  assert.equal(seen.size, n, 'no duplicates, no gaps');
  for (let i = 0; i < n; i++) assert.ok(seen.has(`record ${i}`), `record ${i}`);
  return got;
}

test('a script that logs through pino and returns exits by itself and delivers every record', async () => {
  const tag = newTag('exit');
  const r = await runFixture('pino-log-and-return.js', tag, { env: { RECORDS: '5000' } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  const got = await allArrive(tag, 5000);
  assert.deepEqual(got[0].payload.MetaData, meta(1, 'Exit', 'record 0', tag, '{"i":0}', 'PinoExit'));
});

test('pino.transport({ target: "kepmlog/pino" }): the worker delivers everything and the process exits', async () => {
  for (const mode of ['target', 'targets']) {
    const tag = newTag(`transport-${mode}`);
    const r = await runFixture('pino-transport.js', tag, { env: { RECORDS: '2000', MODE: mode } });
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /undelivered|Error/);
    const got = await allArrive(tag, 2000);
    assert.deepEqual(got[0].payload.MetaData, meta(2, 'Transport', 'record 0', tag, '{"mode":"' + mode + '"}', 'PinoTransport'));
    // The worker's process.argv is not the tool's: the token is still the script's name.
    await agent.waitFor((e) => e.event === 'client' && e.client_id === `pino-exit-job_pino-transport_${r.pid}`);
  }
});

test('pino.transport without the tool\'s arguments fails at start, naming the fix', async () => {
  const r = await runFixture('pino-transport.js', newTag('noargs'), { env: { RECORDS: '1', MODE: 'noargs' } });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /pass options: \{ args: process\.argv \}/);
});

test('ESM: import kepmlogPino from "kepmlog/pino"', async () => {
  const tag = newTag('esm');
  const r = await runFixture('pino-esm.mjs', tag);
  assert.equal(r.code, 0, r.stderr);
  const m = await agent.waitFor(tagged(tag));
  assert.deepEqual(m.payload.MetaData, meta(1, 'Esm', 'imported as ESM', tag, '', 'PinoEsm'));
});
