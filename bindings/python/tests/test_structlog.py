"""kepmlog.structlog.KeeperLoggerProcessor: levels, fields, Context JSON, exceptions, never
raising, the shared vectors, and the optional import."""

from __future__ import annotations

import datetime
import json
import logging
import os
from pathlib import PurePosixPath
from typing import Any, Iterator, Mapping

import pytest

structlog = pytest.importorskip("structlog")

import kepmlog  # noqa: E402
import kepmlog.structlog as kstructlog  # noqa: E402
from conftest import DevAgent, run_python  # noqa: E402
from test_vectors import VECTORS  # noqa: E402


class Recording(kstructlog.KeeperLoggerProcessor):
    """Keeps the errors handle_error would print."""

    __slots__ = ("errors",)

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.errors: list[tuple[Exception, str, dict[str, Any]]] = []

    def handle_error(self, error: Exception, method_name: str, event_dict: Mapping[str, Any]) -> None:
        self.errors.append((error, method_name, dict(event_dict)))


def wrap(processor: Any, *before: Any, generic: bool = False, into: Any = None) -> Any:
    """A structlog logger without touching the global configuration. `generic`: the
    BoundLogger that proxies any method name as it is (trace, verbose, notice...)."""
    return structlog.wrap_logger(
        into if into is not None else structlog.testing.CapturingLogger(),
        processors=[*before, processor],
        wrapper_class=structlog.BoundLogger if generic else structlog.make_filtering_bound_logger(0),
    )


@pytest.fixture
def log(agent: DevAgent) -> Iterator[kepmlog.Logger]:
    lg = kepmlog.Logger("StructTool", **agent.logger_options())
    try:
        yield lg
    finally:
        lg.shutdown(5)


def test_every_level_maps(agent: DevAgent, log: kepmlog.Logger) -> None:
    proc = Recording(log, category="Phase")
    sl = wrap(proc)
    sl.debug("debug")
    sl.info("info %s", "arg")
    sl.warning("warning")
    sl.warn("warn")
    sl.error("error")
    sl.exception("exception")  # no exception being handled: no traceback
    sl.critical("critical")
    sl.fatal("fatal")
    sl.msg("msg has no level")
    sl.log(logging.WARNING, "log(WARNING)")
    generic = wrap(proc, generic=True)
    for name in ("trace", "verbose", "notice", "FATAL"):
        getattr(generic, name)(name)
    # The "level" key wins over the method name: add_log_level's names, or a logging number.
    levelled = wrap(proc, structlog.processors.add_log_level, generic=True)
    levelled.exception("add_log_level exception")
    generic.msg("level key 55", level=55)
    generic.msg("level key 15", level=15)
    generic.msg("level key name", level="Warning")
    assert log.flush(20) == 0
    meta = agent.metadata(18)
    assert [(m["LogLevel"], m["Message"]) for m in meta] == [
        (0, "debug"), (1, "info arg"), (2, "warning"), (2, "warn"), (3, "error"),
        (3, "exception"), (4, "critical"), (4, "fatal"), (1, "msg has no level"),
        (2, "log(WARNING)"), (5, "trace"), (5, "verbose"), (1, "notice"), (4, "FATAL"),
        (3, "add_log_level exception"), (4, "level key 55"), (0, "level key 15"),
        (2, "level key name"),
    ]
    assert all(m["Category"] == "Phase" and m["Source"] == "StructTool" for m in meta)
    assert all(m["Context"] == "" for m in meta)
    assert proc.errors == []


