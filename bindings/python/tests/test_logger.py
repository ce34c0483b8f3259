"""kepmlog.Logger against a real devagent: levels, events, bad input, delivery, threads."""

from __future__ import annotations

import subprocess
import sys
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
    # Values are checked by the core: its messages name the option and what to write instead.
    with pytest.raises(kepmlog.InvalidOptionError, match='overflow: "lossy" is not one of "drop", "block"'):
        kepmlog.Logger("PyTool", **dict(opts, overflow="lossy"))
    with pytest.raises(TypeError, match="overflow"):
        kepmlog.Logger("PyTool", **dict(opts, overflow=None))  # type: ignore[arg-type]
    with pytest.raises(kepmlog.InvalidOptionError, match="queue_capacity: must be at least 1"):
        kepmlog.Logger("PyTool", **dict(opts, queue_capacity=0))
    with pytest.raises(kepmlog.InvalidOptionError, match="queue_capacity: must be at least 1"):
        kepmlog.Logger("PyTool", **dict(opts, queue_capacity=-3))
    with pytest.raises(kepmlog.InvalidOptionError, match="event_topic"):
        kepmlog.Logger("PyTool", **dict(opts, event_topic="Jobs/+/events"))
    with pytest.raises(TypeError, match="queue_capacity"):
        kepmlog.Logger("PyTool", **dict(opts, queue_capacity="big"))
    with pytest.raises(kepmlog.InvalidOptionError, match="ca_bundle"):
        kepmlog.Logger("PyTool", **dict(opts, ca_bundle="/nonexistent/ca.pem"))
    with pytest.raises(kepmlog.InvalidTokenError):
        kepmlog.Logger("PyTool", **dict(opts, token="my_tool"))
    with pytest.raises(kepmlog.InvalidOptionError, match='broker: "no-port" has no port; write HOST:PORT'):
        kepmlog.Logger("PyTool", **dict(opts, broker="no-port"))
    with pytest.raises(kepmlog.InvalidOptionError, match="brackets around an IPv6 host"):
        kepmlog.Logger("PyTool", **dict(opts, broker="::1:8675"))
    with pytest.raises(kepmlog.InvalidOptionError, match="broker: .* from 1 to 65535; write HOST:PORT"):
        kepmlog.Logger("PyTool", **dict(opts, broker=("127.0.0.1", 70000)))
    with pytest.raises(kepmlog.InvalidOptionError, match="broker: .*pass e.g. host 127.0.0.1, port 8675"):
        kepmlog.Logger("PyTool", **dict(opts, broker=("127.0.0.1", 0)))
    with pytest.raises(TypeError, match="broker"):
        kepmlog.Logger("PyTool", **dict(opts, broker=8675))
    with pytest.raises(TypeError, match="broker"):
        kepmlog.Logger("PyTool", **dict(opts, broker=("127.0.0.1", "8675")))  # type: ignore[arg-type]
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
    assert info.value.kind == "denied"
    # The whole outcome, from the core.
    assert (info.value.undelivered, info.value.denied, info.value.undeliverable) == (0, 1, 0)
    assert info.value.denied_topics == [EVENT_TOPIC]
    assert log.flush(20) == 0  # reported once
    assert log.stats()["denied"] == 1
    assert [m["Message"] for m in agent.metadata(1)] == ["allowed"]
    assert log.shutdown(5) == 0  # already reported by the flush


def test_shutdown_after_a_denied_publish_raises_like_flush(make_agent) -> None:
    agent = make_agent(allow=("KeeperLogger",))
    log = kepmlog.Logger("PyTool", **agent.logger_options())
    assert log.info("Scan", "allowed")
    assert log.event({"phase": "scan"})
    with pytest.raises(kepmlog.DeniedError, match="allowedPublications") as info:
        log.shutdown(20)
    assert isinstance(info.value, PermissionError) and isinstance(info.value, kepmlog.KepmlogError)
    assert (info.value.undelivered, info.value.denied, info.value.undeliverable) == (0, 1, 0)
    assert info.value.denied_topics == [EVENT_TOPIC]
    assert log.is_shut_down  # shut down all the same
    assert log.shutdown(5) == 0  # idempotent, nothing new to report
    assert [m["Message"] for m in agent.metadata(1)] == ["allowed"]
    with pytest.raises(kepmlog.ShutDownError):
        log.info("Scan", "after")


def test_with_block_raises_a_denial_only_when_the_body_did_not_raise(make_agent) -> None:
    agent = make_agent(allow=("KeeperLogger",))
    with pytest.raises(kepmlog.DeniedError):
        with kepmlog.Logger("PyTool", **agent.logger_options()) as log:
            assert log.event({"phase": "scan"})
    with pytest.raises(KeyError):  # the body's exception is not replaced by the denial
        with kepmlog.Logger("PyTool", **agent.logger_options()) as log:
            assert log.event({"phase": "scan"})
            raise KeyError("body")
    assert log.is_shut_down


