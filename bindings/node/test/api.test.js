'use strict';
// The Logger API against a real devagent: bad input, events, denial, broker down, shutdown.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { Logger, KepmlogError, Level, toLevel } = require('kepmlog');
const { DevAgent } = require('./helpers');

// The addon itself, for the core's rules it exposes (the package's exports hide it).
const native = require(path.join(path.dirname(require.resolve('kepmlog/package.json')), 'kepmlog.node'));

/** A RangeError carrying the core's message (`pattern`) and code 'invalid_option'. */
function coreRangeError(pattern) {
  return (e) => {
    assert.ok(e instanceof RangeError, `${e}`);
    assert.equal(e.code, 'invalid_option');
    assert.match(e.message, pattern);
    return true;
  };
}

let agent;
test.before(async () => {
  agent = await DevAgent.start(['--allow', 'KeeperLogger', '--allow', 'Jobs/api-job/events']);
});
test.after(async () => {
  await agent.stop();
});

function newLogger(extra = {}) {
  return new Logger({ ...agent.brokerOptions(), jobId: 'api-job', source: 'ApiTool', ...extra });
}

test('bad options: TypeError for types, RangeError for values, KepmlogError with code otherwise', () => {
  const b = agent.brokerOptions();
  assert.throws(() => new Logger('x'), TypeError);
  assert.throws(() => new Logger({ ...b, jobId: 'a', jobID: 'b' }), { name: 'TypeError', message: /unknown option "jobID"/ });
  assert.throws(() => new Logger({ ...b, jobId: 7 }), TypeError);
  // Bad values are RangeErrors with the core's message, which names the option and the fix.
  assert.throws(() => new Logger({ ...b, jobId: 'a', queueCapacity: 0 }), RangeError);
  assert.throws(() => new Logger({ ...b, jobId: 'a', queueCapacity: 0 }), coreRangeError(/queue_capacity: must be at least 1/));
  assert.throws(() => new Logger({ ...b, jobId: 'a', queueCapacity: -2 }), coreRangeError(/queue_capacity: must be at least 1/));
  assert.throws(() => new Logger({ ...b, jobId: 'a', queueCapacity: 1.5 }), RangeError);
  assert.throws(() => new Logger({ ...b, jobId: 'a', queueCapacity: '9' }), TypeError);
  assert.throws(() => new Logger({ ...b, jobId: 'a', overflow: 'explode' }), RangeError);
  assert.throws(
    () => new Logger({ ...b, jobId: 'a', overflow: 'explode' }),
    coreRangeError(/overflow: "explode" is not one of "drop", "block"/)
  );
  assert.throws(() => new Logger({ ...b, jobId: 'a', overflow: 7 }), TypeError);
  assert.throws(() => new Logger({ jobId: 'a', broker: 'nohostport' }), RangeError);
  assert.throws(
    () => new Logger({ jobId: 'a', broker: 'nohostport' }),
    coreRangeError(/broker: "nohostport" has no port; write HOST:PORT/)
  );
  assert.throws(() => new Logger({ jobId: 'a', broker: '::1:8675' }), coreRangeError(/brackets around an IPv6 host/));
  assert.throws(() => new Logger({ jobId: 'a', broker: { host: '127.0.0.1', port: 70000 } }), RangeError);
  assert.throws(
    () => new Logger({ jobId: 'a', broker: { host: '127.0.0.1', port: 70000 } }),
    coreRangeError(/broker: .*from 1 to 65535; write HOST:PORT/)
  );
  assert.throws(() => new Logger({ jobId: 'a', broker: { host: '127.0.0.1', port: 0 } }), coreRangeError(/port 8675/));
  assert.throws(() => new Logger({ jobId: 'a', broker: { host: '127.0.0.1', port: true } }), TypeError);
  assert.throws(() => new Logger({ ...b, jobId: 'a', eventTopic: 'Jobs/#' }), { code: 'invalid_option', message: /event_topic/ });
  assert.throws(() => new Logger({ ...b, jobId: 'a', args: ['x', 3] }), TypeError);
  assert.throws(
    () => new Logger({ ...b, jobId: 'secrets_scanner' }),
    (e) => e instanceof KepmlogError && e.code === 'invalid_job_id' && /hyphens/.test(e.message)
  );
  assert.throws(() => new Logger({ ...b, jobId: 'a', token: 'bad token' }), { code: 'invalid_token' });
  assert.throws(() => new Logger({ ...b, jobId: 'a', caBundle: '/nonexistent/ca.pem' }), { code: 'invalid_option' });
  assert.throws(() => new Logger({ jobId: 'a', broker: 'example.com:8675' }), { code: 'invalid_option' });
  const saved = process.env.KEEPER_JOB_ID;
  delete process.env.KEEPER_JOB_ID;
  try {
    assert.throws(() => new Logger(b), (e) => e.code === 'missing_job_id' && /mqttTopics/.test(e.message));
  } finally {
    if (saved !== undefined) process.env.KEEPER_JOB_ID = saved;
  }
});