def test_fields_and_context_json(agent: DevAgent, log: kepmlog.Logger) -> None:
    sl = wrap(kstructlog.KeeperLoggerProcessor(log))
    sl.info("with fields", category="Upload", correlation_id="run-7", files=18, path="/srv", ok=True)
    sl.bind(category="Bound", user="alice").warning("bound", correlation_id=42)
    sl.info("context first", context="path=/x", size=3)
    sl.info("context alone", context="path=/y")
    sl.info("dict context", context={"a": 1})
    when = datetime.datetime(2026, 12, 2, 1, 2, 3, tzinfo=datetime.timezone.utc)
    sl.info("not JSON types", when=when, where=PurePosixPath("/opt/app"), nested={"l": [1, None]})
    sl.info("unicode", name="Scan terminé ✓")
    sl.info({"event": "a dict as event"})
    sl.info("no fields")
    sl.warning("level as data", level="high")  # names no level: the method decides
    assert log.flush(20) == 0
    meta = agent.metadata(10)
    got = [(m["Category"], m["Message"], m["CorrelationId"], m["Context"]) for m in meta]
    assert got == [
        ("Upload", "with fields", "run-7", '{"files":18,"path":"/srv","ok":true}'),
        ("Bound", "bound", "42", '{"user":"alice"}'),
        ("General", "context first", "", 'path=/x | {"size":3}'),
        ("General", "context alone", "", "path=/y"),
        ("General", "dict context", "", '{"context":{"a":1}}'),
        ("General", "not JSON types", "",
         '{"when":"2026-12-02 01:02:03+00:00","where":"/opt/app","nested":{"l":[1,null]}}'),
        ("General", "unicode", "", '{"name":"Scan terminé ✓"}'),
        ("General", "{'event': 'a dict as event'}", "", ""),
        ("General", "no fields", "", ""),
        ("General", "level as data", "", '{"level":"high"}'),
    ]
    assert meta[-1]["LogLevel"] == 2


def test_category_defaults(agent: DevAgent) -> None:
    log = kepmlog.Logger("StructTool", default_category="LoggerDefault", **agent.logger_options())
    wrap(kstructlog.KeeperLoggerProcessor(log)).info("logger default")
    wrap(kstructlog.KeeperLoggerProcessor(log, category="Mine")).info("processor default")
    wrap(kstructlog.KeeperLoggerProcessor(log, category="Mine")).info("empty key", category="")
    assert log.flush(20) == 0
    assert [(m["Category"], m["Message"]) for m in agent.metadata(3)] == [
        ("LoggerDefault", "logger default"), ("Mine", "processor default"), ("Mine", "empty key"),
    ]
    log.shutdown(5)


def _fail() -> None:
    raise ZeroDivisionError("division by zero")


def test_exceptions_and_stacks(agent: DevAgent, log: kepmlog.Logger) -> None:
    proc = kstructlog.KeeperLoggerProcessor(log, category="Scan")
    sl = wrap(proc)
    try:
        _fail()
    except ZeroDivisionError as e:
        sl.exception("scan failed", context="file=a.txt", attempt=2)
        caught = e
    sl.error("from the instance", exc_info=caught)
    # format_exc_info earlier in the chain renders the traceback into "exception".
    wrap(proc, structlog.processors.format_exc_info).error("pre-rendered", exc_info=caught)
    sl.info("with stack", stack_info=True)
    assert log.flush(20) == 0
    meta = agent.metadata(4)
    assert [(m["LogLevel"], m["Message"]) for m in meta] == [
        (3, "scan failed"), (3, "from the instance"), (3, "pre-rendered"), (1, "with stack"),
    ]
    first = meta[0]["Context"]
    assert first.startswith('file=a.txt | {"attempt":2} | Traceback (most recent call last):')
    assert first.endswith("ZeroDivisionError: division by zero")
    assert "in _fail" in first and "\n" not in first and "\r" not in first
    for m in meta[1:3]:
        assert m["Context"].startswith("Traceback (most recent call last):")
        assert m["Context"].endswith("ZeroDivisionError: division by zero")
    stack = meta[3]["Context"]
    assert stack.startswith("Stack (most recent call last):")
    assert "in test_exceptions_and_stacks" in stack
    # The stack ends at the application's call, not inside structlog or kepmlog.
    assert "structlog/_" not in stack and "kepmlog/structlog.py" not in stack


