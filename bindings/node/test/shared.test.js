'use strict';
// Loggers of one process with the same client id ({jobId}_{token}_{pid}) and broker share ONE
// broker connection; each keeps its own Source, queue, stats, flush and shutdown.

const test = require('node:test');
const assert = require('node:assert/strict');
const winston = require('winston');
const { Logger, KepmlogError } = require('kepmlog');
const { KeeperLoggerTransport } = require('kepmlog/winston');
const { DevAgent } = require('./helpers');

const EACH = 300;
const LONG_MS = 30000;

let agent;
test.before(async () => {
  agent = await DevAgent.start(['--allow', 'KeeperLogger']);
});
test.after(async () => {
  await agent.stop();
});

/** Each test its own job id, so its own client id and its own connection count. */
function options(jobId, source) {
  return { ...agent.brokerOptions(), jobId, token: 'NodeShared', source, stderrDiagnostics: false };
}

/** Messages per MetaData.Source among the KeeperLogger messages, once `sources` have `n` each. */
async function bySource(sources, n) {
  const mine = (e) => e.event === 'message' && e.topic === 'KeeperLogger' && sources.includes(e.payload.MetaData.Source);
  await agent.waitCount(mine, sources.length * n, LONG_MS);
  const got = Object.fromEntries(sources.map((s) => [s, []]));
  for (const e of agent.events.filter(mine)) got[e.payload.MetaData.Source].push(e.payload.MetaData.Message);
  return got;
}

/**
 * How many times the broker saw `clientId` connect, after it saw it `atLeast` times and a
 * moment more (the connection lines come from the broker's log and may trail the messages).
 */
async function connectionsOf(clientId, atLeast = 1) {
  const mine = (e) => e.event === 'client' && e.client_id === clientId;
  await agent.waitCount(mine, atLeast, LONG_MS);
  await new Promise((resolve) => setTimeout(resolve, 500));
  return agent.events.filter(mine).length;
}

function clientsSeen() {
  return agent.events.filter((e) => e.event === 'client').map((e) => e.client_id);
}

function range(n, f) {
  return Array.from({ length: n }, (_, k) => f(k));
}

for (const n of [2, 8]) {
  test(`${n} loggers of one process share one connection`, async () => {
    const jobId = `shared-${n}-node`;
    const sources = range(n, (i) => `Tool${i}-of-${n}`);
    const loggers = sources.map((s) => new Logger(options(jobId, s)));
    const clientId = loggers[0].clientId;
    assert.equal(clientId, `${jobId}_NodeShared_${process.pid}`);
    for (const l of loggers) assert.equal(l.clientId, clientId);
    for (let k = 0; k < EACH; k++) {
      loggers.forEach((l, i) => assert.equal(l.info('Shared', `${i}-${k}`), true));
    }
    assert.deepEqual(await Promise.all(loggers.map((l) => l.flush(LONG_MS))), range(n, () => 0));
    loggers.forEach((l, i) => {
      const s = l.stats();
      assert.deepEqual(
        [s.accepted, s.delivered, s.dropped, s.pending, s.reconnects, s.connected, s.clientId],
        [EACH, EACH, 0, 0, 0, true, clientId],
        `logger ${i}: ${JSON.stringify(s)}`
      );
    });
    const got = await bySource(sources, EACH);
    sources.forEach((s, i) => assert.deepEqual(got[s], range(EACH, (k) => `${i}-${k}`), `logger ${i}: its records, in order`));
    assert.equal(await connectionsOf(clientId), 1, `clients: ${clientsSeen()}`);
    assert.deepEqual(await Promise.all(loggers.map((l) => l.shutdown(LONG_MS))), range(n, () => 0));
  });
}

