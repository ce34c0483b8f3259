'use strict';
// Node benchmark peers, run by scripts/bench.sh (bench/run.py) with NODE_PATH pointing at a
// scratch install of `kepmlog` (npm install ./bindings/node) and mqtt@5:
//
//   node peer.js kepmlog   logger.info('Bench', message) per record, then await flush()
//   node peer.js mqttjs    mqtt.js 5 over TLS, MQTT v5, UniqueMessageIdProvider (the default
//                          provider reuses ids past 65,535 in flight), publish(JSON envelope
//                          with a fresh randomUUID, { qos: 1 }) per record, yielding to the
//                          event loop every 1,000 publishes; counts the publish callbacks
//
// Each logs/publishes N records once connected (kepmlog: after one warm-up record and flush)
// and prints one JSON result line (see bench/src/lib.rs): every call timed alone
// (performance.now()), CPU from process.cpuUsage(), peak RSS (VmHWM),
// the window from the first call to the last acknowledgement. Settings from
// KEPMLOG_BENCH_{HOST,PORT,CA,N,MESSAGE}.

const fs = require('node:fs');
const { randomUUID } = require('node:crypto');
const { performance } = require('node:perf_hooks');

const DEFAULT_MESSAGE =
  'Scanned /var/lib/app/config/settings.json: 0 issues, 12 keys checked, policy strict, ' +
  'duration 3 ms, status OK ....';

function settings() {
  return {
    host: process.env.KEPMLOG_BENCH_HOST || '127.0.0.1',
    port: Number(process.env.KEPMLOG_BENCH_PORT),
    ca: process.env.KEPMLOG_BENCH_CA,
    n: Number((process.env.KEPMLOG_BENCH_N || '100000').replace(/_/g, '')),
    message: process.env.KEPMLOG_BENCH_MESSAGE || DEFAULT_MESSAGE,
  };
}

function cpuUs(since) {
  const u = process.cpuUsage(since);
  return u.user + u.system;
}

// VmHWM: process.resourceUsage().maxRSS (ru_maxrss) would include the driver's, which Linux
// carries over fork + exec.
function peakRssKb() {
  try {
    const m = /^VmHWM:\s+(\d+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function report(peer, n, acked, secs, cpu, lat, error, extra = {}) {
  const sorted = Float64Array.from(lat).sort();
  const pct = (p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] : 0);
  const out = {
    peer,
    n,
    acked,
    secs,
    cpu_us: cpu,
    maxrss_kb: peakRssKb(),
    p50_ns: Math.round(pct(0.5) * 1e6),
    p99_ns: Math.round(pct(0.99) * 1e6),
    p999_ns: Math.round(pct(0.999) * 1e6),
    ...extra,
  };
  if (error) out.error = error;
  console.log(JSON.stringify(out));
}

async function runKepmlog() {
  const { Logger } = require('kepmlog');
  const { host, port, ca, n, message } = settings();
  // The whole burst fits in the queue; blocking is only a safety net (as in bench-kepmlog).
  const logger = new Logger({
    source: 'BenchTool',
    jobId: 'bench-job',
    token: 'node',
    broker: { host, port },
    caBundle: ca,
    queueCapacity: Math.max(n, 65536),
    overflow: 'block',
    blockTimeoutMs: 60000,
    args: ['bench'],
  });
  logger.info('Bench', 'warm-up');
  if ((await logger.flush(30000)) !== 0) throw new Error('warm-up flush: not acknowledged (is the broker up?)');
  const before = logger.stats().delivered;
  const lat = new Float64Array(n);
  let refused = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const a = performance.now();
    const ok = logger.info('Bench', message);
    lat[i] = performance.now() - a;
    if (ok === false) refused++;
  }
  const undelivered = await logger.flush(300000);
  const secs = (performance.now() - t0) / 1e3;
  const cpu = cpuUs(c0);
  const s = logger.stats();
  await logger.shutdown(5000);
  report('kepmlog-node', n, s.delivered - before, secs, cpu, lat,
    undelivered ? `flush: ${undelivered} undelivered` : null, { refused, dropped: s.dropped });
}

async function runMqttJs() {
  const mqtt = require('mqtt');
  const { host, port, ca, n, message } = settings();
  const client = mqtt.connect({
    protocol: 'mqtts',
    host,
    port,
    ca: fs.readFileSync(ca),
    protocolVersion: 5,
    clientId: `bench-job_mqttjs_${process.pid}`,
    reconnectPeriod: 0,
    messageIdProvider: new mqtt.UniqueMessageIdProvider(),
  });
  await new Promise((resolve, reject) => {
    client.once('connect', resolve);
    client.once('error', reject);
  });
  let acked = 0;
  let failed = 0;
  let wake = null;
  const onAck = (err) => {
    if (err) failed++;
    else acked++;
    if (wake && acked + failed >= n) wake();
  };
  const lat = new Float64Array(n);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const a = performance.now();
    const payload = JSON.stringify({
      Id: randomUUID(),
      Version: 1,
      RespondToTopic: null,
      MetaData: {
        MessageType: 4,
        LogLevel: 1,
        Source: 'BenchTool',
        Category: 'Bench',
        Message: message,
        CorrelationId: '',
        Context: '',
      },
    });
    client.publish('KeeperLogger', payload, { qos: 1 }, onAck);
    lat[i] = performance.now() - a;
    if ((i + 1) % 1000 === 0) await new Promise(setImmediate);
  }
  let error = null;
  if (acked + failed < n) {
    await new Promise((resolve) => {
      const timer = setTimeout(() => {
        error = `${n - acked - failed} not acknowledged within 300 s`;
        resolve();
      }, 300000);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
  const secs = (performance.now() - t0) / 1e3;
  const cpu = cpuUs(c0);
  await new Promise((resolve) => client.end(false, {}, resolve));
  report('mqttjs', n, acked, secs, cpu, lat, error, { refused: failed });
}

const runs = { kepmlog: runKepmlog, mqttjs: runMqttJs };
const run = runs[process.argv[2]];
if (!run) {
  console.error('usage: node peer.js kepmlog|mqttjs');
  process.exit(2);
}
run().then(
  () => process.exit(0),
  (e) => {
    console.log(JSON.stringify({ peer: process.argv[2], error: String(e && e.stack ? e.message : e) }));
    process.exit(1);
  }
);
