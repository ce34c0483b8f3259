'use strict';
// Every way a job tool's process ends, in child processes logging to a real devagent: SIGTERM,
// SIGINT and SIGHUP (kepmlog delivers, then the process dies of the signal), a SIGTERM
// listener of the program's own, KEPMLOG_SIGNALS=0, process.exit(3), an uncaught exception, an
// unhandled rejection, and a script that just returns. Each test counts the arrivals by message
// and checks how the child ended.
//
// The children print a "ready" line once their log calls have returned (records accepted, not
// necessarily delivered); the tests signal only after reading it.

const test = require('node:test');
const assert = require('node:assert/strict');
const { DevAgent, startNodeFixture } = require('./helpers');

const POSIX = process.platform !== 'win32';
const JOB = 'node-exit-paths-job';

let agent;
test.before(async () => {
  agent = await DevAgent.start();
});
test.after(async () => {
  await agent.stop();
});

let runs = 0;
function newTag(name) {
  return `${name}-${process.pid}-${++runs}`;
}

function start(tag, env, opts = {}) {
  return startNodeFixture(agent, JOB, 'exit-paths.js', tag, { ...opts, env });
}

function tagged(tag) {
  return (e) => e.event === 'message' && e.topic === 'KeeperLogger' && e.payload.MetaData.CorrelationId === tag;
}

/** Waits until all `n` records `record 0..n-1` of `tag` arrived, and checks nothing else of it did. */
async function assertAllArrived(tag, n) {
  const got = await agent.waitCount(tagged(tag), n, 30000);
  const seen = new Set(got.map((e) => e.payload.MetaData.Message));
  for (let i = 0; i < n; i++) assert.ok(seen.has(`record ${i}`), `record ${i} of ${n} did not arrive`);
  return got;
}

for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  test(`${sig}: what was accepted is delivered, then the process dies of ${sig}`, { skip: !POSIX }, async () => {
    const tag = newTag(sig);
    const f = start(tag, { MODE: 'wait', RECORDS: '10000' });
    const ready = JSON.parse(await f.line());
    assert.equal(ready.accepted, 10000);
    assert.deepEqual(ready.listeners, { SIGTERM: 1, SIGINT: 1, SIGHUP: 1 });
    f.child.kill(sig);
    const r = await f.done;
    assert.equal(r.signal, sig, `code ${r.code}; stderr: ${r.stderr}`);
    assert.equal(r.code, null);
    await assertAllArrived(tag, 10000);
    assert.doesNotMatch(r.stderr, /kepmlog/);
  });
}

test('SIGTERM with the broker unreachable: bounded by exitFlushTimeoutMs, records written to stderr', { skip: !POSIX }, async () => {
  const tag = newTag('down');
  // Port 1 on loopback: nothing listens, the worker keeps retrying.
  const f = start(tag, { MODE: 'wait', RECORDS: '3', KEPMLOG_TEST_BROKER: '127.0.0.1:1', EXIT_FLUSH_MS: '300' });
  await f.line();
  f.child.kill('SIGTERM');
  const r = await f.done;
  assert.equal(r.signal, 'SIGTERM', r.stderr);
  assert.match(r.stderr, /kepmlog: 3 record\(s\) undelivered at SIGTERM/);
  for (let i = 0; i < 3; i++) assert.match(r.stderr, new RegExp(`\\[Exit\\] record ${i} \\(CorrelationId=${tag}\\)`));
});

test("a SIGTERM listener of the program's own: kepmlog flushes, the program's listener decides", { skip: !POSIX }, async () => {
  const tag = newTag('own');
  const f = start(tag, { MODE: 'own-listener', RECORDS: '1000' });
  const ready = JSON.parse(await f.line());
  // Added after the Logger: kepmlog's listener was there first.
  assert.equal(ready.listeners.SIGTERM, 2);
  f.child.kill('SIGTERM');
  const r = await f.done;
  assert.equal(r.code, 0, `signal ${r.signal}; stderr: ${r.stderr}`);
  assert.equal(r.signal, null);
  const after = JSON.parse(await f.line());
  // kepmlog's flush ran before the program's listener: nothing was pending any more.
  assert.deepEqual(after, { isShutDown: false, pendingBefore: 0, logged: true, left: 0 });
  const got = await agent.waitCount(tagged(tag), 1001, 30000);
  assert.ok(got.some((e) => e.payload.MetaData.Message === 'after the signal'));
  await assertAllArrived(tag, 1000);
});

