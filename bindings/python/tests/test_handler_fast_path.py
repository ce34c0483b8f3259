"""KeeperLoggerHandler's native fast path (NativeLogger.log_record) gives the records the
Python path gives: message formatting, extra values that are not str, filters, subclasses
with their own emit/format/getMessage, custom record factories."""

from __future__ import annotations

import logging
from typing import Iterator

import pytest

import kepmlog
from conftest import DevAgent


@pytest.fixture
def pylog() -> Iterator[logging.Logger]:
    lg = logging.getLogger(f"kepmfast.{id(object())}")
    lg.propagate = False
    lg.setLevel(1)
    try:
        yield lg
    finally:
        for h in list(lg.handlers):
            lg.removeHandler(h)
            h.close()


def test_messages_and_extra_values(agent: DevAgent, pylog: logging.Logger) -> None:
    log = kepmlog.Logger("FastTool", **agent.logger_options())
    pylog.addHandler(kepmlog.KeeperLoggerHandler(log, category="Fast"))
    pylog.info("%(a)s and %(b)d", {"a": "mapping", "b": 2})
    pylog.info(ValueError("not a str msg"))
    pylog.info("100% literal, no args")
    pylog.info("extras", extra={"category": 7, "correlation_id": 42, "context": ["x"]})
    pylog.info("falsy extras", extra={"category": "", "correlation_id": None, "context": 0})
    assert log.flush(20) == 0
    meta = agent.metadata(5)
    assert [m["Message"] for m in meta] == [
        "mapping and 2", "not a str msg", "100% literal, no args", "extras", "falsy extras",
    ]
    assert (meta[3]["Category"], meta[3]["CorrelationId"], meta[3]["Context"]) == ("7", "42", "['x']")
    assert (meta[4]["Category"], meta[4]["CorrelationId"], meta[4]["Context"]) == ("Fast", "", "")
    log.shutdown(5)


def test_filters_subclasses_and_factories(agent: DevAgent, pylog: logging.Logger) -> None:
    log = kepmlog.Logger("FastTool", **agent.logger_options())

    class Upper(kepmlog.KeeperLoggerHandler):
        def format(self, record: logging.LogRecord) -> str:
            return record.getMessage().upper()

    class Tagged(kepmlog.KeeperLoggerHandler):
        def emit(self, record: logging.LogRecord) -> None:
            record.category = "Tagged"
            super().emit(record)

    filtered = kepmlog.KeeperLoggerHandler(log, category="Filtered")
    filtered.addFilter(lambda r: "skip" not in r.getMessage())
    # Tagged last: it sets record.category, which the handlers after it would see too.
    for h in (Upper(log, category="Upper"), filtered, Tagged(log)):
        pylog.addHandler(h)
    pylog.info("keep %s", "me")
    pylog.info("skip me")

    class Record(logging.LogRecord):
        def getMessage(self) -> str:
            return "factory: " + super().getMessage()

    old = logging.getLogRecordFactory()
    logging.setLogRecordFactory(Record)
    try:
        pylog.warning("made by %s", "a factory")
    finally:
        logging.setLogRecordFactory(old)
    assert log.flush(20) == 0
    got = [(m["Category"], m["Message"]) for m in agent.metadata(8)]
    assert got == [
        ("Upper", "KEEP ME"), ("Filtered", "keep me"), ("Tagged", "keep me"),
        ("Upper", "SKIP ME"), ("Tagged", "skip me"),
        ("Upper", "FACTORY: MADE BY A FACTORY"), ("Filtered", "factory: made by a factory"),
        ("Tagged", "factory: made by a factory"),
    ]
    log.shutdown(5)