def test_drop_event_or_forward(agent: DevAgent, log: kepmlog.Logger) -> None:
    dropped_into = structlog.testing.CapturingLogger()
    wrap(kstructlog.KeeperLoggerProcessor(log), into=dropped_into).info("dropped", n=1)
    assert dropped_into.calls == []  # DropEvent: the wrapped logger printed nothing
    forwarded_into = structlog.testing.CapturingLogger()
    sl = structlog.wrap_logger(
        forwarded_into,
        processors=[kstructlog.KeeperLoggerProcessor(log, forward=True),
                    structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(0),
    )
    sl.info("forwarded", n=2, category="Fwd")
    assert [(c.method_name, json.loads(c.args[0])) for c in forwarded_into.calls] == [
        ("info", {"n": 2, "category": "Fwd", "event": "forwarded"})
    ]
    assert log.flush(20) == 0
    assert [(m["Category"], m["Message"], m["Context"]) for m in agent.metadata(2)] == [
        ("General", "dropped", '{"n":1}'), ("Fwd", "forwarded", '{"n":2}'),
    ]


def test_configure_with_logger_keywords(agent: DevAgent) -> None:
    proc = kstructlog.KeeperLoggerProcessor(
        source="ConfiguredTool", category="SecretsScan", **agent.logger_options()
    )
    try:
        structlog.configure(processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            proc,
        ])
        structlog.contextvars.bind_contextvars(correlation_id="run-9")
        structlog.get_logger().warning("possible secret", path="/srv/.env", category="Finding")
        structlog.get_logger("named").info("scan done", issues=1)
    finally:
        structlog.contextvars.clear_contextvars()
        structlog.reset_defaults()
    assert proc.logger.flush(20) == 0
    meta = agent.metadata(2)
    assert [(m["Source"], m["LogLevel"], m["Category"], m["Message"], m["CorrelationId"], m["Context"])
            for m in meta] == [
        ("ConfiguredTool", 2, "Finding", "possible secret", "run-9", '{"path":"/srv/.env"}'),
        ("ConfiguredTool", 1, "SecretsScan", "scan done", "run-9", '{"issues":1}'),
    ]
    proc.logger.shutdown(5)


def test_never_raises(agent: DevAgent, log: kepmlog.Logger, capsys: pytest.CaptureFixture[str]) -> None:
    proc = Recording(log)
    sl = wrap(proc)
    assert sl.info("") is None  # empty message
    sl.info(None)
    sl.info("fine")

    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no text")

    sl.info("bad value", value=Unprintable())
    assert log.flush(20) == 0
    assert [type(e) for e, _, _ in proc.errors] == [
        kepmlog.EmptyMessageError, kepmlog.EmptyMessageError, RuntimeError
    ]
    assert proc.errors[0][1] == "info" and proc.errors[0][2] == {"event": ""}
    # The default handle_error prints one line and the call still returns normally.
    plain = wrap(kstructlog.KeeperLoggerProcessor(log))
    plain.warning("   ")
    log.shutdown(5)
    plain.error("after shutdown")
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2, err
    assert err[0].startswith("kepmlog.structlog: event '   ' (warning) not sent: EmptyMessageError: ")
    assert err[1].startswith("kepmlog.structlog: event 'after shutdown' (error) not sent: ShutDownError: ")
    assert [m["Message"] for m in agent.metadata(1)] == ["fine"]


def test_vectors_through_structlog(agent: DevAgent) -> None:
    """tests/vectors/records.json as structlog calls: the level as the method name, the
    category, correlation_id and context as keys. The error cases reach handle_error."""
    spec = VECTORS["logger"]
    log = kepmlog.Logger(spec["source"], default_category=spec["default_category"], **agent.logger_options())
    proc = Recording(log)
    sl = wrap(proc, generic=True)
    expected, errors = [], []
    for case in VECTORS["cases"]:
        inp = case["input"]
        getattr(sl, inp["level_name"].lower())(
            inp["message"], category=inp["category"], correlation_id=inp["correlation_id"],
            context=inp["context"],
        )
        if "error" in case:
            errors.append(case["error"])
        else:
            expected.append(case["expect"])
    assert [e.kind for e, _, _ in proc.errors] == errors  # type: ignore[attr-defined]
    assert log.flush(20) == 0
    got = agent.wait_for(len(expected))
    assert [m["payload"]["MetaData"] for m in got] == expected
    log.shutdown(5)


def test_argument_errors(agent: DevAgent, log: kepmlog.Logger) -> None:
    with pytest.raises(TypeError, match="either a logger or Logger keywords"):
        kstructlog.KeeperLoggerProcessor(log, source="X")
    with pytest.raises(TypeError, match="kepmlog.Logger"):
        kstructlog.KeeperLoggerProcessor("not a logger")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="category must be a str"):
        kstructlog.KeeperLoggerProcessor(log, category=3)  # type: ignore[arg-type]


def test_import_is_optional() -> None:
    code = (
        "import sys, kepmlog\n"
        "assert 'structlog' not in sys.modules and 'loguru' not in sys.modules, sys.modules.keys()\n"
        "sys.modules['structlog'] = None\n"
        "try:\n"
        "    import kepmlog.structlog\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    done = run_python(code, dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "kepmlog.structlog needs structlog: pip install structlog (or pip install 'kepmlog[structlog]')"
    )