test('level names are the core\'s: the same names and aliases as every other binding', () => {
  assert.equal(toLevel('Warning'), 2);
  assert.equal(toLevel('WARN'), 2);
  assert.equal(toLevel('information'), 1);
  assert.equal(toLevel('err'), 3);
  assert.equal(toLevel('fatal'), 4);
  assert.equal(toLevel('trace'), 5);
  assert.equal(toLevel('0'), 0);
  assert.equal(toLevel('fatal'), 4, 'cached');
  assert.throws(() => toLevel('loud'), RangeError);
  assert.throws(() => toLevel('loud'), RangeError, 'invalid names are never cached');
});

test('bad log arguments throw and log nothing', async () => {
  const logger = newLogger();
  assert.throws(() => logger.info('C', 42), TypeError);
  assert.throws(() => logger.info(5, 'm'), TypeError);
  assert.throws(() => logger.info('C', 'm', 'opts'), TypeError);
  assert.throws(() => logger.info('C', 'm', { correlationId: 1 }), TypeError);
  assert.throws(() => logger.info('C', 'm', { context: 3 }), TypeError);
  assert.throws(() => logger.log('loud', 'C', 'm'), RangeError);
  assert.throws(() => logger.log(6, 'C', 'm'), RangeError);
  assert.throws(() => logger.log(1.5, 'C', 'm'), RangeError);
  assert.throws(() => logger.log(null, 'C', 'm'), TypeError);
  assert.throws(() => logger.info('C', ''), { code: 'empty_message' });
  assert.throws(() => logger.event([1, 2]), TypeError);
  assert.throws(() => logger.event('{"a":1}'), TypeError);
  assert.throws(() => logger.event(null), TypeError);
  await assert.rejects(logger.flush(-1), RangeError);
  await assert.rejects(logger.flush('1s'), TypeError);
  assert.throws(() => logger.flushSync(NaN), RangeError);
  assert.equal(logger.stats().accepted, 0);
  assert.equal(await logger.shutdown(5000), 0);
});

test('levels: names, aliases and numbers', () => {
  assert.equal(toLevel('WARN'), 2);
  assert.equal(toLevel('fatal'), 4);
  assert.equal(toLevel('Trace'), 5);
  assert.equal(toLevel('critical'), Level.Critical);
  assert.equal(toLevel(0), Level.Debug);
  assert.throws(() => toLevel('constructor'), RangeError);
});

test('levels, options, events and stats reach the broker', async () => {
  const logger = newLogger({ defaultCategory: 'Main' });
  assert.match(logger.clientId, new RegExp(`^api-job_[A-Za-z0-9-]+_${process.pid}$`));
  assert.equal(logger.jobId, 'api-job');
  assert.equal(logger.source, 'ApiTool');
  assert.equal(logger.eventTopic, 'Jobs/api-job/events');
  const corr = `corr-${Date.now()}`;
  assert.equal(logger.log('fatal', 'Phase', 'alias fatal', { correlationId: corr }), true);
  assert.equal(logger.warning(null, 'default category', { correlationId: corr, context: { path: '/opt', n: 2 } }), true);
  assert.equal(logger.event({ phase: 'scan', files: 3, corr }), true);
  assert.equal(await logger.flush(10000), 0);
  const logs = await agent.waitCount((e) => e.topic === 'KeeperLogger' && e.payload.MetaData.CorrelationId === corr, 2);
  assert.equal(logs[0].payload.MetaData.LogLevel, 4);
  assert.equal(logs[0].payload.MetaData.Category, 'Phase');
  assert.equal(logs[1].payload.MetaData.LogLevel, 2);
  assert.equal(logs[1].payload.MetaData.Category, 'Main');
  assert.equal(logs[1].payload.MetaData.Context, '{"path":"/opt","n":2}');
  const ev = await agent.waitFor((e) => e.topic === 'Jobs/api-job/events' && e.payload.corr === corr);
  assert.deepEqual(ev.payload, { phase: 'scan', files: 3, corr });
  const s = logger.stats();
  assert.deepEqual(
    { accepted: s.accepted, delivered: s.delivered, dropped: s.dropped, denied: s.denied, pending: s.pending },
    { accepted: 3, delivered: 3, dropped: 0, denied: 0, pending: 0 }
  );
  assert.equal(s.clientId, logger.clientId);
  assert.equal(s.broker, `${agent.ready.broker_host}:${agent.ready.broker_port}`);
  assert.equal(await logger.shutdown(5000), 0);
  assert.equal(logger.isShutDown, true);
  assert.equal(await logger.shutdown(5000), 0, 'shutdown is idempotent');
  assert.throws(() => logger.info('C', 'late'), (e) => e instanceof KepmlogError && e.code === 'shut_down');
});

