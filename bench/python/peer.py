#!/usr/bin/env python3
"""Python benchmark peers, run by scripts/bench.sh (bench/run.py):

    peer.py direct    kepmlog.Logger.info("Bench", message) per record
    peer.py logging   logging.getLogger(...).info(message) through kepmlog.KeeperLoggerHandler
    peer.py paho      paho-mqtt 2, the vendor guide's recipe: MQTT v5, TLS, loop_start(),
                      publish(json.dumps(envelope with a fresh uuid4), qos=1) per record;
                      never more than 60,000 unacknowledged (paho's message ids wrap at
                      65,535 and it would overwrite its own queue): waits on on_publish

Each logs/publishes N records once connected (kepmlog: after one warm-up record and flush)
and prints one JSON result line (see bench/src/lib.rs): every call timed alone
(time.perf_counter_ns), CPU from resource.getrusage(RUSAGE_SELF), peak RSS (VmHWM), the window
from the first call to the last acknowledgement. Settings from KEPMLOG_BENCH_{HOST,PORT,CA,
N,MESSAGE}.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import ssl
import sys
import threading
import time
import uuid

DEFAULT_MESSAGE = (
    "Scanned /var/lib/app/config/settings.json: 0 issues, 12 keys checked, policy strict, "
    "duration 3 ms, status OK ...."
)
MAX_UNACKED = 60_000
clock = time.perf_counter_ns


def settings() -> tuple[str, int, str, int, str]:
    return (
        os.environ.get("KEPMLOG_BENCH_HOST", "127.0.0.1"),
        int(os.environ["KEPMLOG_BENCH_PORT"]),
        os.environ["KEPMLOG_BENCH_CA"],
        int(os.environ.get("KEPMLOG_BENCH_N", "100000").replace("_", "")),
        os.environ.get("KEPMLOG_BENCH_MESSAGE") or DEFAULT_MESSAGE,
    )


def cpu_us() -> int:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return int((ru.ru_utime + ru.ru_stime) * 1e6)


def peak_rss_kb() -> int:
    """VmHWM: ru_maxrss would include the driver's, which Linux carries over fork + exec."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pct(sorted_ns: list[int], p: float) -> int:
    if not sorted_ns:
        return 0
    return sorted_ns[min(len(sorted_ns) - 1, int(len(sorted_ns) * p))]


def report(peer: str, n: int, acked: int, secs: float, cpu: int, lat: list[int], error=None, **extra):
    lat.sort()
    out = {
        "peer": peer, "n": n, "acked": acked, "secs": secs, "cpu_us": cpu,
        "maxrss_kb": peak_rss_kb(),
        "p50_ns": pct(lat, 0.5), "p99_ns": pct(lat, 0.99), "p999_ns": pct(lat, 0.999),
    }
    if error:
        out["error"] = error
    out.update(extra)
    print(json.dumps(out), flush=True)


def kepmlog_logger(host: str, port: int, ca: str, n: int, token: str):
    import kepmlog

    # The whole burst fits in the queue; blocking is only a safety net (as in bench-kepmlog).
    log = kepmlog.Logger(
        "BenchTool", job_id="bench-job", token=token, broker=(host, port), ca_bundle=ca,
        queue_capacity=max(n, 65536), overflow="block", block_timeout=60.0, args=["bench"],
    )
    log.info("Bench", "warm-up")
    if log.flush(30) != 0:
        raise RuntimeError("warm-up flush: not acknowledged (is the broker up?)")
    return log


def run_direct() -> None:
    host, port, ca, n, message = settings()
    log = kepmlog_logger(host, port, ca, n, "pydirect")
    before = log.stats()["delivered"]
    lat = [0] * n
    info = log.info
    refused = 0
    c0 = cpu_us()
    t0 = clock()
    for i in range(n):
        a = clock()
        ok = info("Bench", message)
        lat[i] = clock() - a
        if not ok:
            refused += 1
    undelivered = log.flush(300)
    secs = (clock() - t0) / 1e9
    cpu = cpu_us() - c0
    stats = log.stats()
    log.shutdown(5)
    report("kepmlog-python", n, stats["delivered"] - before, secs, cpu, lat,
           f"flush: {undelivered} undelivered" if undelivered else None,
           refused=refused, dropped=stats["dropped"])


