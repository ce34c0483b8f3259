#!/usr/bin/env python3
"""Per-call cost of the logging front ends a job tool may use, kepmlog behind each, side by side
with the same front end writing to /dev/null.

Against one `kepm-devagent serve` broker (Mosquitto over TLS, MQTT v5, QoS 1), one record per
call, message "record <i>":

  direct            kepmlog.Logger.info("Bench", message)
  logging+handler   logging.getLogger(...).info("record %d", i) through KeeperLoggerHandler
  structlog+kepmlog structlog.get_logger().info("record", i=i), processors merge_contextvars,
                    add_log_level, kepmlog.structlog.KeeperLoggerProcessor (Context '{"i":..}')
  structlog json    the same chain ending in JSONRenderer, PrintLogger(/dev/null)
  structlog default structlog's default processors (TimeStamper, ConsoleRenderer),
                    PrintLogger(/dev/null)
  loguru+kepmlog    logger.info("record {}", i) to kepmlog.loguru.KeeperLoggerSink, loguru's
                    default format (which loguru renders even though the sink ignores it)
  loguru+kepmlog {message}  the same with logger.add(..., format="{message}")
  loguru file       loguru's default format to a file sink on /dev/null

For each: wall µs per call (time.perf_counter around the calls only); CPU µs per call
(time.process_time, every thread of the process, so kepmlog's native worker publishing over TLS
is counted, over the calls plus the flush that waits for delivery); caller CPU µs per call
(time.thread_time of the calling thread, over the calls only: what the application thread
pays, and the figure a loaded machine disturbs least). Rows run in rounds
that alternate with each other, so that all see the same machine load; the figures are the
medians over the rounds. Not a test: run it by hand, with structlog and loguru installed:

    python bindings/python/bench/adapters.py [--count 20000] [--rounds 5]
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
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import kepmlog

REPO = Path(__file__).resolve().parents[3]
JOB_ID = "py-bench"

# A row: prepare() -> (call(i), finish() -> delivered or None, close()).
Row = Callable[[], Tuple[Callable[[int], Any], Callable[[], Optional[int]], Callable[[], None]]]


def start_devagent() -> Tuple["subprocess.Popen[str]", Dict[str, Any]]:
    path = os.environ.get("KEPM_DEVAGENT") or str(REPO / "target" / "debug" / "kepm-devagent")
    if not os.access(path, os.X_OK):
        sys.exit(f"kepm-devagent not found at {path}: run `cargo build -p kepm-devagent` or set KEPM_DEVAGENT")
    proc = subprocess.Popen(
        # No capture subscriber: its stream of received messages would be read in this
        # process, competing for the GIL with the timed calls.
        [path, "serve", "--deny-visible", "--allow", "KeeperLogger", "--no-capture"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        env=dict(os.environ, TMPDIR="/tmp"),
    )
    out = proc.stdout
    assert out is not None
    ready = json.loads(out.readline())
    # Drain the message stream so the devagent never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in out], daemon=True).start()
    return proc, ready


def new_logger(ready: Dict[str, Any]) -> kepmlog.Logger:
    log = kepmlog.Logger("BenchTool", job_id=JOB_ID, api_base=ready["api_base"], diagnostics=False)
    log.info("Bench", "warm-up")
    log.flush(20)
    return log


def delivered_since(log: kepmlog.Logger, before: int) -> Callable[[], Optional[int]]:
    def finish() -> Optional[int]:
        log.flush(60)
        return int(log.stats()["delivered"]) - before

    return finish


def rows(ready: Dict[str, Any]) -> Dict[str, Row]:
    import structlog
    from loguru import logger as loguru_logger

    import kepmlog.loguru
    import kepmlog.structlog

    devnull = open(os.devnull, "w")
    out: Dict[str, Row] = {}

    def direct() -> Any:
        log = new_logger(ready)
        info = log.info
        before = log.stats()["delivered"]
        return (lambda i: info("Bench", "record %d" % i)), delivered_since(log, before), log.shutdown

    def handler() -> Any:
        log = new_logger(ready)
        pylog = logging.getLogger("bench.adapters.handler")
        pylog.propagate = False
        pylog.setLevel(logging.INFO)
        h = kepmlog.KeeperLoggerHandler(log, category="Bench")
        pylog.addHandler(h)
        before = log.stats()["delivered"]

        def close() -> None:
            pylog.removeHandler(h)
            log.shutdown(5)

        return (lambda i: pylog.info("record %d", i)), delivered_since(log, before), close

    def structlog_logger(processors: List[Any], file: Any = None) -> Any:
        return structlog.wrap_logger(
            structlog.PrintLogger(file) if file is not None else None,
            processors=processors,
            wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        )

    def structlog_kepmlog() -> Any:
        log = new_logger(ready)
        sl = structlog_logger([
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            kepmlog.structlog.KeeperLoggerProcessor(log, category="Bench"),
        ], devnull)
        before = log.stats()["delivered"]
        return (lambda i: sl.info("record", i=i)), delivered_since(log, before), log.shutdown

    def structlog_json() -> Any:
        sl = structlog_logger([
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.JSONRenderer(),
        ], devnull)
        return (lambda i: sl.info("record", i=i)), (lambda: None), (lambda: None)

    def structlog_default() -> Any:
        # structlog's out-of-the-box chain (its _config default), as get_logger() uses it.
        processors = structlog.get_config()["processors"]
        sl = structlog_logger(list(processors), devnull)
        return (lambda i: sl.info("record", i=i)), (lambda: None), (lambda: None)

    def loguru_row(fmt: Optional[str]) -> Row:
        def prepare() -> Any:
            log = new_logger(ready)
            sink = kepmlog.loguru.KeeperLoggerSink(log, category="Bench")
            if fmt is None:
                handler_id = loguru_logger.add(sink, level="INFO")
            else:
                handler_id = loguru_logger.add(sink, level="INFO", format=fmt)
            before = log.stats()["delivered"]

            def close() -> None:
                loguru_logger.remove(handler_id)
                log.shutdown(5)

            return (lambda i: loguru_logger.info("record {}", i)), delivered_since(log, before), close

        return prepare

    def loguru_file() -> Any:
        handler_id = loguru_logger.add(os.devnull, level="INFO")
        return ((lambda i: loguru_logger.info("record {}", i)), (lambda: None),
                (lambda: loguru_logger.remove(handler_id)))

    loguru_logger.remove()  # not its default stderr sink
    out["direct"] = direct
    out["logging+handler"] = handler
    out["structlog+kepmlog"] = structlog_kepmlog
    out["structlog json"] = structlog_json
    out["structlog default"] = structlog_default
    out["loguru+kepmlog"] = loguru_row(None)
    out["loguru+kepmlog {message}"] = loguru_row("{message}")
    out["loguru file"] = loguru_file
    return out


def run(row: Row, count: int, start: int) -> Tuple[float, float, float, Optional[int]]:
    call, finish, close = row()
    try:
        wall0, cpu0, thread0 = time.perf_counter(), time.process_time(), time.thread_time()
        for i in range(start, start + count):
            call(i)
        wall = time.perf_counter() - wall0
        thread = time.thread_time() - thread0
        delivered = finish()
        cpu = time.process_time() - cpu0
    finally:
        close()
    return wall * 1e6 / count, cpu * 1e6 / count, thread * 1e6 / count, delivered


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000, help="calls per row (default 20000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds the calls are split in (default 5)")
    opts = parser.parse_args()
    try:
        import loguru  # noqa: F401
        import structlog  # noqa: F401
    except ImportError as e:
        sys.exit(f"{e.name} is not installed: pip install structlog loguru")
    proc, ready = start_devagent()
    per_round = max(1, opts.count // opts.rounds)
    results: Dict[str, List[Tuple[float, float, float, Optional[int]]]] = {}
    try:
        table = rows(ready)
        for r in range(opts.rounds):
            for name, row in table.items():
                results.setdefault(name, []).append(run(row, per_round, r * per_round))
    finally:
        assert proc.stdin is not None
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        proc.wait(timeout=15)
    from importlib.metadata import version

    print(f"per-call cost, {per_round * opts.rounds} calls per row in {opts.rounds} rounds, "
          f"TLS MQTT v5 QoS 1 to kepm-devagent (Python {sys.version.split()[0]}, "
          f"kepmlog {kepmlog.__version__}, structlog {version('structlog')}, "
          f"loguru {version('loguru')}, {os.cpu_count()} CPUs)")
    print(f"| {'front end -> destination':<26} | {'wall µs/call':>12} | {'CPU µs/call':>11} "
          f"| {'caller CPU µs/call':>18} | {'delivered':>9} |")
    print(f"| {'-' * 26} | {'-' * 11}: | {'-' * 10}: | {'-' * 17}: | {'-' * 8}: |")
    for name, samples in results.items():
        wall = statistics.median(s[0] for s in samples)
        cpu = statistics.median(s[1] for s in samples)
        thread = statistics.median(s[2] for s in samples)
        counts = [s[3] for s in samples]
        delivered = "-" if counts[0] is None else str(sum(c or 0 for c in counts))
        print(f"| {name:<26} | {wall:>12.2f} | {cpu:>11.2f} | {thread:>18.2f} | {delivered:>9} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