test("a program's own SIGTERM listener with the broker unreachable: kepmlog's flush leaves the logger running", { skip: !POSIX }, async () => {
  const tag = newTag('own-down');
  const f = start(tag, { MODE: 'own-listener', RECORDS: '2', KEPMLOG_TEST_BROKER: '127.0.0.1:1', EXIT_FLUSH_MS: '300' });
  await f.line();
  f.child.kill('SIGTERM');
  const r = await f.done;
  assert.equal(r.code, 0, `signal ${r.signal}; stderr: ${r.stderr}`);
  const after = JSON.parse(await f.line());
  // Not shut down by kepmlog's flush at the signal, so the program could still log.
  assert.deepEqual(after, { isShutDown: false, pendingBefore: 2, logged: true, left: 3 });
  assert.match(r.stderr, /kepmlog: 2 record\(s\) undelivered at SIGTERM/);
  // The exit hook (process.exit(0)) then gave them up to stderr, the last one included.
  assert.match(r.stderr, /kepmlog: 3 record\(s\) undelivered at exit/);
  assert.match(r.stderr, /\[Exit\] after the signal/);
});

test('KEPMLOG_SIGNALS=0: kepmlog listens to no signal, SIGTERM ends the process at once', { skip: !POSIX }, async () => {
  const tag = newTag('off');
  // A 60 s exit flush with no broker: a listener of kepmlog's would keep the child alive past
  // the guard below and then report the records; without one, nothing of kepmlog's runs.
  const f = start(
    tag,
    { MODE: 'wait', RECORDS: '3', KEPMLOG_SIGNALS: '0', KEPMLOG_TEST_BROKER: '127.0.0.1:1', EXIT_FLUSH_MS: '60000' },
    { limitMs: 30000 }
  );
  const ready = JSON.parse(await f.line());
  assert.deepEqual(ready.listeners, { SIGTERM: 0, SIGINT: 0, SIGHUP: 0 });
  assert.equal(ready.handleSignals, false);
  f.child.kill('SIGTERM');
  const r = await f.done;
  assert.equal(r.signal, 'SIGTERM', r.stderr);
  assert.doesNotMatch(r.stderr, /kepmlog|record/);
});

test('process.exit(3) without a flush: all delivered, exit code 3', async () => {
  const tag = newTag('exit3');
  const r = await start(tag, { MODE: 'exit3', RECORDS: '1000' }).done;
  assert.equal(r.code, 3, r.stderr);
  await assertAllArrived(tag, 1000);
});

test('an uncaught exception: all delivered, exit code 1', async () => {
  const tag = newTag('throw');
  const r = await start(tag, { MODE: 'throw', RECORDS: '1000' }).done;
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /Error: tool failed/);
  await assertAllArrived(tag, 1000);
});

test('an unhandled promise rejection: all delivered, exit code 1', async () => {
  const tag = newTag('reject');
  const r = await start(tag, { MODE: 'reject', RECORDS: '1000' }).done;
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /Error: tool rejected/);
  await assertAllArrived(tag, 1000);
});

test('with the signal listeners in place, a script that logs and returns still exits by itself', async () => {
  const tag = newTag('return');
  const f = start(tag, { MODE: 'return', RECORDS: '1000' }, { limitMs: 60000 });
  const ready = JSON.parse(await f.line());
  if (POSIX) assert.deepEqual(ready.listeners, { SIGTERM: 1, SIGINT: 1, SIGHUP: 1 });
  const r = await f.done; // rejects if the child had to be killed
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.signal, null);
  await assertAllArrived(tag, 1000);
});

test('Logger.handleSignals: never at require(), at the first Logger, off, on again', { skip: !POSIX }, async () => {
  const r = await startNodeFixture(agent, JOB, 'handle-signals.js', newTag('api')).done;
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), {
    env: true,
    required: [0, 0, 0],
    logger: [1, 1, 1],
    off: [false, 0, 0, 0],
    offThenLogger: [0, 0, 0],
    notBoolean: 'TypeError',
    on: [true, 1, 1, 1], // SIGHUP: the program's listener only
    removedThenOn: [1, 1, 1],
  });
});

test('KEPMLOG_SIGNALS=0 sets the default of Logger.handleSignals; setting it wins', { skip: !POSIX }, async () => {
  const r = await startNodeFixture(agent, JOB, 'handle-signals.js', newTag('api-env'), { env: { KEPMLOG_SIGNALS: '0' } }).done;
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.env, false);
  assert.deepEqual(out.logger, [0, 0, 0]);
  assert.deepEqual(out.on, [true, 1, 1, 1]);
});
