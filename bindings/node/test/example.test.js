'use strict';
// The example job tool (examples/node, job examples/jobs/secret-scanner-node.json), run the
// way the agent runs it: the installed launcher in the agent root, the task's arguments with
// {KeeperApiBaseUrl} substituted, KEEPER_JOB_ID set, discovery through Plugin Settings.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { DevAgent, repoRoot, devagentPath } = require('./helpers');

const root = repoRoot();
const job = JSON.parse(fs.readFileSync(path.join(root, 'examples', 'jobs', 'secret-scanner-node.json'), 'utf8'));
const task = job.tasks[0];
const agentRoot = process.env.KEPM_AGENT_ROOT || path.join(root, 'target', 'agent-root');
const launcher = path.join(agentRoot, 'Jobs', 'bin', task.command, task.command);

function run(cmd, args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

test('the job JSON follows the agent rules', () => {
  assert.equal(job.id, 'secret-scanner-node');
  assert.doesNotMatch(job.id, /_/);
  assert.ok(job.mqttTopics.allowedPublications.includes('KeeperLogger'));
  assert.ok(job.mqttTopics.allowedPublications.includes(`Jobs/${job.id}/events`));
  // One command-line string, as in the agent's schema.
  assert.equal(typeof task.arguments, 'string');
  assert.equal(task.arguments.split(/[ \t]+/)[0], '--keeper-api-base={KeeperApiBaseUrl}');
});

test('the installed example tool delivers its records and events', async () => {
  assert.ok(fs.existsSync(launcher), `launcher ${launcher} is installed (scripts/test-node.sh does it)`);
  const agent = await DevAgent.start(job.mqttTopics.allowedPublications.flatMap((t) => ['--allow', t]));
  try {
    // The example's line has no quotes or backslashes: splitting on blanks is what the
    // agent's splitter does with it.
    assert.doesNotMatch(task.arguments, /["\\]/);
    const args = task.arguments
      .trim()
      .split(/[ \t]+/)
      .map((a) => a.replaceAll('{KeeperApiBaseUrl}', agent.ready.api_base));
    const r = await run(launcher, args, { KEEPER_JOB_ID: job.id, KEEPER_JOB_NAME: job.name });
    assert.equal(r.code, 0, r.out);
    // The tool has exited, so the broker has acknowledged everything; the capture subscriber
    // may still be receiving. The summary is the last record the example logs, and the
    // "done" event comes after it.
    const summary = (e) => e.event === 'message' && e.topic === 'KeeperLogger' && /^Scan complete:/.test(e.payload.MetaData.Message);
    await agent.waitFor(summary);
    await agent.waitFor((e) => e.event === 'message' && e.topic === `Jobs/${job.id}/events` && e.payload.status === 'done');
    const logs = agent.messages('KeeperLogger').map((e) => e.payload.MetaData);
    assert.ok(logs.length >= 2, `records arrived: ${JSON.stringify(logs)}`);
    assert.ok(logs.every((m) => m.Source === 'SecretScanner'));
    assert.equal(logs[0].Category, 'Startup');
    assert.match(logs.at(-1).Message, /^Scan complete: \d+ issue\(s\) detected in \d+ file\(s\)\.$/);
    assert.equal(logs.at(-1).Category, 'SecretsScan');
    const events = agent.messages(`Jobs/${job.id}/events`).map((e) => e.payload);
    assert.deepEqual(events[0], { phase: 'scan', status: 'started' });
    assert.equal(events.at(-1).status, 'done');
    // Client lines come from the broker's log, which may trail the messages.
    const mine = (e) => e.event === 'client' && /^secret-scanner-node_secret-scanner_\d+$/.test(e.client_id);
    await agent.waitFor(mine).catch(() => {});
    const clients = agent.events.filter((e) => e.event === 'client').map((e) => e.client_id);
    assert.ok(
      clients.some((id) => /^secret-scanner-node_secret-scanner_\d+$/.test(id)),
      `client id {jobId}_{token}_{pid}: ${clients}`
    );
  } finally {
    await agent.stop();
  }
});

const hasRun = spawnSync(devagentPath(), ['run', '--help'], { stdio: 'ignore' }).status === 0;

test('kepm-devagent run executes the job', { skip: !hasRun && 'this kepm-devagent has no `run` command' }, async () => {
  const r = await run(devagentPath(), ['run', path.join(root, 'examples', 'jobs', 'secret-scanner-node.json'), '--agent-root', agentRoot], {
    TMPDIR: '/tmp',
  });
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /Scan complete/);
});
