'use strict';
// Per-call cost of the logging-library adapters, against a devagent, in one run:
//   kepmlog Logger.info direct; winston + KeeperLoggerTransport; pino + kepmlog/pino;
//   pino with its own destination (pino.destination('/dev/null'), sync) as the baseline.
// Not part of the test suite.
//
//   npm install ./bindings/node winston@3 pino@10   (in a scratch dir; release build)
//   cp -r bindings/node/bench bindings/node/test <dir>/ && cd <dir> && node bench/adapters.js
//
// Wall: calls timed in batches of BATCH (hrtime costs tens of ns); median and p99 of the
// per-call time of each batch, and the mean. CPU: process.cpuUsage() (user + system, every
// thread, so kepmlog's worker publishing too) from the start of a round until the broker
// acknowledged all of it, per call; "JS thread CPU" is the calling thread's alone (Linux:
// /proc/self/task/<pid>/stat, in clock ticks, so ~1% at these counts), what the adapter costs
// the application's event loop. Between rounds everything is delivered, so queues never overflow.

const fs = require('node:fs');
const { execFileSync } = require('node:child_process');
const { Logger } = require('kepmlog');
const { DevAgent } = require('../test/helpers');

let winston;
let pino;
try {
  winston = require('winston');
  pino = require('pino');
} catch {
  console.error('bench: needs winston 3 and pino next to kepmlog: npm install winston@3 pino@10');
  process.exit(2);
}
const { KeeperLoggerTransport } = require('kepmlog/winston');
const kepmlogPino = require('kepmlog/pino');

const ROUNDS = Number(process.env.ROUNDS || 10);
const ROUND = Number(process.env.ROUND || 10000);
const BATCH = 10;
const WARMUP_ROUNDS = 2;

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}

function cpuMicros() {
  const u = process.cpuUsage();
  return u.user + u.system;
}

const THREAD_STAT = `/proc/self/task/${process.pid}/stat`;
const TICK_US = (() => {
  try {
    return 1e6 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  } catch {
    return undefined;
  }
})();

/** The main (JS) thread's user + system CPU in µs, or NaN where /proc is not there. */
function threadMicros() {
  if (TICK_US === undefined) return NaN;
  try {
    const stat = fs.readFileSync(THREAD_STAT, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_US;
  } catch {
    return NaN;
  }
}

/** Times `call(i)` in batches; `settle()` waits for delivery (counted in CPU, not in wall). */
async function measure(name, call, settle) {
  const samples = [];
  let wallNs = 0;
  let cpuUs = 0;
  let threadUs = 0;
  let count = 0;
  for (let r = 0; r < WARMUP_ROUNDS + ROUNDS; r++) {
    const c0 = cpuMicros();
    const t0 = threadMicros();
    let roundNs = 0;
    for (let i = 0; i < ROUND; i += BATCH) {
      const b0 = process.hrtime.bigint();
      for (let j = 0; j < BATCH; j++) call(r * ROUND + i + j);
      const ns = Number(process.hrtime.bigint() - b0);
      roundNs += ns;
      if (r >= WARMUP_ROUNDS) samples.push(ns / BATCH);
    }
    await settle((r + 1) * ROUND);
    if (r >= WARMUP_ROUNDS) {
      wallNs += roundNs;
      cpuUs += cpuMicros() - c0;
      threadUs += threadMicros() - t0;
      count += ROUND;
    }
  }
  samples.sort((a, b) => a - b);
  return {
    name,
    medianUs: percentile(samples, 50) / 1000,
    p99Us: percentile(samples, 99) / 1000,
    meanUs: wallNs / count / 1000,
    cpuUs: cpuUs / count,
    threadUs: threadUs / count,
  };
}

function newLogger(agent) {
  return new Logger({ ...agent.brokerOptions(), jobId: 'bench-job', source: 'Bench' });
}

async function delivered(logger, total) {
  // winston hands entries to its transports through streams: wait until all were taken.
  while (logger.stats().accepted < total) await new Promise((r) => setImmediate(r));
  const left = await logger.flush(60000);
  if (left !== 0) throw new Error(`${left} undelivered`);
}

async function checked(logger, result) {
  const s = logger.stats();
  await logger.shutdown(10000);
  if (s.dropped !== 0 || s.accepted !== s.delivered) throw new Error(`${result.name}: ${JSON.stringify(s)}`);
  return result;
}

async function benchDirect(agent) {
  const logger = newLogger(agent);
  const r = await measure(
    'kepmlog Logger.info',
    (i) => logger.info('Bench', `Scanned file ${i}: 0 issues detected.`),
    (n) => delivered(logger, n)
  );
  return checked(logger, r);
}

async function benchWinston(agent) {
  const logger = newLogger(agent);
  const log = winston.createLogger({ level: 'info', transports: [new KeeperLoggerTransport({ logger, category: 'Bench' })] });
  const r = await measure(
    'winston + kepmlog/winston',
    (i) => log.info(`Scanned file ${i}: 0 issues detected.`),
    (n) => delivered(logger, n)
  );
  log.close();
  return checked(logger, r);
}

async function benchPino(agent) {
  const logger = newLogger(agent);
  const log = pino(kepmlogPino({ logger, category: 'Bench' }));
  const r = await measure(
    'pino + kepmlog/pino',
    (i) => log.info(`Scanned file ${i}: 0 issues detected.`),
    (n) => delivered(logger, n)
  );
  return checked(logger, r);
}

async function benchPinoDevNull() {
  const dest = pino.destination({ dest: '/dev/null', sync: true });
  const log = pino(dest);
  const r = await measure(
    'pino + pino.destination(/dev/null, sync)',
    (i) => log.info({ category: 'Bench' }, `Scanned file ${i}: 0 issues detected.`),
    async () => {}
  );
  dest.flushSync();
  dest.end();
  return r;
}

async function main() {
  // No capture subscriber: the harness would parse one JSON line per record on this thread,
  // which would be counted as the adapters' CPU.
  const agent = await DevAgent.start(['--no-capture']);
  try {
    const results = [await benchDirect(agent), await benchWinston(agent), await benchPino(agent), await benchPinoDevNull()];
    console.log(
      `node ${process.version}, winston ${require('winston/package.json').version}, pino ${require('pino/package.json').version}; ` +
        `${ROUNDS} rounds x ${ROUND} records (after ${WARMUP_ROUNDS} warm-up rounds), TLS loopback`
    );
    console.table(
      results.map((r) => ({
        '': r.name,
        'median µs/call': r.medianUs.toFixed(2),
        'p99 µs/call': r.p99Us.toFixed(2),
        'mean µs/call': r.meanUs.toFixed(2),
        'CPU µs/call': r.cpuUs.toFixed(2),
        'JS thread CPU µs/call': Number.isNaN(r.threadUs) ? '-' : r.threadUs.toFixed(2),
      }))
    );
  } finally {
    await agent.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
