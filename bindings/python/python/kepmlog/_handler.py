"""kepmlog.KeeperLoggerHandler: a standard ``logging.Handler`` that sends to KeeperLogger."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, Dict, List, Optional, Sequence

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
# Python 3.12 made Handler.handle return the (filtered) record instead of True.
_HANDLE_RETURNS_RECORD = sys.version_info >= (3, 12)
_EXC_FORMATTER = logging.Formatter()

# default=str: a datetime, a Path or an object of the application's own is logged as its
# text rather than making the log call fail. One encoder: json.dumps with options builds a
# new one per call, a third of the cost of a small object.
compact_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


def context_head(context: Any, rest: Dict[str, Any]) -> List[str]:
    """The first parts of an adapter's Context: a ``context`` string, then the other fields as
    one compact JSON object (a ``context`` that is not a string goes into it)."""
    parts = []
    if isinstance(context, str):
        if context:
            parts.append(context)
    elif context is not None:
        rest = {"context": context, **rest}
    if rest:
        parts.append(compact_json(rest))
    return parts


def join_context(parts: Sequence[str]) -> str:
    """Context parts (text, fields, traceback, stack) as one value, as every adapter joins them."""
    return " | ".join(p.rstrip("\n") for p in parts)


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

    Run by hand without ``KEEPER_JOB_ID``, the constructor raises ``JobIdError`` (naming the
    fix) and leaves nothing registered with ``logging``, so exit adds no second error; with
    ``fallback="stderr"`` (or ``KEPMLOG_FALLBACK=stderr``) the records go to stderr as text
    lines instead.
    """

    def __init__(
        self,
        logger: Optional[Logger] = None,
        *,
        category: str = "General",
        level: int | str = logging.NOTSET,
        flush_timeout: float = _logger.DEFAULT_EXIT_TIMEOUT,
        **logger_options: Any,
    ) -> None:
        # Everything that can fail comes before logging.Handler.__init__: that registers the
        # handler for logging.shutdown at exit, which would flush a half-built handler and
        # print a second traceback after the constructor's own error.
        if not isinstance(category, str):
            raise TypeError(f"category must be a str, not {type(category).__name__}")
        flush_timeout = float(flush_timeout)
        logger, owns_logger = _logger.resolve_logger(logger, logger_options)
        try:
            super().__init__(level)
        except BaseException:
            if owns_logger:
                logger.shutdown(0)
            raise
        self._owns_logger = owns_logger
        self.logger = logger
        self.category = category
        # Set, not left None: basicConfig gives formatter-less handlers its
        # "LEVEL:name:message" format, and KeeperLogger records carry the level already.
        self.setFormatter(_MESSAGE_ONLY)
        self.flush_timeout = flush_timeout

    #: Class flags, kept by ``__init_subclass__``: ``_plain_format`` while the class keeps
    #: ``logging.Handler.format`` (with the default formatter the message is then
    #: ``record.getMessage()``, which the native call computes itself); ``_fast`` while it
    #: keeps this ``emit`` too (then ``handle`` may skip the handler lock).
    _plain_format = True
    _fast = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._plain_format = cls.format is logging.Handler.format
        cls._fast = cls._plain_format and cls.emit is KeeperLoggerHandler.emit

    def handle(self, record: logging.LogRecord) -> Any:
        """``logging.Handler.handle``, without the handler lock when there is nothing to
        serialize: no filters, the default formatter and this class's ``emit`` (the logger is
        thread-safe and ``emit`` only calls it). Otherwise the standard path, lock included."""
        if self.filters or not self._fast or self.formatter is not _MESSAGE_ONLY:
            return super().handle(record)
        try:
            self.logger._native.log_record(record, self.category)
        except RecursionError:
            raise
        except Exception as e:
            self._emit_failed(record, e)
        return record if _HANDLE_RETURNS_RECORD else True

    def emit(self, record: logging.LogRecord) -> None:
        # One native call reads the level, the message, the extra keys and exc_info /
        # stack_info off the record (NativeLogger.log_record); only a formatter of the
        # user's own runs here.
        try:
            if self.formatter is _MESSAGE_ONLY and self._plain_format:
                self.logger._native.log_record(record, self.category)
            else:
                self.logger._native.log_record(record, self.category, self.format(record))
        except RecursionError:
            raise
        except Exception as e:
            self._emit_failed(record, e)

    def _emit_failed(self, record: logging.LogRecord, error: Exception) -> None:
        # Called in the except block, so handleError sees the exception.
        if isinstance(error, _errors.ShutDownError) and _logger.is_exiting():
            # Records logged by other exit hooks after kepmlog's own exit shutdown are
            # dropped quietly; otherwise logging a closed logger is an error worth showing.
            return
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
        except (_errors.DeniedError, _errors.UndeliverableError):
            # close() runs from logging.shutdown at exit, where nobody catches; the core has
            # written the denial on stderr and stats() counts it, as flush() relies on too.
            pass
        finally:
            super().close()

    def __repr__(self) -> str:
        level = logging.getLevelName(self.level)
        return f"<KeeperLoggerHandler {self.logger.source} category={self.category!r} ({level})>"


def _with_exception(record: logging.LogRecord, context: str) -> str:
    """Context followed by the record's traceback and stack (called by the native
    ``log_record`` only when the record has ``exc_info`` or ``stack_info``)."""
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
    return join_context(parts)
