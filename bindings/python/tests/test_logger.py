"""kepmlog.Logger against a real devagent: levels, events, bad input, delivery, threads."""

from __future__ import annotations

import threading
import time

import pytest

import kepmlog
from conftest import EVENT_TOPIC, JOB_ID, DevAgent, run_python


def test_level_methods_and_fields(agent: DevAgent) -> None:
    with kepmlog.Logger("PyTool", **agent.logger_options()) as log:
        assert log.debug("Scan", "d") is True
        assert log.info("Scan", "i", "corr-1", "ctx=1") is True
        assert log.warning("Scan", "w")
        assert log.error("Scan", "e")
        assert log.critical("Scan", "c")
        assert log.verbose("Scan", "v")
        assert log.log(kepmlog.Level.WARNING, "", "by enum")
        assert log.log("warn", "Scan", "by alias")
        assert log.log(4, "Scan", "by number")
        assert log.flush(20) == 0
        assert log.source == "PyTool" and log.job_id == JOB_ID
        assert log.event_topic == EVENT_TOPIC
    assert log.is_shut_down
    meta = agent.metadata(9)
    assert [(m["LogLevel"], m["Message"]) for m in meta] == [
        (0, "d"), (1, "i"), (2, "w"), (3, "e"), (4, "c"), (5, "v"),
        (2, "by enum"), (2, "by alias"), (4, "by number"),
    ]
    assert meta[1]["CorrelationId"] == "corr-1" and meta[1]["Context"] == "ctx=1"
    assert meta[6]["Category"] == "General"
    assert all(m["Source"] == "PyTool" for m in meta)
    clients = agent.clients_once(lambda ids: any(c.startswith(f"{JOB_ID}_") for c in ids))
    assert any(c.startswith(f"{JOB_ID}_") for c in clients), clients


def test_events_and_stats(agent: DevAgent) -> None:
    log = kepmlog.Logger("PyTool", ca_bundle=agent.ca, **agent.logger_options())
    assert log.event({"phase": "scan", "files": 3, "nested": {"ok": True}, "name": "é"})
    assert log.info("Scan", "done")
    assert log.flush(20) == 0
    events = agent.wait_for(1, EVENT_TOPIC)
    assert events[0]["payload"] == {"phase": "scan", "files": 3, "nested": {"ok": True}, "name": "é"}
    stats = log.stats()
    for key in ("accepted", "delivered", "dropped", "denied", "failed", "pending", "reconnects",
                "connected", "last_error", "broker", "client_id"):
        assert key in stats
    assert stats["accepted"] == stats["delivered"] == 2
    assert stats["connected"] is True and stats["client_id"] == log.client_id
    assert log.client_id.startswith(f"{JOB_ID}_") and log.client_id.endswith(f"_{__import__('os').getpid()}")
    log.shutdown(5)


