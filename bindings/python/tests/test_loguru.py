"""kepmlog.loguru.KeeperLoggerSink: levels (custom ones by number), extra, Context JSON,
exceptions, never raising, remove()/stop(), enqueue, the shared vectors, and the optional
import."""

from __future__ import annotations

import datetime
import os
from typing import Any, Iterator

import pytest

loguru = pytest.importorskip("loguru")

import kepmlog  # noqa: E402
import kepmlog.loguru as kloguru  # noqa: E402
from conftest import DevAgent, run_python  # noqa: E402
from test_vectors import VECTORS  # noqa: E402

logger = loguru.logger

# Custom levels are global to loguru and cannot be re-registered with another number.
for _name, _no in (("KEPM_LOWEST", 1), ("KEPM_15", 15), ("KEPM_NOTICE", 35), ("KEPM_ABOVE", 60)):
    try:
        logger.level(_name)
    except ValueError:
        logger.level(_name, no=_no)

# The wire name of each vector level, as a loguru level name.
LOGURU_LEVEL = {"Debug": "DEBUG", "Info": "INFO", "Warning": "WARNING", "Error": "ERROR",
                "Critical": "CRITICAL", "Verbose": "TRACE"}


class Recording(kloguru.KeeperLoggerSink):
    """Keeps the errors handle_error would print."""

    __slots__ = ("errors",)

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.errors: list[tuple[Exception, str]] = []

    def handle_error(self, error: Exception, message: Any) -> None:
        self.errors.append((error, message.record["message"]))


@pytest.fixture(autouse=True)
def no_sinks() -> Iterator[None]:
    """No sink but the test's own (not even loguru's default stderr one)."""
    logger.remove()
    try:
        yield
    finally:
        logger.remove()


@pytest.fixture
def log(agent: DevAgent) -> Iterator[kepmlog.Logger]:
    lg = kepmlog.Logger("LoguruTool", **agent.logger_options())
    try:
        yield lg
    finally:
        lg.shutdown(5)


def test_every_level_maps(agent: DevAgent, log: kepmlog.Logger) -> None:
    sink = Recording(log, category="Phase")
    logger.add(sink, level=0)
    logger.trace("trace")
    logger.debug("debug")
    logger.info("info {}", "arg")
    logger.success("success")
    logger.warning("warning")
    logger.error("error")
    logger.critical("critical")
    logger.log("KEPM_LOWEST", "custom 1")
    logger.log("KEPM_15", "custom 15")
    logger.log("KEPM_NOTICE", "custom 35")
    logger.log("KEPM_ABOVE", "custom 60")
    logger.log(45, "level number 45")
    assert log.flush(20) == 0
    meta = agent.metadata(12)
    assert [(m["LogLevel"], m["Message"]) for m in meta] == [
        (5, "trace"), (0, "debug"), (1, "info arg"), (1, "success"), (2, "warning"), (3, "error"),
        (4, "critical"), (5, "custom 1"), (0, "custom 15"), (2, "custom 35"), (4, "custom 60"),
        (3, "level number 45"),
    ]
    assert all(m["Category"] == "Phase" and m["Source"] == "LoguruTool" for m in meta)
    assert all(m["Context"] == "" and m["CorrelationId"] == "" for m in meta)
    assert sink.errors == []


def test_default_level_is_debug(agent: DevAgent, log: kepmlog.Logger) -> None:
    logger.add(kloguru.KeeperLoggerSink(log))
    logger.trace("filtered by loguru")
    logger.debug("kept")
    assert log.flush(20) == 0
    assert [m["Message"] for m in agent.metadata(1)] == ["kept"]