/** The rejection of a flush/shutdown after one denied event: code, message and outcome. */
function deniedOnce(e) {
  assert.ok(e instanceof KepmlogError, `${e}`);
  assert.equal(e.code, 'denied');
  assert.match(e.message, /^kepmlog: the broker denied 1 publish.*allowedPublications/);
  assert.deepEqual(
    { undelivered: e.undelivered, denied: e.denied, deniedTopics: e.deniedTopics, undeliverable: e.undeliverable },
    { undelivered: 0, denied: 1, deniedTopics: ['Jobs/not-allowed/events'], undeliverable: 0 }
  );
  return true;
}

test('a denied publish rejects flush with code denied', async () => {
  const logger = newLogger({ eventTopic: 'Jobs/not-allowed/events', stderrDiagnostics: false });
  assert.equal(logger.event({ x: 1 }), true);
  await assert.rejects(
    logger.flush(10000),
    (e) => e instanceof KepmlogError && e.code === 'denied' && /allowedPublications/.test(e.message)
  );
  assert.equal(logger.event({ x: 2 }), true);
  await assert.rejects(logger.flush(10000), deniedOnce);
  assert.equal(logger.stats().denied, 2);
  assert.equal(await logger.flush(1000), 0, 'a denial is reported once');
  assert.equal(await logger.shutdown(5000), 0, 'already reported by the flush');
});

test('shutdown after a denied publish rejects (and shutdownSync throws) like flush', async () => {
  const logger = newLogger({ eventTopic: 'Jobs/not-allowed/events', stderrDiagnostics: false });
  assert.equal(logger.info('Deny', 'allowed'), true);
  assert.equal(logger.event({ x: 1 }), true);
  await assert.rejects(logger.shutdown(10000), deniedOnce);
  assert.equal(logger.isShutDown, true, 'shut down all the same');
  assert.equal(await logger.shutdown(1000), 0, 'idempotent, nothing new to report');
  assert.throws(() => logger.info('C', 'late'), { code: 'shut_down' });

  const sync = newLogger({ eventTopic: 'Jobs/not-allowed/events', stderrDiagnostics: false });
  assert.equal(sync.event({ x: 1 }), true);
  assert.throws(() => sync.shutdownSync(10000), deniedOnce);
  assert.equal(sync.isShutDown, true);
});

test('a record over the broker\'s maximum packet size is undeliverable, from flush and shutdown', async () => {
  const small = await DevAgent.start(['--allow', 'KeeperLogger', '--max-packet-size', '2000']);
  try {
    const logger = new Logger({ ...small.brokerOptions(), jobId: 'api-job', source: 'ApiTool', stderrDiagnostics: false });
    assert.equal(logger.info('Size', 'before'), true);
    assert.equal(logger.info('Size', 'x'.repeat(5000)), true);
    await assert.rejects(logger.flush(15000), (e) => {
      assert.ok(e instanceof KepmlogError, `${e}`);
      assert.equal(e.code, 'undeliverable');
      assert.match(e.message, /given up/);
      assert.deepEqual([e.undelivered, e.denied, e.deniedTopics, e.undeliverable], [0, 0, [], 1]);
      return true;
    });
    assert.equal(logger.flushSync(5000), 0, 'reported once');
    assert.equal(logger.info('Size', 'y'.repeat(5000)), true);
    assert.throws(() => logger.flushSync(15000), { code: 'undeliverable', undeliverable: 1 });
    assert.equal(logger.info('Size', 'z'.repeat(5000)), true);
    await assert.rejects(logger.shutdown(15000), { code: 'undeliverable', undeliverable: 1, denied: 0 });
    const got = await small.waitFor((e) => e.event === 'message' && e.topic === 'KeeperLogger');
    assert.equal(got.payload.MetaData.Message, 'before');
  } finally {
    await small.stop();
  }
});