def test_a_record_over_the_maximum_packet_size_raises_undeliverable(make_agent) -> None:
    agent = make_agent("--max-packet-size", "2000")
    log = kepmlog.Logger("PyTool", **agent.logger_options())
    assert log.info("Size", "before")
    assert log.info("Size", "x" * 5000)
    with pytest.raises(kepmlog.UndeliverableError, match="given up") as info:
        log.flush(20)
    assert isinstance(info.value, kepmlog.KepmlogError) and info.value.kind == "undeliverable"
    assert (info.value.undelivered, info.value.denied, info.value.undeliverable) == (0, 0, 1)
    assert info.value.denied_topics == []
    assert log.flush(20) == 0  # reported once
    assert log.info("Size", "x" * 5000)
    with pytest.raises(kepmlog.UndeliverableError) as info:
        log.shutdown(20)
    assert info.value.undeliverable == 1
    assert [m["Message"] for m in agent.metadata(1)] == ["before"]


def test_a_denial_at_interpreter_exit_is_not_an_error(make_agent) -> None:
    agent = make_agent(allow=("KeeperLogger",))
    code = (
        "import kepmlog\n"
        "log = kepmlog.Logger.from_job('ExitTool')\n"
        "log.info('Exit', 'allowed at exit')\n"
        "log.event({'phase': 'denied at exit'})\n"
    )
    proc = run_python(code, agent.env(), args=(f"--keeper-api-base={agent.api_base}",))
    assert proc.returncode == 0, proc.stderr
    assert "shutdown at exit failed" not in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "allowedPublications" in proc.stderr  # the core's own diagnostic says it
    assert [m["Message"] for m in agent.metadata(1)] == ["allowed at exit"]


def test_broker_strings_are_parsed_by_the_core(agent: DevAgent) -> None:
    host, port = agent.broker
    # Brackets are for IPv6 hosts; any host may have them.
    log = kepmlog.Logger("PyTool", ca_bundle=agent.ca, **agent.logger_options(broker=f"[{host}]:{port}"))
    assert log.info("Broker", "bracketed")
    assert log.flush(20) == 0
    assert log.stats()["broker"] == f"{host}:{port}"
    log.shutdown(5)
    # An IPv6 loopback broker is accepted (nothing listens there: nothing is logged).
    v6 = kepmlog.Logger("PyTool", **agent.logger_options(broker="[::1]:8675"))
    assert v6.shutdown(0) == 0


def test_defaults_come_from_the_core() -> None:
    import inspect

    from kepmlog import _kepmlog

    assert isinstance(_kepmlog.DEFAULT_CLOSE_TIMEOUT, float) and _kepmlog.DEFAULT_CLOSE_TIMEOUT > 0
    assert kepmlog.DEFAULT_EXIT_TIMEOUT == _kepmlog.DEFAULT_CLOSE_TIMEOUT
    for fn, name in ((kepmlog.Logger.__init__, "exit_timeout"), (kepmlog.Logger.flush, "timeout"),
                     (kepmlog.Logger.shutdown, "timeout"),
                     (kepmlog.KeeperLoggerHandler.__init__, "flush_timeout")):
        assert inspect.signature(fn).parameters[name].default == _kepmlog.DEFAULT_CLOSE_TIMEOUT, fn


def test_the_token_of_a_script_is_the_cores() -> None:
    from kepmlog import _kepmlog

    assert _kepmlog.script_token("/opt/jobs/bin/scan/secret_scan.py") == "secret-scan"
    assert _kepmlog.script_token("/opt/tools/scanpkg/__main__.py") == "scanpkg"
    for none in (None, "", "-", "-c", "-m"):
        assert _kepmlog.script_token(none) == "python", none
    assert _kepmlog.script_token(None, "node") == "node"


def test_the_default_token_is_the_script_name(agent: DevAgent, tmp_path) -> None:
    script = tmp_path / "secret_scan_tool.py"
    script.write_text("import kepmlog\nprint(kepmlog.Logger.from_job('ScriptTool').client_id)\n")
    pkg = tmp_path / "scanpkg"
    pkg.mkdir()
    (pkg / "__main__.py").write_text(script.read_text())
    env = agent.env()
    for argv, token in (([str(script)], "secret-scan-tool"), (["-m", "scanpkg"], "scanpkg")):
        proc = subprocess.run(
            [sys.executable, *argv, f"--keeper-api-base={agent.api_base}"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip().startswith(f"{JOB_ID}_{token}_"), (argv, proc.stdout)


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
