'use strict';
// tests/vectors/records.json through the Node API: the broker must receive exactly the
// MetaData the vectors (and so the Rust core) expect, in order, field order included.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { Logger, KepmlogError } = require('kepmlog');
const { DevAgent, repoRoot } = require('./helpers');

const vectors = JSON.parse(fs.readFileSync(path.join(repoRoot(), 'tests', 'vectors', 'records.json'), 'utf8'));
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let agent;
test.before(async () => {
  agent = await DevAgent.start();
});
test.after(async () => {
  await agent.stop();
});

/** Logs one case through one of the public entry points, chosen by the case index. */
function logCase(logger, input, i) {
  const opts = { correlationId: input.correlation_id, context: input.context };
  const method = { Debug: 'debug', Info: 'info', Warning: 'warn', Error: 'error', Critical: 'critical', Verbose: 'verbose' }[
    input.level_name
  ];
  switch (i % 3) {
    case 0:
      return logger[method](input.category, input.message, opts);
    case 1:
      return logger.log(input.level_name, input.category, input.message, opts);
    default:
      return logger.log(input.level, input.category, input.message, opts);
  }
}

test('every vector gives the expected MetaData on the wire', async () => {
  const logger = new Logger({
    ...agent.brokerOptions(),
    jobId: 'vector-job',
    source: vectors.logger.source,
    defaultCategory: vectors.logger.default_category,
  });
  const expected = [];
  vectors.cases.forEach((c, i) => {
    if (c.error) {
      assert.throws(
        () => logCase(logger, c.input, i),
        (e) => e instanceof KepmlogError && e.code === c.error && /kepmlog: /.test(e.message),
        c.name
      );
    } else {
      assert.equal(logCase(logger, c.input, i), true, c.name);
      expected.push(c);
    }
  });
  assert.equal(await logger.flush(20000), 0);
  const got = await agent.waitCount((e) => e.event === 'message' && e.topic === 'KeeperLogger', expected.length);
  assert.equal(got.length, expected.length);
  got.forEach((m, i) => {
    const c = expected[i];
    assert.ok(m.payload, `${c.name}: payload is JSON`);
    assert.deepEqual(Object.keys(m.payload), ['Id', 'Version', 'RespondToTopic', 'MetaData'], c.name);
    assert.match(m.payload.Id, UUID_V4, c.name);
    assert.equal(m.payload.Version, 1);
    assert.equal(m.payload.RespondToTopic, null);
    assert.deepEqual(m.payload.MetaData, c.expect, c.name);
    assert.deepEqual(Object.keys(m.payload.MetaData), Object.keys(c.expect), `${c.name}: field order`);
  });
  const s = logger.stats();
  assert.equal(s.accepted, expected.length);
  assert.equal(s.delivered, expected.length);
  assert.equal(s.dropped, 0);
  assert.equal(s.connected, true);
  assert.equal(await logger.shutdown(5000), 0);
});