def test_extra_and_context_json(agent: DevAgent, log: kepmlog.Logger) -> None:
    logger.add(kloguru.KeeperLoggerSink(log), level="DEBUG", format="{time} {level} {message}")
    logger.bind(category="Upload", correlation_id="run-7", files=18).info("bound")
    with logger.contextualize(correlation_id="ctx-1", task="scan"):
        logger.bind(category="Scan").warning("contextualized")
    logger.info("kwargs {n} land in extra", n=3)
    logger.bind(context="path=/x", size=3).info("context first")
    logger.bind(context={"a": 1}).info("dict context")
    when = datetime.datetime(2026, 12, 2, 1, 2, 3, tzinfo=datetime.timezone.utc)
    logger.bind(when=when, name="Scan terminé ✓", correlation_id=42).info("not JSON types")
    logger.bind(category="").info("empty category")
    logger.info("no extra")
    assert log.flush(20) == 0
    got = [(m["Category"], m["Message"], m["CorrelationId"], m["Context"]) for m in agent.metadata(8)]
    assert got == [
        ("Upload", "bound", "run-7", '{"files":18}'),
        ("Scan", "contextualized", "ctx-1", '{"task":"scan"}'),
        ("General", "kwargs 3 land in extra", "", '{"n":3}'),
        ("General", "context first", "", 'path=/x | {"size":3}'),
        ("General", "dict context", "", '{"context":{"a":1}}'),
        ("General", "not JSON types", "42", '{"when":"2026-12-02 01:02:03+00:00","name":"Scan terminé ✓"}'),
        ("General", "empty category", "", ""),
        ("General", "no extra", "", ""),
    ]


def test_category_defaults(agent: DevAgent) -> None:
    log = kepmlog.Logger("LoguruTool", default_category="LoggerDefault", **agent.logger_options())
    first = logger.add(kloguru.KeeperLoggerSink(log))
    logger.info("logger default")
    logger.remove(first)
    logger.add(kloguru.KeeperLoggerSink(log, category="Mine"))
    logger.info("sink default")
    assert log.flush(20) == 0
    assert [(m["Category"], m["Message"]) for m in agent.metadata(2)] == [
        ("LoggerDefault", "logger default"), ("Mine", "sink default"),
    ]
    log.shutdown(5)


def _fail() -> None:
    raise ZeroDivisionError("division by zero")


def test_exceptions(agent: DevAgent, log: kepmlog.Logger) -> None:
    logger.add(kloguru.KeeperLoggerSink(log, category="Scan"))
    try:
        _fail()
    except ZeroDivisionError as e:
        logger.bind(context="file=a.txt", attempt=2).exception("scan failed")
        caught = e
    logger.opt(exception=caught).warning("from opt")

    @logger.catch(message="caught by the decorator")
    def job() -> None:
        _fail()

    job()
    assert log.flush(20) == 0
    meta = agent.metadata(3)
    assert [(m["LogLevel"], m["Message"]) for m in meta] == [
        (3, "scan failed"), (2, "from opt"), (3, "caught by the decorator"),
    ]
    assert meta[0]["Context"].startswith('file=a.txt | {"attempt":2} | Traceback (most recent call last):')
    for m in meta:
        ctx = m["Context"]
        assert "Traceback (most recent call last):" in ctx and "in _fail" in ctx
        assert ctx.endswith("ZeroDivisionError: division by zero")
        assert "\n" not in ctx and "\r" not in ctx
        # The standard traceback, not loguru's diagnose view with local variables' values.
        assert "└" not in ctx


def test_never_raises(agent: DevAgent, log: kepmlog.Logger, capsys: pytest.CaptureFixture[str]) -> None:
    sink = Recording(log)
    # catch=False: loguru would let a sink's exception reach the application.
    first = logger.add(sink, catch=False)
    logger.info("")
    logger.info("fine")

    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no text")

    logger.bind(value=Unprintable()).info("bad value")
    assert log.flush(20) == 0
    assert [(type(e), m) for e, m in sink.errors] == [
        (kepmlog.EmptyMessageError, ""), (RuntimeError, "bad value"),
    ]
    logger.remove(first)
    logger.add(kloguru.KeeperLoggerSink(log), catch=False)
    logger.warning("   ")
    log.shutdown(5)
    logger.error("after shutdown")
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2, err
    assert err[0].startswith("kepmlog.loguru: record '   ' (WARNING) not sent: EmptyMessageError: ")
    assert err[1].startswith("kepmlog.loguru: record 'after shutdown' (ERROR) not sent: ShutDownError: ")
    assert [m["Message"] for m in agent.metadata(1)] == ["fine"]


