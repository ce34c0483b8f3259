"""kepmlog.KeeperLoggerHandler: a standard ``logging.Handler`` that sends to KeeperLogger."""

from __future__ import annotations

import logging
from typing import Any, Optional

from . import _errors, _logger
from ._logger import Logger

__all__ = ["KeeperLoggerHandler", "VERBOSE", "wire_level"]

#: A ``logging`` level below DEBUG that maps to KeeperLogger's Verbose.
VERBOSE = 5
logging.addLevelName(VERBOSE, "VERBOSE")


def wire_level(levelno: int) -> int:
    """The KeeperLogger level (0..5) of a ``logging`` level number: CRITICAL and above ->
    Critical, ERROR -> Error, WARNING -> Warning, INFO -> Info, DEBUG -> Debug, anything
    below DEBUG (VERBOSE, custom TRACE levels) -> Verbose."""
    if levelno >= logging.CRITICAL:
        return 4
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 2
    if levelno >= logging.INFO:
        return 1
    if levelno >= logging.DEBUG:
        return 0
    return 5


class _MessageOnlyFormatter(logging.Formatter):
    """The default: the message alone. Tracebacks and stacks go to ``Context``."""

    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage()


_MESSAGE_ONLY = _MessageOnlyFormatter()
_EXC_FORMATTER = logging.Formatter()


class KeeperLoggerHandler(logging.Handler):
    """Sends ``logging`` records to the agent's KeeperLogger through a :class:`kepmlog.Logger`.

    * Level: CRITICAL, ERROR, WARNING, INFO, DEBUG map to their KeeperLogger namesakes;
      anything below DEBUG (``kepmlog.VERBOSE`` = 5) maps to Verbose.
    * Category: ``extra={"category": ...}``, else the handler's ``category``.
    * Message: ``self.format(record)``. The handler starts with a message-only formatter
      (``logging.basicConfig`` leaves it alone); ``setFormatter`` or a ``dictConfig``
      ``formatter`` replaces it.
    * CorrelationId: ``extra={"correlation_id": ...}``; Context: ``extra={"context": ...}``
      followed by the exception's traceback (``exc_info``) and ``stack_info``; newlines
      become spaces on the wire.

    ``emit`` only formats and enqueues (it never waits on the network); failures go through
    ``handleError``. A full queue drops the record and counts it (``logger.stats()``).

    Give it a logger (``KeeperLoggerHandler(logger)``), or Logger keywords
    (``KeeperLoggerHandler(source="SecretScanner", category="Scan")``) and it creates and owns
    one with :meth:`Logger.from_job`; ``close()`` (called by ``logging.shutdown`` at exit)
    then shuts it down. Works with ``logging.basicConfig(handlers=[...])`` and ``dictConfig``
    (``"class": "kepmlog.KeeperLoggerHandler"`` plus keywords).
    """

    def __init__(
        self,
        logger: Optional[Logger] = None,
        *,
        category: str = "General",
        level: int | str = logging.NOTSET,
        flush_timeout: float = 5.0,
        **logger_options: Any,
    ) -> None:
        super().__init__(level)
        if not isinstance(category, str):
            raise TypeError(f"category must be a str, not {type(category).__name__}")
        if logger is None:
            logger = Logger.from_job(**logger_options)
            self._owns_logger = True
        elif not isinstance(logger, Logger):
            raise TypeError(f"logger must be a kepmlog.Logger, not {type(logger).__name__}")
        elif logger_options:
            raise TypeError(
                "pass either a logger or Logger keywords, not both: "
                + ", ".join(sorted(logger_options))
            )
        else:
            self._owns_logger = False
        self.logger = logger
        self.category = category
        # Set, not left None: basicConfig gives formatter-less handlers its
        # "LEVEL:name:message" format, and KeeperLogger records carry the level already.
        self.setFormatter(_MESSAGE_ONLY)
        self.flush_timeout = float(flush_timeout)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            extra = record.__dict__
            category = extra.get("category") or self.category
            correlation_id = extra.get("correlation_id") or ""
            context = extra.get("context") or ""
            if record.exc_info or record.stack_info:
                context = _with_exception(record, str(context))
            self.logger._native.log(
                wire_level(record.levelno),
                category if type(category) is str else str(category),
                message,
                correlation_id if type(correlation_id) is str else str(correlation_id),
                context if type(context) is str else str(context),
            )
        except RecursionError:
            raise
        except _errors.ShutDownError:
            # Records logged by other exit hooks after kepmlog's own exit shutdown are
            # dropped quietly; otherwise logging a closed logger is an error worth showing.
            if not _logger.is_exiting():
                self.handleError(record)
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        """Waits up to ``flush_timeout`` seconds for delivery (GIL released). Never raises:
        denials are reported on stderr and counted in ``logger.stats()``."""
        # No handler lock: the logger is thread-safe, and holding the lock here would make
        # other threads' emit wait for the network.
        try:
            if not self.logger.is_shut_down:
                self.logger.flush(self.flush_timeout)
        except _errors.KepmlogError:
            pass

    def close(self) -> None:
        """Shuts the logger down when the handler created it, else flushes it."""
        try:
            if self._owns_logger:
                self.logger.shutdown(self.flush_timeout)
            else:
                self.flush()
        finally:
            super().close()

    def __repr__(self) -> str:
        level = logging.getLevelName(self.level)
        return f"<KeeperLoggerHandler {self.logger.source} category={self.category!r} ({level})>"


def _with_exception(record: logging.LogRecord, context: str) -> str:
    parts = [context] if context else []
    if record.exc_info:
        # Cached like logging.Formatter does, so other handlers reuse the text.
        if not record.exc_text:
            record.exc_text = _EXC_FORMATTER.formatException(record.exc_info)
        parts.append(record.exc_text)
    elif record.exc_text:
        parts.append(record.exc_text)
    if record.stack_info:
        parts.append(record.stack_info)
    return " | ".join(p.rstrip("\n") for p in parts)
