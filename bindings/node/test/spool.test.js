'use strict';
// The crash-safe spool through the Node API: `spoolDir` reaches the core, a run that could not
// deliver leaves its records for the next one, which sends them first (`stats().recovered`),
// and a spool directory other users can write is refused with the fix.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Logger } = require('kepmlog');
const { DevAgent } = require('./helpers');

let agent;
test.before(async () => {
  agent = await DevAgent.start(['--allow', 'KeeperLogger']);
});
test.after(async () => {
  await agent.stop();
});

function files(dir) {
  return fs.readdirSync(dir, { recursive: true }).filter((f) => fs.statSync(path.join(dir, f)).isFile());
}

test('the next run sends what a run without a broker left, first', async () => {
  const spoolDir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'kepmlog-spool-')), 'spool');
  const common = { jobId: 'spool-job', source: 'SpoolTool', spoolDir, stderrDiagnostics: false };
  // Nothing listens on port 1: the first run's records stay spooled.
  const first = new Logger({ ...common, broker: { host: '127.0.0.1', port: 1 }, undeliveredToStderr: false });
  for (let i = 0; i < 50; i++) first.info('Spool', `first ${i}`);
  assert.equal(await first.shutdown(300), 50);
  assert.ok(files(spoolDir).some((f) => f.endsWith('.seg')), 'the records are on disk');

  const second = new Logger({ ...common, ...agent.brokerOptions() });
  assert.equal(second.stats().recovered, 50);
  second.info('Spool', 'second');
  assert.equal(await second.shutdown(20000), 0);
  const s = second.stats();
  assert.deepEqual([s.accepted, s.delivered, s.spoolDropped], [51, 51, 0]);
  await agent.waitCount((e) => e.event === 'message' && e.topic === 'KeeperLogger', 52, 20000);
  const got = agent
    .messages('KeeperLogger')
    .map((m) => m.payload.MetaData)
    .filter((m) => m.Category !== 'kepmlog')
    .map((m) => m.Message);
  assert.deepEqual(got, [...Array.from({ length: 50 }, (_, i) => `first ${i}`), 'second']);
  assert.deepEqual(files(spoolDir), [], 'nothing left on disk');
});

test('a spool directory other users can write is refused', { skip: process.platform === 'win32' }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kepmlog-spool-'));
  fs.chmodSync(dir, 0o777);
  assert.throws(
    () => new Logger({ ...agent.brokerOptions(), jobId: 'spool-job', spoolDir: dir }),
    (e) => e.code === 'invalid_option' && /spool_dir/.test(e.message) && /chmod 700/.test(e.message)
  );
});
