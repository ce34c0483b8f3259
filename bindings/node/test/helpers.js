'use strict';
// Test harness: starts `kepm-devagent serve` (HTTPS Plugin Settings + TLS Mosquitto), reads
// its JSON lines, and stops it. Each test file starts its own devagent.

const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');
const { spawn } = require('node:child_process');

/** The repository root: KEPMLOG_REPO, else two levels above the installed package's real path. */
function repoRoot() {
  if (process.env.KEPMLOG_REPO) return path.resolve(process.env.KEPMLOG_REPO);
  const pkg = fs.realpathSync(path.dirname(require.resolve('kepmlog/package.json')));
  return path.resolve(pkg, '..', '..');
}

function devagentPath() {
  return process.env.KEPM_DEVAGENT || path.join(repoRoot(), 'target', 'debug', 'kepm-devagent');
}

class DevAgent {
  constructor(child) {
    this.child = child;
    this.events = [];
    this.waiters = [];
    this.stderr = '';
    this.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    child.stderr.on('data', (d) => {
      this.stderr += d;
      if (this.stderr.length > 100000) this.stderr = this.stderr.slice(-50000);
    });
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      let ev;
      try {
        ev = JSON.parse(line);
      } catch {
        return;
      }
      this.events.push(ev);
      this.waiters = this.waiters.filter((w) => !w.check());
    });
  }

  /** Starts a devagent; `args` are extra `serve` arguments (e.g. ['--allow', 'KeeperLogger']). */
  static async start(args = []) {
    // --deny-visible: these tests cover kepmlog's handling of a denial it can see (PUBACK
    // 0x87); the agent's usual silent drop is the devagent's own tests' concern.
    const child = spawn(devagentPath(), ['serve', '--deny-visible', ...args], {
      env: { ...process.env, TMPDIR: '/tmp' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const agent = new DevAgent(child);
    const spawnError = new Promise((_, reject) => child.on('error', reject));
    agent.ready = await Promise.race([agent.waitFor((e) => e.event === 'ready', 30000), spawnError]);
    return agent;
  }

  /** Resolves with the first event (from the start) that satisfies `pred`. */
  waitFor(pred, timeoutMs = 20000) {
    return this.waitCount(pred, 1, timeoutMs).then((list) => list[0]);
  }

  /** Resolves with the events matching `pred` once there are at least `n`. */
  waitCount(pred, n, timeoutMs = 20000) {
    return new Promise((resolve, reject) => {
      const w = {
        check: () => {
          const found = this.events.filter(pred);
          if (found.length >= n) {
            clearTimeout(w.timer);
            resolve(found);
            return true;
          }
          return false;
        },
      };
      if (w.check()) return;
      w.timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        const have = this.events.filter(pred).length;
        reject(new Error(`devagent: ${have} of ${n} expected events after ${timeoutMs} ms; stderr:\n${this.stderr.slice(-2000)}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  messages(topic) {
    return this.events.filter((e) => e.event === 'message' && (topic === undefined || e.topic === topic));
  }

  /** Sends a stdin command and waits for its reply. */
  async command(cmd) {
    const before = this.events.length;
    this.child.stdin.write(cmd + '\n');
    const reply = await this.waitFor(
      (e) => (e.event === 'ok' || e.event === 'error') && this.events.indexOf(e) >= before,
      30000
    );
    if (reply.event !== 'ok') throw new Error(`devagent: ${cmd}: ${JSON.stringify(reply)}`);
    return reply;
  }

  /** Options for a Logger connecting straight to this devagent's broker. */
  brokerOptions() {
    return {
      broker: { host: this.ready.broker_host, port: this.ready.broker_port },
      caBundle: this.ready.ca,
    };
  }

  async stop() {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.stdin.end('quit\n');
      const t = setTimeout(() => this.child.kill('SIGKILL'), 15000);
      await this.exited;
      clearTimeout(t);
    }
  }
}

/**
 * Starts test/fixtures/FILE as a job task of JOB_ID against `agent`'s broker (KEPMLOG_TEST_BROKER,
 * KEPMLOG_TEST_CA, RUN_TAG for its records). Returns `{ child, line(), done }`: `line()` resolves
 * with the child's next stdout line (e.g. its "ready" line, printed once its log calls have
 * returned); `done` resolves with how it ended, and rejects when it does not exit within
 * `limitMs` (a guard against a hang, not a measure).
 */
function startNodeFixture(agent, jobId, file, tag, { nodeArgs = [], env = {}, limitMs = 60000 } = {}) {
  const child = spawn(process.execPath, [...nodeArgs, path.join(__dirname, 'fixtures', file)], {
    env: {
      ...process.env,
      KEEPER_JOB_ID: jobId,
      KEPMLOG_TEST_BROKER: `${agent.ready.broker_host}:${agent.ready.broker_port}`,
      KEPMLOG_TEST_CA: agent.ready.ca,
      RUN_TAG: tag,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const lines = [];
  const lineWaiters = [];
  let closed = false;
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  readline.createInterface({ input: child.stdout }).on('line', (l) => {
    const w = lineWaiters.shift();
    if (w) w.resolve(l);
    else lines.push(l);
  });
  const done = new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${file} did not exit on its own within ${limitMs} ms; stderr: ${stderr}`));
    }, limitMs);
    // 'close': the child has exited and its output is all read.
    child.on('close', (code, signal) => {
      closed = true;
      clearTimeout(timer);
      for (const w of lineWaiters.splice(0)) w.reject(new Error(`${file} ended (${code ?? signal}) before the line; stderr: ${stderr}`));
      resolve({ code, signal, stdout, stderr, pid: child.pid });
    });
  });
  const line = () =>
    lines.length > 0
      ? Promise.resolve(lines.shift())
      : new Promise((resolve, reject) => {
          if (closed) {
            reject(new Error(`${file} has ended; stderr: ${stderr}`));
            return;
          }
          lineWaiters.push({ resolve, reject });
        });
  // The caller may not wait for `done` before a line fails: keep it from being unhandled.
  done.catch(() => {});
  return { child, line, done };
}

/**
 * Runs test/fixtures/FILE as a job task (see startNodeFixture) and resolves with how it ended;
 * rejects when it does not exit on its own within `limitMs` (the point of these tests).
 */
function runNodeFixture(agent, jobId, file, tag, opts = {}) {
  return startNodeFixture(agent, jobId, file, tag, opts).done;
}

module.exports = { DevAgent, repoRoot, devagentPath, runNodeFixture, startNodeFixture };
