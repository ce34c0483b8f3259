'use strict';
// Whole-process behaviour in child processes: the event loop is never held, the exit hook
// delivers everything accepted, garbage-collected loggers deliver, ESM imports work.

const test = require('node:test');
const assert = require('node:assert/strict');
const { DevAgent, runNodeFixture } = require('./helpers');

let agent;
test.before(async () => {
  agent = await DevAgent.start();
});
test.after(async () => {
  await agent.stop();
});

/** Runs a fixture; resolves with its exit code, stdout and stderr, or rejects past `limitMs`. */

function runFixture(file, tag, opts = {}) {
  return runNodeFixture(agent, 'node-exit-job', file, tag, opts);
}

function tagged(tag) {
  return (e) => e.event === 'message' && e.topic === 'KeeperLogger' && e.payload.MetaData.CorrelationId === tag;
}

test('a script that logs 10,000 records and returns exits by itself and delivers all', async () => {
  const tag = `exit-${process.pid}-${Date.now()}`;
  const r = await runFixture('log-and-return.js', tag, { env: { RECORDS: '10000' } });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.accepted, 10000);
  const got = await agent.waitCount(tagged(tag), 10000, 30000);
  assert.equal(got.length, 10000);
  const seen = new Set(got.map((e) => e.payload.MetaData.Message));
  assert.equal(seen.size, 10000, 'no duplicates, no gaps');
  assert.ok(seen.has('record 0') && seen.has('record 9999'));
  assert.doesNotMatch(r.stderr, /undelivered/);
});

test('a garbage-collected logger still delivers what it accepted', async () => {
  const tag = `gc-${process.pid}-${Date.now()}`;
  const r = await runFixture('gc-logger.js', tag, { nodeArgs: ['--expose-gc'] });
  assert.equal(r.code, 0, r.stderr);
  const got = await agent.waitCount(tagged(tag), 100, 30000);
  assert.equal(got.length, 100);
});

test('ESM: import { Logger } from "kepmlog" and "kepmlog/winston"', async () => {
  const tag = `esm-${process.pid}-${Date.now()}`;
  const r = await runFixture('esm.mjs', tag);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { undelivered: 0 });
  const m = await agent.waitFor(tagged(tag));
  assert.equal(m.payload.MetaData.Source, 'EsmTool');
});

test('with no broker at all, the exit flush is bounded and reports what it lost', async () => {
  const tag = `down-${process.pid}-${Date.now()}`;
  const t0 = Date.now();
  const r = await runFixture('log-and-return.js', tag, {
    // Port 1 on loopback: nothing listens, the worker keeps retrying.
    env: { RECORDS: '3', KEPMLOG_TEST_BROKER: '127.0.0.1:1' },
    limitMs: 30000,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /kepmlog: 3 record\(s\) undelivered at exit/);
  assert.ok(Date.now() - t0 < 5000 + 10000, 'bounded by the 5 s exit flush (+ generous slack)');
});

test('a denial at exit is reported by the core on stderr, never thrown', async () => {
  const tag = `deny-${process.pid}-${Date.now()}`;
  const r = await runFixture('deny-at-exit.js', tag);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /kepmlog: the broker denied a publish to topic "Jobs\/node-exit-job\/events".*allowedPublications/);
  assert.doesNotMatch(r.stderr, /KepmlogError|Uncaught|at .*index\.js/);
  assert.doesNotMatch(r.stderr, /undelivered at exit/);
  const m = await agent.waitFor(tagged(tag));
  assert.equal(m.payload.MetaData.Message, 'allowed at exit');
});