def test_bad_input_raises_clear_errors(agent: DevAgent) -> None:
    log = kepmlog.Logger("PyTool", **agent.logger_options())
    with pytest.raises(kepmlog.EmptyMessageError, match="non-empty"):
        log.info("Scan", "")
    with pytest.raises(ValueError):
        log.info("Scan", " \r\n ")
    with pytest.raises(TypeError, match="message must be a str, not int"):
        log.info("Scan", 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="category must be a str, not NoneType"):
        log.info(None, "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="correlation_id must be a str"):
        log.info("Scan", "x", b"bytes")  # type: ignore[arg-type]
    with pytest.raises(kepmlog.InvalidLevelError, match="Debug, Info"):
        log.log(9, "Scan", "x")
    with pytest.raises(kepmlog.InvalidLevelError):
        log.log("loud", "Scan", "x")
    with pytest.raises(TypeError, match="level"):
        log.log(1.5, "Scan", "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="level"):
        log.log(True, "Scan", "x")
    with pytest.raises(TypeError, match="dict"):
        log.event([1, 2])  # type: ignore[arg-type]
    with pytest.raises(kepmlog.InvalidEventError, match="JSON"):
        log.event({"x": object()})
    with pytest.raises(kepmlog.InvalidEventError):
        log.event({"x": float("nan")})
    with pytest.raises(ValueError, match="timeout"):
        log.flush(-1)
    with pytest.raises(TypeError, match="timeout"):
        log.flush("soon")  # type: ignore[arg-type]
    assert log.shutdown(5) == 0
    assert log.shutdown(5) == 0  # idempotent
    with pytest.raises(kepmlog.ShutDownError, match="create a new logger"):
        log.info("Scan", "after shutdown")
    with pytest.raises(kepmlog.ShutDownError):
        log.event({"a": 1})
    with pytest.raises(kepmlog.ShutDownError):
        log.flush(1)


def test_bad_options_raise_clear_errors(agent: DevAgent, monkeypatch: pytest.MonkeyPatch) -> None:
    opts = agent.logger_options()
    with pytest.raises(kepmlog.JobIdError, match="hyphens") as info:
        kepmlog.Logger("PyTool", **dict(opts, job_id="secrets_scanner"))
    assert info.value.kind == "invalid_job_id" and isinstance(info.value, ValueError)
    monkeypatch.delenv("KEEPER_JOB_ID", raising=False)
    with pytest.raises(kepmlog.JobIdError, match="mqttTopics") as info:
        kepmlog.Logger("PyTool", api_base=agent.api_base)
    assert info.value.kind == "missing_job_id"
    with pytest.raises(kepmlog.InvalidOptionError, match="overflow"):
        kepmlog.Logger("PyTool", **dict(opts, overflow="lossy"))
    with pytest.raises(kepmlog.InvalidOptionError, match="queue_capacity"):
        kepmlog.Logger("PyTool", **dict(opts, queue_capacity=0))
    with pytest.raises(TypeError, match="queue_capacity"):
        kepmlog.Logger("PyTool", **dict(opts, queue_capacity="big"))
    with pytest.raises(kepmlog.InvalidOptionError, match="ca_bundle"):
        kepmlog.Logger("PyTool", **dict(opts, ca_bundle="/nonexistent/ca.pem"))
    with pytest.raises(kepmlog.InvalidTokenError):
        kepmlog.Logger("PyTool", **dict(opts, token="my_tool"))
    with pytest.raises(kepmlog.InvalidOptionError, match="broker"):
        kepmlog.Logger("PyTool", **dict(opts, broker="no-port"))
    with pytest.raises(TypeError, match="broker"):
        kepmlog.Logger("PyTool", **dict(opts, broker=8675))
    with pytest.raises(TypeError):
        kepmlog.Logger(42, **opts)  # type: ignore[arg-type]


def test_from_job_reads_argv_and_environment(agent: DevAgent) -> None:
    code = (
        "import kepmlog, os, sys\n"
        "log = kepmlog.Logger.from_job('ArgvTool')\n"
        "print(log.client_id)\n"
        "log.info('Startup', 'from_job works')\n"
        "sys.exit(0 if log.flush(20) == 0 else 1)\n"
    )
    proc = run_python(code, agent.env(), args=(f"--keeper-api-base={agent.api_base}",))
    assert proc.returncode == 0, proc.stderr
    client_id = proc.stdout.strip()
    assert client_id.startswith(f"{JOB_ID}_python_")
    assert client_id in agent.clients_once(lambda ids: client_id in ids)
    assert [m["Message"] for m in agent.metadata(1)] == ["from_job works"]


def test_denied_publish_raises_on_flush(make_agent) -> None:
    agent = make_agent(allow=("KeeperLogger",))
    log = kepmlog.Logger("PyTool", **agent.logger_options())
    assert log.event({"phase": "scan"})
    assert log.info("Scan", "allowed")
    with pytest.raises(kepmlog.DeniedError, match="allowedPublications") as info:
        log.flush(20)
    assert isinstance(info.value, PermissionError)
    assert EVENT_TOPIC in str(info.value)
    assert log.flush(20) == 0  # reported once
    assert log.stats()["denied"] == 1
    assert [m["Message"] for m in agent.metadata(1)] == ["allowed"]
    log.shutdown(5)


def test_flush_with_broker_down_returns_at_deadline_then_recovers(agent: DevAgent) -> None:
    log = kepmlog.Logger("PyTool", **agent.logger_options())
    assert log.info("Scan", "first")
    assert log.flush(20) == 0
    agent.command("broker stop")
    for i in range(5):
        assert log.info("Scan", f"while down {i}")
    start = time.monotonic()
    undelivered = log.flush(1.0)
    elapsed = time.monotonic() - start
    assert undelivered == 5
    assert 0.9 <= elapsed < 6.0
    agent.command("broker start")
    assert log.flush(30) == 0
    msgs = [m["Message"] for m in agent.metadata(6)]
    assert msgs[0] == "first" and sorted(msgs[1:]) == [f"while down {i}" for i in range(5)]
    log.shutdown(5)


def test_gil_is_released_while_flush_waits(agent: DevAgent) -> None:
    log = kepmlog.Logger("PyTool", **agent.logger_options())
    agent.command("broker stop")
    log.info("Scan", "pending")
    ticks = 0
    stop = threading.Event()

    def spin() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    t = threading.Thread(target=spin)
    t.start()
    time.sleep(0.05)
    before = ticks
    assert log.flush(1.0) == 1
    during = ticks - before
    stop.set()
    t.join()
    # A flush holding the GIL would freeze the spinner for the whole second.
    assert during > 50, during
    agent.command("broker start")
    assert log.shutdown(30) == 0


def test_queue_full_returns_false_and_counts(agent: DevAgent) -> None:
    agent.command("broker stop")
    log = kepmlog.Logger("PyTool", **agent.logger_options(queue_capacity=4))
    results = [log.info("Scan", f"r{i}") for i in range(50)]
    assert results.count(True) >= 4
    assert results.count(False) >= 40
    assert log.stats()["dropped"] == results.count(False)
    agent.command("broker start")
    assert log.flush(30) == 0
    log.shutdown(5)


def test_block_overflow_delivers_everything(agent: DevAgent) -> None:
    log = kepmlog.Logger("PyTool", **agent.logger_options(queue_capacity=8, overflow="block", block_timeout=10))
    n = 2000
    assert all(log.info("Scan", f"b{i}") for i in range(n))
    assert log.flush(30) == 0
    assert log.stats()["dropped"] == 0
    assert len(agent.wait_for(n)) == n
    log.shutdown(5)


def test_many_threads_logging_at_once(agent: DevAgent) -> None:
    log = kepmlog.Logger("PyTool", **agent.logger_options())
    threads, per = 8, 2500
    barrier = threading.Barrier(threads)
    failures: list[BaseException] = []

    def work(t: int) -> None:
        try:
            barrier.wait()
            for i in range(per):
                assert log.info("Threads", f"t{t}-{i}")
        except BaseException as e:  # surfaced below
            failures.append(e)

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    assert not failures
    assert log.flush(60) == 0
    msgs = agent.wait_for(threads * per)
    got = [m["payload"]["MetaData"]["Message"] for m in msgs]
    assert len(got) == threads * per
    assert set(got) == {f"t{t}-{i}" for t in range(threads) for i in range(per)}
    for t in range(threads):  # per-thread order is kept
        mine = [int(g.split("-")[1]) for g in got if g.startswith(f"t{t}-")]
        assert mine == sorted(mine)
    log.shutdown(5)
