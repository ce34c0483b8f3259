'use strict';
// Per-call cost of `logger.info` next to mqtt.js 5 publishing the same KeeperLogger JSON with
// QoS 1 over TLS to the same devagent broker, in one run. Not part of the test suite.
//
//   npm install ./bindings/node mqtt@5   (in a scratch dir; release build)
//   cp -r bindings/node/bench bindings/node/test <dir>/ && cd <dir> && node bench/bench.js
//
// Calls are timed in batches of BATCH (hrtime costs tens of ns); the figures are the median
// and p99 of the per-call time of each batch. Between rounds the benchmark waits until the
// broker acknowledged everything, so queues never overflow and mqtt.js never has more than
// ROUND messages in flight (it stalls past 65,535 with its default message-id provider).

const { randomUUID } = require('node:crypto');
const fs = require('node:fs');
const { Logger } = require('kepmlog');
const { DevAgent } = require('../test/helpers');

let mqtt;
try {
  mqtt = require('mqtt');
} catch {
  console.error('bench: needs mqtt.js 5 next to kepmlog: npm install mqtt@5');
  process.exit(2);
}

const ROUNDS = Number(process.env.ROUNDS || 10);
const ROUND = Number(process.env.ROUND || 10000);
const BATCH = 10;
const WARMUP_ROUNDS = 2;

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];
}

function summary(name, samples, elapsedMs, count) {
  samples.sort((a, b) => a - b);
  return {
    name,
    medianNs: percentile(samples, 50),
    p99Ns: percentile(samples, 99),
    deliveredPerSec: Math.round((count / elapsedMs) * 1000),
  };
}

/** Times `call(i)` in batches; `settle()` waits for delivery between rounds (not timed per call). */
async function measure(call, settle) {
  const samples = [];
  let timedCount = 0;
  let timedMs = 0;
  for (let r = 0; r < WARMUP_ROUNDS + ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < ROUND; i += BATCH) {
      const b0 = process.hrtime.bigint();
      for (let j = 0; j < BATCH; j++) call(i + j);
      const b1 = process.hrtime.bigint();
      if (r >= WARMUP_ROUNDS) samples.push(Number(b1 - b0) / BATCH);
    }
    await settle();
    if (r >= WARMUP_ROUNDS) {
      timedCount += ROUND;
      timedMs += Number(process.hrtime.bigint() - t0) / 1e6;
    }
  }
  return { samples, timedMs, timedCount };
}

async function benchKepmlog(agent) {
  const logger = new Logger({ ...agent.brokerOptions(), jobId: 'bench-job', source: 'Bench' });
  const m = await measure(
    (i) => logger.info('Bench', `Scanned file ${i}: 0 issues detected.`),
    async () => {
      const left = await logger.flush(60000);
      if (left !== 0) throw new Error(`kepmlog: ${left} undelivered`);
    }
  );
  const s = logger.stats();
  await logger.shutdown(10000);
  if (s.dropped !== 0) throw new Error(`kepmlog dropped ${s.dropped}`);
  return summary('kepmlog logger.info', m.samples, m.timedMs, m.timedCount);
}

async function benchMqttJs(agent) {
  const client = mqtt.connect({
    protocol: 'mqtts',
    host: agent.ready.broker_host,
    port: agent.ready.broker_port,
    ca: fs.readFileSync(agent.ready.ca),
    // The agent's certificate names "Localhost", not 127.0.0.1: check the chain, not the name.
    checkServerIdentity: () => undefined,
    protocolVersion: 5,
    clientId: `bench-job_mqttjs_${process.pid}`,
    reconnectPeriod: 0,
  });
  await new Promise((resolve, reject) => {
    client.once('connect', resolve);
    client.once('error', reject);
  });
  let acked = 0;
  let failed = 0;
  let target = 0;
  let wake = null;
  const onAck = (err) => {
    if (err) failed++;
    acked++;
    if (wake && acked >= target) wake();
  };
  // What a Node user would write: the same envelope kepmlog sends, built and stringified per call.
  const publish = (i) => {
    const payload = JSON.stringify({
      Id: randomUUID(),
      Version: 1,
      RespondToTopic: null,
      MetaData: {
        MessageType: 4,
        LogLevel: 1,
        Source: 'Bench',
        Category: 'Bench',
        Message: `Scanned file ${i}: 0 issues detected.`,
        CorrelationId: '',
        Context: '',
      },
    });
    target++;
    client.publish('KeeperLogger', payload, { qos: 1 }, onAck);
  };
  const m = await measure(publish, () =>
    acked >= target
      ? Promise.resolve()
      : new Promise((resolve) => {
          wake = () => {
            wake = null;
            resolve();
          };
        })
  );
  await new Promise((resolve) => client.end(false, {}, resolve));
  if (failed) throw new Error(`mqtt.js: ${failed} publishes failed`);
  return summary('mqtt.js 5 publish QoS 1', m.samples, m.timedMs, m.timedCount);
}

async function main() {
  const agent = await DevAgent.start();
  try {
    const k = await benchKepmlog(agent);
    const q = await benchMqttJs(agent);
    const rows = [k, q].map((r) => ({
      '': r.name,
      'median ns/call': r.medianNs.toFixed(0),
      'p99 ns/call': r.p99Ns.toFixed(0),
      'delivered msg/s': r.deliveredPerSec,
    }));
    console.log(`node ${process.version}, ${ROUNDS} rounds x ${ROUND} records (after ${WARMUP_ROUNDS} warm-up rounds), TLS loopback`);
    console.table(rows);
    console.log(
      `ratio mqtt.js / kepmlog: median ${(q.medianNs / k.medianNs).toFixed(2)}x, p99 ${(q.p99Ns / k.p99Ns).toFixed(2)}x`
    );
  } finally {
    await agent.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
