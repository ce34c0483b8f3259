'use strict';
// The winston adapter delivers through a real devagent.

const test = require('node:test');
const assert = require('node:assert/strict');
const winston = require('winston');
const { Logger } = require('kepmlog');
const { KeeperLoggerTransport, winstonLevel } = require('kepmlog/winston');
const { DevAgent } = require('./helpers');

let agent;
test.before(async () => {
  agent = await DevAgent.start();
});
test.after(async () => {
  await agent.stop();
});

test('winston level names map onto the six KeeperLogger levels', () => {
  const expect = { error: 3, warn: 2, info: 1, http: 1, verbose: 5, debug: 0, silly: 5, emerg: 4, crit: 4, notice: 1, custom: 1 };
  for (const [name, wire] of Object.entries(expect)) assert.equal(winstonLevel(name), wire, name);
  assert.equal(winstonLevel('audit', { audit: 'warning' }), 2);
});

test('entries logged through winston arrive with level, category, correlation id and context', async () => {
  const transport = new KeeperLoggerTransport({
    loggerOptions: { ...agent.brokerOptions(), jobId: 'winston-job', source: 'WinstonTool' },
    category: 'App',
  });
  assert.ok(transport.logger instanceof Logger);
  const log = winston.createLogger({ level: 'silly', transports: [transport] });
  const corr = `w-${Date.now()}`;
  const warnings = [];
  log.on('warn', (e) => warnings.push(e));
  log.error('disk failed', { correlationId: corr, device: 'sda' });
  log.warn('slow scan', { correlationId: corr, category: 'Scan' });
  log.info('plain info', { correlationId: corr });
  log.http('request', { correlationId: corr });
  log.verbose('details', { correlationId: corr });
  log.debug('debugging', { correlationId: corr });
  log.silly('noise', { correlationId: corr });
  log.log('error', new Error('boom'), { correlationId: corr });
  assert.equal(await transport.flush(10000), 0);
  const got = await agent.waitCount(
    (e) => e.topic === 'KeeperLogger' && e.payload.MetaData.CorrelationId === corr,
    8
  );
  const meta = got.map((e) => e.payload.MetaData);
  assert.deepEqual(
    meta.map((m) => [m.LogLevel, m.Category, m.Message]),
    [
      [3, 'App', 'disk failed'],
      [2, 'Scan', 'slow scan'],
      [1, 'App', 'plain info'],
      [1, 'App', 'request'],
      [5, 'App', 'details'],
      [0, 'App', 'debugging'],
      [5, 'App', 'noise'],
      [3, 'App', 'boom'],
    ]
  );
  meta.forEach((m) => assert.equal(m.Source, 'WinstonTool'));
  assert.deepEqual(JSON.parse(meta[0].Context), { device: 'sda' });
  assert.equal(meta[2].Context, '');
  assert.match(meta[7].Context, /"stack":"Error: boom/);
  assert.deepEqual(warnings, []);

  // An entry the core refuses (empty message) is a 'warn' on the winston logger, not a crash.
  log.info('', { correlationId: corr });
  await new Promise((r) => setImmediate(r));
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0].code, 'empty_message');

  const done = new Promise((resolve) => transport.on('finish', resolve));
  log.end();
  await done;
  log.close();
  assert.equal(await transport.logger.shutdown(5000), 0);
});

test('a transport can share an application Logger', async () => {
  const logger = new Logger({ ...agent.brokerOptions(), jobId: 'winston-job', source: 'Shared' });
  const log = winston.createLogger({ transports: [new KeeperLoggerTransport({ logger })] });
  const corr = `s-${Date.now()}`;
  log.info('through winston', { correlationId: corr });
  logger.info('Direct', 'direct', { correlationId: corr });
  assert.equal(await logger.flush(10000), 0);
  const got = await agent.waitCount((e) => e.topic === 'KeeperLogger' && e.payload.MetaData.CorrelationId === corr, 2);
  assert.deepEqual(
    got.map((e) => [e.payload.MetaData.Category, e.payload.MetaData.Message]),
    [
      ['General', 'through winston'],
      ['Direct', 'direct'],
    ]
  );
  await logger.shutdown(5000);
});
