#!/usr/bin/env python3
"""Per-call cost of logging through kepmlog, side by side with paho-mqtt 2.x.

Measures, call by call (time.perf_counter_ns around each call), against one
`kepm-devagent serve` broker (Mosquitto over TLS, MQTT v5):

  handler  logging.getLogger(...).info("record %d", i) through KeeperLoggerHandler
  direct   kepmlog.Logger.info("Bench", message)
  paho     paho-mqtt Client.publish("KeeperLogger", <same JSON, fresh Id>, qos=1), TLS, v5,
           loop_start() network thread: what a Python job author would otherwise write

and prints median and p99 in ns, the ratios to paho, and how many records each delivered.
A "stdlib" row logs the same call through a handler that only formats: the share of the
handler row that is the `logging` module's own (LogRecord, caller lookup, formatting); a
"null" row through `logging.NullHandler`, the floor of any handler (LogRecord and caller
lookup, no formatting, no handler lock), measured in blocks alternating with the handler
row's so that both see the same machine load. The last line is the handler's median over the
NullHandler's (target: at most 1.5x).
Not a test: run it by hand (needs `pip install paho-mqtt`):

    python bindings/python/bench/bench_handler.py [--count 20000]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import kepmlog

REPO = Path(__file__).resolve().parents[3]
JOB_ID = "py-bench"


def start_devagent() -> tuple[subprocess.Popen, dict]:
    path = os.environ.get("KEPM_DEVAGENT") or str(REPO / "target" / "debug" / "kepm-devagent")
    proc = subprocess.Popen(
        # No capture subscriber: its stream of received messages would be read by the drain
        # thread below, in this process, competing for the GIL with the timed calls.
        [path, "serve", "--deny-visible", "--allow", "KeeperLogger", "--no-capture"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        env=dict(os.environ, TMPDIR="/tmp"),
    )
    assert proc.stdout is not None
    ready = json.loads(proc.stdout.readline())
    # Drain the message stream so the devagent never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return proc, ready


def summarize(samples: list[int]) -> tuple[float, float]:
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def bench_handler_and_null(ready: dict, count: int, blocks: int = 20) -> dict:
    """The handler run and the same call through logging.NullHandler (the cost of `logging`
    itself), in alternating blocks so that both see the same machine load."""
    log = kepmlog.Logger("BenchTool", job_id=JOB_ID, api_base=ready["api_base"], diagnostics=False)
    handler = kepmlog.KeeperLoggerHandler(log, category="Bench")
    pylog = logging.getLogger("bench.handler")
    pylog.propagate = False
    pylog.setLevel(logging.INFO)
    pylog.addHandler(handler)
    nulllog = logging.getLogger("bench.null")
    nulllog.propagate = False
    nulllog.setLevel(logging.INFO)
    nulllog.addHandler(logging.NullHandler())
    log.info("Bench", "warm-up")
    log.flush(20)
    samples: dict[str, list[int]] = {"null": [], "handler": []}
    clock = time.perf_counter_ns
    per_block = max(1, count // blocks)
    for block in range(blocks):
        for name, lg in (("null", nulllog), ("handler", pylog)):
            out = samples[name]
            for i in range(block * per_block, (block + 1) * per_block):
                t0 = clock()
                lg.info("record %d of the handler run", i)
                out.append(clock() - t0)
    log.flush(60)
    delivered = log.stats()["delivered"] - 1
    pylog.removeHandler(handler)
    log.shutdown(5)
    return {"null": (samples["null"], 0), "handler": (samples["handler"], delivered)}


def bench_stdlib_baseline(ready: dict, count: int) -> tuple[list[int], int]:
    """The same logging call through a handler that only formats: what `logging` itself costs."""

    class FormatOnly(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            self.format(record)

    pylog = logging.getLogger("bench.baseline")
    pylog.propagate = False
    pylog.setLevel(logging.INFO)
    pylog.addHandler(FormatOnly())
    samples = []
    clock = time.perf_counter_ns
    for i in range(count):
        t0 = clock()
        pylog.info("record %d of the handler run", i)
        samples.append(clock() - t0)
    return samples, 0


def bench_direct(ready: dict, count: int) -> tuple[list[int], int]:
    log = kepmlog.Logger("BenchTool", job_id=JOB_ID, api_base=ready["api_base"], diagnostics=False)
    log.info("Bench", "warm-up")
    log.flush(20)
    samples = []
    clock = time.perf_counter_ns
    info = log.info
    for i in range(count):
        msg = "record %d of the direct run" % i
        t0 = clock()
        info("Bench", msg)
        samples.append(clock() - t0)
    log.flush(60)
    delivered = log.stats()["delivered"] - 1
    log.shutdown(5)
    return samples, delivered


def bench_paho(ready: dict, count: int) -> tuple[list[int], int]:
    import ssl

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    acked = 0
    lock = threading.Lock()

    def on_publish(client, userdata, mid, reason_code, properties):  # noqa: ARG001
        nonlocal acked
        with lock:
            acked += 1

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"{JOB_ID}_paho_{os.getpid()}", protocol=mqtt.MQTTv5
    )
    client.tls_set(ca_certs=ready["ca"], cert_reqs=ssl.CERT_REQUIRED)
    # The agent's certificate names "Localhost", not 127.0.0.1: check the chain, not the name.
    client.tls_insecure_set(True)
    client.on_publish = on_publish
    client.max_queued_messages_set(0)
    client.connect(ready["broker_host"], ready["broker_port"])
    client.loop_start()
    deadline = time.monotonic() + 10
    while not client.is_connected() and time.monotonic() < deadline:
        time.sleep(0.01)
    samples = []
    clock = time.perf_counter_ns
    publish = client.publish
    dumps = json.dumps
    for i in range(count):
        message = "record %d of the paho run" % i
        t0 = clock()
        payload = dumps({
            "Id": str(uuid.uuid4()), "Version": 1, "RespondToTopic": None,
            "MetaData": {"MessageType": 4, "LogLevel": 1, "Source": "BenchTool", "Category": "Bench",
                         "Message": message, "CorrelationId": "", "Context": ""},
        }, separators=(",", ":"))
        publish("KeeperLogger", payload, qos=1)
        samples.append(clock() - t0)
    deadline = time.monotonic() + 60
    while acked < count and time.monotonic() < deadline:
        time.sleep(0.05)
    client.loop_stop()
    client.disconnect()
    return samples, acked


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000, help="calls per run (default 20000)")
    opts = parser.parse_args()
    proc, ready = start_devagent()
    try:
        runs = {
            **bench_handler_and_null(ready, opts.count),
            "stdlib": bench_stdlib_baseline(ready, opts.count),
            "direct": bench_direct(ready, opts.count),
        }
        try:
            runs["paho"] = bench_paho(ready, opts.count)
        except ImportError:
            print("paho-mqtt not installed: pip install 'paho-mqtt>=2' for the comparison", file=sys.stderr)
    finally:
        assert proc.stdin is not None
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        proc.wait(timeout=15)
    print(f"per-call cost, {opts.count} calls each, TLS MQTT v5 QoS 1 to kepm-devagent "
          f"(Python {sys.version.split()[0]}, kepmlog {kepmlog.__version__})")
    paho_median = summarize(list(runs["paho"][0]))[0] if "paho" in runs else None
    print(f"{'run':<8} {'median ns':>10} {'p99 ns':>10} {'delivered':>10} {'median vs paho':>15}")
    for name, (samples, delivered) in runs.items():
        median, p99 = summarize(samples)
        ratio = f"{median / paho_median:.2f}x" if paho_median else "-"
        print(f"{name:<8} {median:>10.0f} {p99:>10.0f} {delivered:>10} {ratio:>15}")
    null_median = summarize(list(runs["null"][0]))[0]
    handler_median = summarize(list(runs["handler"][0]))[0]
    print(f"handler median / NullHandler median: {handler_median:.0f} / {null_median:.0f} ns "
          f"= {handler_median / null_median:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
