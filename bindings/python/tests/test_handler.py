"""kepmlog.KeeperLoggerHandler: levels, extra, exceptions, configuration, errors."""

from __future__ import annotations

import logging
import logging.config
from typing import Iterator

import pytest

import kepmlog
from conftest import JOB_ID, DevAgent


@pytest.fixture
def pylog() -> Iterator[logging.Logger]:
    """A fresh, isolated stdlib logger."""
    lg = logging.getLogger(f"kepmtest.{id(object())}")
    lg.propagate = False
    lg.setLevel(1)
    try:
        yield lg
    finally:
        for h in list(lg.handlers):
            lg.removeHandler(h)
            h.close()


def test_every_level_maps(agent: DevAgent, pylog: logging.Logger) -> None:
    log = kepmlog.Logger("HandlerTool", **agent.logger_options())
    pylog.addHandler(kepmlog.KeeperLoggerHandler(log, category="Phase"))
    pylog.log(kepmlog.VERBOSE, "verbose %d", 5)
    pylog.debug("debug")
    pylog.info("info %s", "arg")
    pylog.warning("warning")
    pylog.error("error")
    pylog.critical("critical")
    pylog.log(25, "between info and warning")
    pylog.log(1, "very low")
    pylog.log(60, "above critical")
    assert log.flush(20) == 0
    meta = agent.metadata(9)
    assert [(m["LogLevel"], m["Message"]) for m in meta] == [
        (5, "verbose 5"), (0, "debug"), (1, "info arg"), (2, "warning"), (3, "error"),
        (4, "critical"), (1, "between info and warning"), (5, "very low"), (4, "above critical"),
    ]
    assert all(m["Category"] == "Phase" and m["Source"] == "HandlerTool" for m in meta)
    assert logging.getLevelName(kepmlog.VERBOSE) == "VERBOSE"
    log.shutdown(5)


def test_extra_fields_and_formatter(agent: DevAgent, pylog: logging.Logger) -> None:
    log = kepmlog.Logger("HandlerTool", **agent.logger_options())
    handler = kepmlog.KeeperLoggerHandler(log)
    pylog.addHandler(handler)
    pylog.info("with extra", extra={"category": "Upload", "correlation_id": "run-7", "context": "path=/x"})
    pylog.info("default category")
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    pylog.warning("formatted")
    assert log.flush(20) == 0
    meta = agent.metadata(3)
    assert meta[0]["Category"] == "Upload" and meta[0]["CorrelationId"] == "run-7"
    assert meta[0]["Context"] == "path=/x"
    assert meta[1]["Category"] == "General" and meta[1]["CorrelationId"] == ""
    assert meta[2]["Message"] == f"WARNING {pylog.name}: formatted"
    log.shutdown(5)


def test_exception_text_goes_to_context(agent: DevAgent, pylog: logging.Logger) -> None:
    log = kepmlog.Logger("HandlerTool", **agent.logger_options())
    pylog.addHandler(kepmlog.KeeperLoggerHandler(log, category="Scan"))
    try:
        1 / 0
    except ZeroDivisionError:
        pylog.exception("scan failed", extra={"context": "file=a.txt"})
    pylog.info("with stack", stack_info=True)
    assert log.flush(20) == 0
    meta = agent.metadata(2)
    assert meta[0]["LogLevel"] == 3 and meta[0]["Message"] == "scan failed"
    ctx = meta[0]["Context"]
    assert ctx.startswith("file=a.txt | Traceback (most recent call last):")
    assert "ZeroDivisionError: division by zero" in ctx
    assert "\n" not in ctx and "\r" not in ctx
    assert meta[1]["Message"] == "with stack" and "Stack (most recent call last):" in meta[1]["Context"]
    log.shutdown(5)


class RecordingHandler(kepmlog.KeeperLoggerHandler):
    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.errors: list[BaseException] = []

    def handleError(self, record: logging.LogRecord) -> None:
        import sys

        exc = sys.exc_info()[1]
        assert exc is not None
        self.errors.append(exc)


def test_emit_errors_go_through_handle_error(agent: DevAgent, pylog: logging.Logger) -> None:
    log = kepmlog.Logger("HandlerTool", **agent.logger_options())
    handler = RecordingHandler(log)
    pylog.addHandler(handler)
    pylog.info("")  # empty message
    pylog.info("%d", "not a number")  # formatting error
    pylog.info("fine")
    assert log.flush(20) == 0
    log.shutdown(5)
    pylog.info("after shutdown")
    assert [type(e) for e in handler.errors] == [kepmlog.EmptyMessageError, TypeError, kepmlog.ShutDownError]
    assert [m["Message"] for m in agent.metadata(1)] == ["fine"]


def test_basic_config(agent: DevAgent, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEPER_JOB_ID", JOB_ID)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    handler = kepmlog.KeeperLoggerHandler(source="BasicTool", category="Root", api_base=agent.api_base, diagnostics=False)
    try:
        logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
        logging.getLogger("some.module").info("through basicConfig")
        logging.debug("filtered out")
        handler.flush()
        assert [(m["Source"], m["Category"], m["Message"]) for m in agent.metadata(1)] == [
            ("BasicTool", "Root", "through basicConfig")
        ]
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        handler.close()
    assert handler.logger.is_shut_down  # it owned its logger


def test_dict_config(agent: DevAgent) -> None:
    name = f"dictcfg.{id(agent)}"
    logging.config.dictConfig({
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"short": {"format": "%(name)s says %(message)s"}},
        "handlers": {
            "kepm": {
                "class": "kepmlog.KeeperLoggerHandler",
                "level": "DEBUG",
                "formatter": "short",
                "source": "DictTool",
                "category": "Config",
                "job_id": JOB_ID,
                "api_base": agent.api_base,
                "diagnostics": False,
            }
        },
        "loggers": {name: {"handlers": ["kepm"], "level": "DEBUG", "propagate": False}},
    })
    lg = logging.getLogger(name)
    handler = lg.handlers[0]
    assert isinstance(handler, kepmlog.KeeperLoggerHandler)
    lg.debug("configured")
    handler.close()
    lg.removeHandler(handler)
    meta = agent.metadata(1)
    assert [(m["Source"], m["Category"], m["LogLevel"], m["Message"]) for m in meta] == [
        ("DictTool", "Config", 0, f"{name} says configured")
    ]


def test_handler_argument_errors(agent: DevAgent) -> None:
    log = kepmlog.Logger("HandlerTool", **agent.logger_options())
    with pytest.raises(TypeError, match="either a logger or Logger keywords"):
        kepmlog.KeeperLoggerHandler(log, source="X")
    with pytest.raises(TypeError, match="kepmlog.Logger"):
        kepmlog.KeeperLoggerHandler("not a logger")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="category"):
        kepmlog.KeeperLoggerHandler(log, category=3)  # type: ignore[arg-type]
    log.shutdown(1)
