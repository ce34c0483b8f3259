'use strict';
// stderr as the last resort, in child processes: fallback 'stderr' without a job id, a
// constructor that throws leaves nothing behind, records undelivered at shutdown.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { DevAgent } = require('./helpers');

let agent;
test.before(async () => {
  agent = await DevAgent.start();
});
test.after(async () => {
  await agent.stop();
});

// 2026-12-02T01:23:45.678Z and one space
const TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /;

function run(env) {
  return new Promise((resolve, reject) => {
    const base = { ...process.env };
    delete base.KEEPER_JOB_ID;
    delete base.KEPMLOG_FALLBACK;
    const child = spawn(process.execPath, [path.join(__dirname, 'fixtures', 'stderr-tool.js')], {
      env: {
        ...base,
        KEPMLOG_TEST_BROKER: `${agent.ready.broker_host}:${agent.ready.broker_port}`,
        KEPMLOG_TEST_CA: agent.ready.ca,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`stderr-tool did not exit within 60 s; stderr: ${stderr}`));
    }, 60000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The record lines of stderr, without their timestamps. */
function records(stderr) {
  return stderr
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('kepmlog:'))
    .map((l) => {
      assert.match(l, TIME);
      return l.replace(TIME, '');
    });
}

const TWENTY = Array.from({ length: 20 }, (_, i) => `Info     DownTool [Undelivered] u ${i}`);

test('fallback stderr without a job id: one warning, each record once, exit 0', async () => {
  const r = await run({ MODE: 'fallback', KEPMLOG_FALLBACK: 'stderr' });
  assert.equal(r.code, 0, r.stderr);
  const warnings = r.stderr.split('\n').filter((l) => l.startsWith('kepmlog:'));
  assert.equal(warnings.length, 1, r.stderr);
  assert.match(warnings[0], /KEEPER_JOB_ID is not set.*fallback=stderr/);
  const want = Array.from({ length: 10 }, (_, i) => `Warning  SecretScanner [Finding] Possible secret in file${i}.js`);
  want.push('EVENT    Other {"phase":"done"}');
  assert.deepEqual(records(r.stderr), want);
  const out = JSON.parse(r.stdout);
  assert.equal(out.writesToStderr, true);
  assert.equal(out.printed, 10);
  assert.equal(out.accepted, 0);
});

test('a constructor that throws leaves nothing to fail at exit', async () => {
  const r = await run({ MODE: 'fail' });
  assert.equal(r.code, 1);
  assert.equal(r.stderr.match(/missing_job_id/g).length, 1, r.stderr);
  assert.doesNotMatch(r.stderr, /^kepmlog: \d+ record/m);
});

test('a bad fallback value names the accepted ones', async () => {
  const r = await run({ MODE: 'fallback', KEPMLOG_FALLBACK: 'console' });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /KEPMLOG_FALLBACK="console" is not one of "error", "stderr"/);
});

test('broker up: shutdown delivers the 20 records and writes none of them', async () => {
  const r = await run({ MODE: 'up', TIMEOUT_MS: '20000' });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { left: 0, printed: 0 });
  assert.equal(r.stderr, '');
});

test('broker down: the 20 undelivered records are on stderr in order, unless turned off', async () => {
  await agent.command('broker stop');
  try {
    const r = await run({ MODE: 'down', TIMEOUT_MS: '300' });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { left: 20, printed: 20 });
    assert.deepEqual(records(r.stderr), TWENTY);

    const atExit = await run({ MODE: 'exit', TIMEOUT_MS: '300' });
    assert.equal(atExit.code, 0, atExit.stderr);
    assert.deepEqual(records(atExit.stderr), TWENTY, 'written by the exit hook');
    assert.match(atExit.stderr, /^kepmlog: 20 record\(s\) undelivered at exit$/m);

    const off = await run({ MODE: 'off', TIMEOUT_MS: '300' });
    assert.equal(off.code, 0, off.stderr);
    assert.deepEqual(JSON.parse(off.stdout), { left: 20, printed: 0 });
    assert.equal(off.stderr, '');
  } finally {
    await agent.command('broker start');
  }
});
