"""Loggers of one process with the same client id ({jobId}_{token}_{pid}) and broker share ONE
broker connection; each keeps its own Source, queue, stats, flush and shutdown."""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import Any

import pytest

import kepmlog
from conftest import JOB_ID, DevAgent, run_python

EACH = 300


def by_source(agent: DevAgent, count: int) -> dict[str, list[str]]:
    """Messages the broker received, per MetaData.Source, in arrival order (after waiting for
    at least `count` KeeperLogger messages)."""
    got: dict[str, list[str]] = {}
    for meta in agent.metadata(count, timeout=30):
        got.setdefault(meta["Source"], []).append(meta["Message"])
    return got


@pytest.mark.parametrize("n", [2, 8])
def test_loggers_share_one_connection(agent: DevAgent, n: int) -> None:
    loggers = [kepmlog.Logger(f"Tool{i}", token="PyShared", **agent.logger_options()) for i in range(n)]
    client_id = loggers[0].client_id
    assert client_id == f"{JOB_ID}_PyShared_{os.getpid()}"
    assert all(log.client_id == client_id for log in loggers)

    def write(i: int, log: kepmlog.Logger) -> None:
        for k in range(EACH):
            assert log.info("Shared", f"{i}-{k}") is True

    threads = [threading.Thread(target=write, args=(i, log)) for i, log in enumerate(loggers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, log in enumerate(loggers):
        assert log.flush(30) == 0, f"logger {i}"
        s = log.stats()
        assert (s["accepted"], s["delivered"], s["dropped"], s["pending"], s["reconnects"]) == (
            EACH, EACH, 0, 0, 0), (i, s)
        assert s["connected"] is True and s["client_id"] == client_id

    got = by_source(agent, n * EACH)
    assert sum(len(v) for v in got.values()) == n * EACH
    for i in range(n):
        assert got.get(f"Tool{i}") == [f"{i}-{k}" for k in range(EACH)], f"logger {i}: its records, in order"
    assert agent.connections_of(client_id) == 1, agent.clients()
    for log in loggers:
        assert log.shutdown(10) == 0


def test_shutting_one_logger_down_leaves_the_other_logging(agent: DevAgent) -> None:
    a = kepmlog.Logger("LeaveA", token="PyShared", **agent.logger_options())
    b = kepmlog.Logger("LeaveB", token="PyShared", **agent.logger_options())
    client_id = b.client_id
    assert a.client_id == client_id
    for k in range(50):
        assert a.info("Leave", f"a {k}")

    progress = 0
    stop = threading.Event()
    cv = threading.Condition()
    failures: list[BaseException] = []

    def write_b() -> None:
        # Paced, so that B is logging before, during and after A's shutdown.
        nonlocal progress
        k = 0
        try:
            while k < EACH or not stop.is_set():
                assert b.info("Leave", f"b {k}") is True
                k += 1
                with cv:
                    progress = k
                    cv.notify_all()
                stop.wait(0.0002)
        except BaseException as e:  # reported by the main thread
            failures.append(e)
            with cv:
                cv.notify_all()

    writer = threading.Thread(target=write_b)
    writer.start()
    with cv:
        assert cv.wait_for(lambda: progress >= EACH // 4 or failures, timeout=30)
    assert a.shutdown(10) == 0
    with pytest.raises(kepmlog.ShutDownError):
        a.info("Leave", "a after")
    with cv:
        at_shutdown = progress
        # At least 200 more of B's records once A's shutdown has returned.
        assert cv.wait_for(lambda: progress >= at_shutdown + 200 or failures, timeout=30)
    stop.set()
    writer.join()
    assert not failures, failures
    total = progress
    assert b.flush(30) == 0

    sa, sb = a.stats(), b.stats()
    assert (sa["accepted"], sa["delivered"], sa["failed"], sa["pending"]) == (50, 50, 0, 0), sa
    assert (sb["accepted"], sb["delivered"], sb["pending"], sb["reconnects"]) == (total, total, 0, 0), sb
    assert sb["connected"] is True
    got = by_source(agent, 50 + total)
    assert got["LeaveA"] == [f"a {k}" for k in range(50)]
    assert got["LeaveB"] == [f"b {k}" for k in range(total)]

    # A logger created after A's shutdown joins the same connection.
    c = kepmlog.Logger("LeaveC", token="PyShared", **agent.logger_options())
    assert c.info("Leave", "c 0")
    assert c.flush(30) == 0
    assert c.stats()["reconnects"] == 0
    assert agent.connections_of(client_id) == 1, agent.clients()

    # With every logger shut down the connection closes; the next logger opens a new one.
    assert b.shutdown(10) == 0
    assert c.shutdown(10) == 0
    d = kepmlog.Logger("LeaveD", token="PyShared", **agent.logger_options())
    assert d.info("Leave", "d 0")
    assert d.flush(30) == 0
    assert by_source(agent, 50 + total + 2)["LeaveD"] == ["d 0"]
    assert agent.connections_of(client_id, at_least=2) == 2, agent.clients()
    d.shutdown(10)


def test_handler_and_logger_in_one_process_share_one_connection(agent: DevAgent) -> None:
    # Both with the default token (this script's name) and the same job options.
    handler = kepmlog.KeeperLoggerHandler(source="A", **agent.logger_options())
    direct = kepmlog.Logger(source="B", **agent.logger_options())
    pylog = logging.getLogger(f"kepmtest.shared.{id(handler)}")
    pylog.propagate = False
    pylog.setLevel(logging.INFO)
    pylog.addHandler(handler)
    try:
        assert handler.logger.client_id == direct.client_id
        for k in range(EACH):
            pylog.info("a %d", k)
            assert direct.info("Direct", f"b {k}")
        handler.flush()
        assert direct.flush(30) == 0
        for log in (handler.logger, direct):
            s = log.stats()
            assert (s["accepted"], s["delivered"], s["dropped"], s["reconnects"]) == (EACH, EACH, 0, 0), s
        got = by_source(agent, 2 * EACH)
        assert got["A"] == [f"a {k}" for k in range(EACH)]
        assert got["B"] == [f"b {k}" for k in range(EACH)]
        assert agent.connections_of(direct.client_id) == 1, agent.clients()
    finally:
        pylog.removeHandler(handler)
        handler.close()
        direct.shutdown(10)
    assert handler.logger.is_shut_down


# A job tool the way users write it: a logging handler and a direct logger, both configured
# from the job (KEEPER_JOB_ID, --keeper-api-base, the script's token); the exit hooks shut
# them down.
HANDLER_AND_LOGGER = """
import json, logging, kepmlog
logging.basicConfig(level=logging.INFO, handlers=[kepmlog.KeeperLoggerHandler(source="A", diagnostics=False)])
direct = kepmlog.Logger(source="B", diagnostics=False)
log = logging.getLogger("tool")
for k in range(%d):
    log.info("a %%d", k)
    direct.info("Direct", "b %%d" %% k)
handler = logging.getLogger().handlers[0]
handler.flush()
direct.flush(20)
print(json.dumps({"handler": handler.logger.stats(), "direct": direct.stats()}), flush=True)
"""


def test_handler_and_logger_in_a_job_tool_share_one_connection(agent: DevAgent) -> None:
    proc = run_python(HANDLER_AND_LOGGER % EACH, agent.env(), args=(f"--keeper-api-base={agent.api_base}",))
    assert proc.returncode == 0, proc.stderr
    stats: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    client_id = stats["direct"]["client_id"]
    assert stats["handler"]["client_id"] == client_id and client_id.startswith(f"{JOB_ID}_python_"), stats
    for s in stats.values():
        assert (s["accepted"], s["delivered"], s["dropped"], s["reconnects"]) == (EACH, EACH, 0, 0), s
    got = by_source(agent, 2 * EACH)
    assert got["A"] == [f"a {k}" for k in range(EACH)]
    assert got["B"] == [f"b {k}" for k in range(EACH)]
    assert agent.connections_of(client_id) == 1, agent.clients()