test('broker strings are parsed by the core', async () => {
  assert.deepEqual({ ...native.parseBroker('[::1]:8675') }, { host: '::1', port: 8675 });
  assert.deepEqual({ ...native.parseBroker(' localhost:1 ') }, { host: 'localhost', port: 1 });
  assert.throws(() => native.parseBroker('host'), { code: 'invalid_option', message: /HOST:PORT/ });
  const { broker_host: host, broker_port: port } = agent.ready;
  // Brackets are for IPv6 hosts; any host may have them.
  const logger = new Logger({ broker: `[${host}]:${port}`, caBundle: agent.ready.ca, jobId: 'api-job', source: 'ApiTool' });
  assert.equal(logger.info('Broker', 'bracketed'), true);
  assert.equal(await logger.flush(10000), 0);
  assert.equal(logger.stats().broker, `${host}:${port}`);
  await logger.shutdown(5000);
  // An IPv6 loopback broker is accepted (nothing is logged, nothing needs to listen).
  const v6 = new Logger({ broker: '[::1]:8675', jobId: 'api-job', stderrDiagnostics: false });
  assert.equal(v6.shutdownSync(0), 0);
});

test('the token of a script is the core\'s', () => {
  assert.equal(native.scriptToken('/opt/jobs/bin/scan/secret_scan.js'), 'secret-scan');
  assert.equal(native.scriptToken('C:/jobs/Scan Tool.mjs'), 'Scan-Tool');
  for (const none of [undefined, '', '-', '-e', '-p', '[eval]', '[stdin]']) {
    assert.equal(native.scriptToken(none), 'node', String(none));
  }
  // This test file is the main script (node --test runs each file in its own process).
  assert.equal(path.basename(process.argv[1]), 'api.test.js');
  const logger = newLogger();
  assert.equal(logger.clientId, `api-job_api-test_${process.pid}`);
  assert.equal(logger.shutdownSync(0), 0);
  // Where process.argv[1] is not the tool's script (a worker thread), scriptPath names it.
  const named = newLogger({ scriptPath: '/opt/jobs/bin/scan/secret_scan.js' });
  assert.equal(named.clientId, `api-job_secret-scan_${process.pid}`);
  assert.equal(named.shutdownSync(0), 0);
  assert.throws(() => newLogger({ scriptPath: 7 }), /options\.scriptPath must be a string/);
});

test('defaults and error codes come from the core', () => {
  const ms = native.defaultCloseTimeoutMs();
  assert.ok(typeof ms === 'number' && ms > 0, `${ms}`);
  assert.equal(Logger.exitFlushTimeoutMs, ms);
  const kinds = native.errorKinds();
  for (const code of ['missing_job_id', 'invalid_option', 'empty_message', 'shut_down', 'denied', 'undeliverable', 'internal']) {
    assert.ok(kinds.includes(code), code);
  }
});

test('a full queue drops (returns false) and counts', async () => {
  const logger = newLogger({ queueCapacity: 1 });
  let dropped = 0;
  for (let i = 0; i < 2000; i++) if (!logger.info('Burst', `record ${i}`)) dropped++;
  assert.ok(dropped > 0, 'some records were dropped');
  assert.equal(logger.stats().dropped, dropped);
  assert.equal(await logger.flush(15000), 0);
  await logger.shutdown(5000);
});

test('flush with the broker down resolves at its deadline with the undelivered count', async () => {
  const logger = newLogger({ stderrDiagnostics: false });
  assert.equal(logger.info('Setup', 'before the outage'), true);
  assert.equal(await logger.flush(10000), 0);
  await agent.command('broker stop');
  try {
    for (let i = 0; i < 5; i++) logger.info('Outage', `queued ${i}`);
    const t0 = Date.now();
    const undelivered = await logger.flush(1500);
    const elapsed = Date.now() - t0;
    assert.equal(undelivered, 5);
    assert.ok(elapsed < 1500 + 5000, `flush returned within its deadline + 5 s (${elapsed} ms)`);
    // The JS thread stayed free while the flush waited on the thread pool.
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const pending = logger.flush(500);
    assert.equal(await pending, 5);
    clearInterval(timer);
    assert.ok(ticks > 0, 'timers ran while flush waited');
  } finally {
    await agent.command('broker start');
  }
  assert.equal(await logger.flush(30000), 0, 'delivered after the broker came back');
  assert.equal(logger.stats().delivered, 6);
  await logger.shutdown(5000);
});