def run_logging() -> None:
    import kepmlog

    host, port, ca, n, message = settings()
    log = kepmlog_logger(host, port, ca, n, "pylogging")
    handler = kepmlog.KeeperLoggerHandler(log, category="Bench")
    pylog = logging.getLogger("bench")
    pylog.propagate = False
    pylog.setLevel(logging.INFO)
    pylog.addHandler(handler)
    before = log.stats()["delivered"]
    lat = [0] * n
    info = pylog.info
    c0 = cpu_us()
    t0 = clock()
    for i in range(n):
        a = clock()
        info(message)
        lat[i] = clock() - a
    undelivered = log.flush(300)
    secs = (clock() - t0) / 1e9
    cpu = cpu_us() - c0
    stats = log.stats()
    pylog.removeHandler(handler)
    log.shutdown(5)
    report("kepmlog-python-logging", n, stats["delivered"] - before, secs, cpu, lat,
           f"flush: {undelivered} undelivered" if undelivered else None,
           dropped=stats["dropped"])


def run_paho() -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    host, port, ca, n, message = settings()
    done = threading.Condition()
    acked = 0
    refused = 0

    def on_publish(client, userdata, mid, reason_code, properties):  # noqa: ARG001
        nonlocal acked, refused
        with done:
            if reason_code.is_failure:
                refused += 1
            else:
                acked += 1
            done.notify_all()

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"bench-job_paho_{os.getpid()}", protocol=mqtt.MQTTv5
    )
    client.tls_set(ca_certs=ca, cert_reqs=ssl.CERT_REQUIRED)
    # The agent's certificate names "Localhost", not 127.0.0.1: check the chain, not the name.
    client.tls_insecure_set(True)
    client.on_publish = on_publish
    client.connect(host, port, keepalive=60)
    client.loop_start()
    deadline = time.monotonic() + 20
    while not client.is_connected():
        if time.monotonic() > deadline:
            report("paho", n, 0, 0.0, 0, [], "no CONNACK within 20 s")
            sys.exit(1)
        time.sleep(0.005)

    lat = [0] * n
    publish = client.publish
    dumps = json.dumps
    uuid4 = uuid.uuid4
    waits = 0
    error = None
    c0 = cpu_us()
    t0 = clock()
    for i in range(n):
        a = clock()
        if i - acked - refused >= MAX_UNACKED:  # racy read, then the real check under the lock
            waits += 1
            with done:
                done.wait_for(lambda: i - acked - refused < MAX_UNACKED, timeout=60)
        payload = dumps({
            "Id": str(uuid4()), "Version": 1, "RespondToTopic": None,
            "MetaData": {"MessageType": 4, "LogLevel": 1, "Source": "BenchTool",
                         "Category": "Bench", "Message": message, "CorrelationId": "",
                         "Context": ""},
        }, separators=(",", ":"))
        publish("KeeperLogger", payload, qos=1)
        lat[i] = clock() - a
    with done:
        if not done.wait_for(lambda: acked + refused >= n, timeout=300):
            error = f"{n - acked - refused} not acknowledged within 300 s"
    secs = (clock() - t0) / 1e9
    cpu = cpu_us() - c0
    client.disconnect()
    client.loop_stop()
    report("paho", n, acked, secs, cpu, lat, error, refused=refused, waits=waits)


def main() -> int:
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    runs = {"direct": run_direct, "logging": run_logging, "paho": run_paho}
    if mode not in runs:
        print(f"usage: {sys.argv[0]} direct|logging|paho", file=sys.stderr)
        return 2
    try:
        runs[mode]()
    except Exception as e:  # one JSON line for the driver, whatever failed
        print(json.dumps({"peer": mode, "error": f"{type(e).__name__}: {e}"}), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