def test_remove_stops_the_sink(agent: DevAgent, log: kepmlog.Logger) -> None:
    owned = kloguru.KeeperLoggerSink(source="OwnedTool", **agent.logger_options())
    owned_id = logger.add(owned)
    for i in range(50):
        logger.info("owned {}", i)
    logger.remove(owned_id)  # stop(): the sink's own logger is shut down, queue delivered
    assert owned.logger.is_shut_down
    assert owned.logger.stats()["delivered"] == 50
    borrowed_id = logger.add(kloguru.KeeperLoggerSink(log))
    logger.info("borrowed")
    logger.remove(borrowed_id)  # stop(): flushed, left running for its owner
    assert not log.is_shut_down and log.stats()["delivered"] == 1
    meta = agent.metadata(51)
    assert sorted(m["Message"] for m in meta if m["Source"] == "OwnedTool") == sorted(
        f"owned {i}" for i in range(50)
    )
    assert [m["Message"] for m in meta if m["Source"] == "LoguruTool"] == ["borrowed"]


def test_enqueue(agent: DevAgent, log: kepmlog.Logger) -> None:
    logger.add(kloguru.KeeperLoggerSink(log), enqueue=True)
    logger.bind(category="Queued", step=1).info("through loguru's queue")
    try:
        _fail()
    except ZeroDivisionError:
        logger.exception("queued exception")
    logger.complete()  # loguru's queue drained into kepmlog's
    assert log.flush(20) == 0
    meta = agent.metadata(2)
    assert [(m["Category"], m["Message"]) for m in meta] == [
        ("Queued", "through loguru's queue"), ("General", "queued exception"),
    ]
    assert meta[0]["Context"] == '{"step":1}'
    # The traceback does not survive loguru's pickling; the exception line does.
    assert meta[1]["Context"].endswith("ZeroDivisionError: division by zero")


def test_vectors_through_loguru(agent: DevAgent) -> None:
    """tests/vectors/records.json as loguru calls: the level by name, the category,
    correlation_id and context bound as extra. The error cases reach handle_error."""
    spec = VECTORS["logger"]
    log = kepmlog.Logger(spec["source"], default_category=spec["default_category"], **agent.logger_options())
    sink = Recording(log)
    logger.add(sink, level=0)
    expected, errors = [], []
    for case in VECTORS["cases"]:
        inp = case["input"]
        logger.bind(category=inp["category"], correlation_id=inp["correlation_id"],
                    context=inp["context"]).log(LOGURU_LEVEL[inp["level_name"]], inp["message"])
        if "error" in case:
            errors.append(case["error"])
        else:
            expected.append(case["expect"])
    assert [e.kind for e, _ in sink.errors] == errors  # type: ignore[attr-defined]
    assert log.flush(20) == 0
    got = agent.wait_for(len(expected))
    assert [m["payload"]["MetaData"] for m in got] == expected
    log.shutdown(5)


def test_argument_errors(agent: DevAgent, log: kepmlog.Logger) -> None:
    with pytest.raises(TypeError, match="either a logger or Logger keywords"):
        kloguru.KeeperLoggerSink(log, source="X")
    with pytest.raises(TypeError, match="kepmlog.Logger"):
        kloguru.KeeperLoggerSink("not a logger")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="category must be a str"):
        kloguru.KeeperLoggerSink(log, category=3)  # type: ignore[arg-type]


def test_import_is_optional() -> None:
    code = (
        "import sys, kepmlog\n"
        "assert 'loguru' not in sys.modules and 'structlog' not in sys.modules, sys.modules.keys()\n"
        "sys.modules['loguru'] = None\n"
        "try:\n"
        "    import kepmlog.loguru\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    done = run_python(code, dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "kepmlog.loguru needs loguru: pip install loguru (or pip install 'kepmlog[loguru]')"
    )


def test_exit_delivers_without_flush(agent: DevAgent) -> None:
    """A tool that logs through loguru and returns without removing the sink: the exit hooks
    (kepmlog's, and loguru's, which stops the sink) deliver everything."""
    code = (
        "from loguru import logger\n"
        "import kepmlog.loguru, sys\n"
        "logger.remove()\n"
        "logger.add(kepmlog.loguru.KeeperLoggerSink(source='ExitTool', category='Exit',\n"
        "           api_base=sys.argv[1], diagnostics=False))\n"
        "for i in range(200):\n"
        "    logger.info('record {}', i)\n"
    )
    done = run_python(code, agent.env(), args=(agent.api_base,))
    assert done.returncode == 0, done.stderr
    meta = agent.metadata(200)
    assert sorted(m["Message"] for m in meta) == sorted(f"record {i}" for i in range(200))
    assert {(m["Source"], m["Category"]) for m in meta} == {("ExitTool", "Exit")}