test('shutting one logger down while another keeps logging', async (t) => {
  const jobId = 'shared-leave-node';
  const a = new Logger(options(jobId, 'LeaveA'));
  const b = new Logger(options(jobId, 'LeaveB'));
  const clientId = b.clientId;
  assert.equal(a.clientId, clientId);
  for (let k = 0; k < 50; k++) assert.ok(a.info('Leave', `a ${k}`));
  let k = 0;
  for (; k < EACH / 4; k++) assert.ok(b.info('Leave', `b ${k}`));
  // A's shutdown runs on the thread pool; B keeps logging until it has resolved.
  let done = false;
  const shutdownA = a.shutdown(LONG_MS).then((undelivered) => {
    done = true;
    return undelivered;
  });
  const before = k;
  while (!done) {
    assert.ok(b.info('Leave', `b ${k++}`));
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.equal(await shutdownA, 0);
  const during = k - before;
  assert.throws(() => a.info('Leave', 'a after'), (e) => e instanceof KepmlogError && e.code === 'shut_down');
  const total = Math.max(k, EACH) + 200;
  for (; k < total; k++) assert.ok(b.info('Leave', `b ${k}`));
  assert.equal(await b.flush(LONG_MS), 0);
  t.diagnostic(`B logged ${during} records while A shut down, ${total} in all`);

  const sa = a.stats();
  const sb = b.stats();
  assert.deepEqual([sa.accepted, sa.delivered, sa.failed, sa.pending], [50, 50, 0, 0], JSON.stringify(sa));
  assert.deepEqual([sb.accepted, sb.delivered, sb.pending, sb.reconnects, sb.connected], [total, total, 0, 0, true], JSON.stringify(sb));
  const got = await bySource(['LeaveA'], 50);
  assert.deepEqual(got.LeaveA, range(50, (i) => `a ${i}`));
  assert.deepEqual((await bySource(['LeaveB'], total)).LeaveB, range(total, (i) => `b ${i}`));

  // A logger created after A's shutdown joins the same connection.
  const c = new Logger(options(jobId, 'LeaveC'));
  assert.ok(c.info('Leave', 'c 0'));
  assert.equal(await c.flush(LONG_MS), 0);
  assert.equal(c.stats().reconnects, 0);
  assert.equal(await connectionsOf(clientId), 1, `clients: ${clientsSeen()}`);

  // With every logger shut down the connection closes; the next logger opens a new one.
  assert.equal(await b.shutdown(LONG_MS), 0);
  assert.equal(await c.shutdown(LONG_MS), 0);
  const d = new Logger(options(jobId, 'LeaveD'));
  assert.ok(d.info('Leave', 'd 0'));
  assert.equal(await d.flush(LONG_MS), 0);
  assert.deepEqual((await bySource(['LeaveD'], 1)).LeaveD, ['d 0']);
  assert.equal(await connectionsOf(clientId, 2), 2, `clients: ${clientsSeen()}`);
  await d.shutdown(LONG_MS);
});

test('a winston transport and a Logger in one process share one connection', async () => {
  const jobId = 'shared-winston-node';
  const transport = new KeeperLoggerTransport({ loggerOptions: options(jobId, 'A') });
  const log = winston.createLogger({ level: 'info', transports: [transport] });
  const direct = new Logger(options(jobId, 'B'));
  assert.equal(transport.logger.clientId, direct.clientId);
  for (let k = 0; k < EACH; k++) {
    log.info(`a ${k}`);
    assert.ok(direct.info('Direct', `b ${k}`));
  }
  const got = await bySource(['A', 'B'], EACH);
  assert.equal(await transport.flush(LONG_MS), 0);
  assert.equal(await direct.flush(LONG_MS), 0);
  for (const l of [transport.logger, direct]) {
    const s = l.stats();
    assert.deepEqual([s.accepted, s.delivered, s.dropped, s.reconnects], [EACH, EACH, 0, 0], JSON.stringify(s));
  }
  assert.deepEqual(got.A, range(EACH, (k) => `a ${k}`));
  assert.deepEqual(got.B, range(EACH, (k) => `b ${k}`));
  assert.equal(await connectionsOf(direct.clientId), 1, `clients: ${clientsSeen()}`);
  await transport.logger.shutdown(LONG_MS);
  await direct.shutdown(LONG_MS);
  log.close();
});
