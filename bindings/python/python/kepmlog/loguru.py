"""kepmlog.loguru: a loguru sink that sends each record to KeeperLogger.

::

    from loguru import logger
    import kepmlog.loguru

    logger.add(kepmlog.loguru.KeeperLoggerSink(source="SecretScanner", category="SecretsScan"),
               level="TRACE")
    logger.bind(category="Finding").warning("possible secret in {}", "/srv/.env")

It needs loguru (``pip install loguru``, or ``pip install 'kepmlog[loguru]'``);
``import kepmlog`` alone never imports it.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any, Mapping, Optional

try:
    import loguru as _loguru  # noqa: F401  (only to fail early, with the fix)
except ImportError as e:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "kepmlog.loguru needs loguru: pip install loguru (or pip install 'kepmlog[loguru]')",
        name=e.name,
    ) from e

from . import _errors, _logger
from ._handler import context_head, join_context, wire_level
from ._logger import Logger

if TYPE_CHECKING:
    from loguru import Message, Record

__all__ = ["KeeperLoggerSink"]

_OWN_EXTRA = frozenset(("category", "correlation_id", "context"))
_EXC_FORMATTER = logging.Formatter()


def render_context(record: "Record") -> str:
    """Context of a record, built like ``KeeperLoggerHandler`` builds it: an
    ``extra["context"]`` string first, then the other ``extra`` keys as one compact JSON
    object, then the exception's traceback, joined with `` | ``."""
    extra: Mapping[str, Any] = record["extra"]
    parts = context_head(extra.get("context"), {k: v for k, v in extra.items() if k not in _OWN_EXTRA})
    exc = record["exception"]
    if exc is not None and exc.type is not None:
        # The standard traceback, not loguru's `diagnose` rendering: that one shows the
        # values of local variables, which do not belong in the agent's log. With
        # enqueue=True the traceback did not survive pickling; the exception line remains.
        if exc.value is not None:
            parts.append(_EXC_FORMATTER.formatException((exc.type, exc.value, exc.traceback)))
        else:  # enqueue=True and an exception that could not be pickled: its type is left
            name = exc.type.__qualname__
            module = exc.type.__module__
            parts.append(name if module == "builtins" else f"{module}.{name}")
    return join_context(parts)


class KeeperLoggerSink:
    """A loguru sink that sends each record to KeeperLogger through a
    :class:`kepmlog.Logger`: ``logger.add(KeeperLoggerSink(log))``.

    * Level, by number (custom levels too): CRITICAL (50) and above -> Critical, ERROR (40)
      -> Error, WARNING (30) -> Warning, INFO (20) and SUCCESS (25) -> Info, DEBUG (10) ->
      Debug, TRACE (5) and below -> Verbose. ``logger.add`` filters at DEBUG unless given
      ``level=``.
    * Message: ``record["message"]``; the ``format`` of ``logger.add`` does not apply (the
      record carries its level, and the agent stamps its own time).
    * Category: ``extra["category"]`` (``logger.bind(category=...)``, ``contextualize``),
      else ``category`` given here, else the Logger's ``default_category``. CorrelationId:
      ``extra["correlation_id"]``.
    * Context: an ``extra["context"]`` string, then the other ``extra`` keys as one JSON
      object, then the exception's traceback (``logger.exception``, ``opt(exception=...)``,
      ``@logger.catch``), joined with `` | ``; newlines become spaces on the wire.

    It is a file-like sink (``write``) so that ``logger.remove()`` calls :meth:`stop`, which
    shuts down a logger the sink created, and otherwise waits up to ``flush_timeout`` for
    delivery; loguru also removes every sink at interpreter exit. It has no ``flush``: loguru
    would call that after every message. ``write`` only queues, so ``enqueue=True`` is not
    needed (it works: ``logger.complete()`` then drains loguru's queue into kepmlog's).

    It never raises into the application, whatever ``catch`` says: a record KeeperLogger
    cannot take (an empty message, a shut-down logger) goes to :meth:`handle_error`, which
    prints one line on stderr. A full queue drops the record and counts it in
    ``logger.stats()["dropped"]``.

    Give it a logger, or Logger keywords (``KeeperLoggerSink(source="SecretScanner")``) and it
    creates and owns one with :meth:`Logger.from_job`.
    """

    __slots__ = ("logger", "category", "flush_timeout", "_owns_logger")

    def __init__(
        self,
        logger: Optional[Logger] = None,
        *,
        category: str = "",
        flush_timeout: float = _logger.DEFAULT_EXIT_TIMEOUT,
        **logger_options: Any,
    ) -> None:
        if not isinstance(category, str):
            raise TypeError(f"category must be a str, not {type(category).__name__}")
        flush_timeout = float(flush_timeout)
        self.logger, self._owns_logger = _logger.resolve_logger(logger, logger_options)
        self.category = category
        self.flush_timeout = flush_timeout

    def write(self, message: "Message") -> None:
        """Queues ``message.record``; loguru calls this for every record that passes the
        sink's level and filter."""
        try:
            record = message.record
            self._send(record)
        except RecursionError:
            raise
        except Exception as e:
            self._send_failed(e, message)


    def _send(self, record: "Record") -> None:
        extra = record["extra"]
        category = extra.get("category") or self.category
        correlation_id = extra.get("correlation_id") or ""
        # The native call directly: Logger.log would check the level a second time.
        self.logger._native.log(
            wire_level(record["level"].no),
            category if isinstance(category, str) else str(category),
            record["message"],
            correlation_id if isinstance(correlation_id, str) else str(correlation_id),
            render_context(record),
        )

    def _send_failed(self, error: Exception, message: "Message") -> None:
        if isinstance(error, _errors.ShutDownError) and _logger.is_exiting():
            # Records logged by other exit hooks after kepmlog's exit shutdown: as the handler.
            return
        self.handle_error(error, message)

    def handle_error(self, error: Exception, message: "Message") -> None:
        """Called (instead of raising into the application) when a record could not be
        queued. Prints one line on stderr; override to count the failures, or to raise."""
        stream = sys.stderr
        if stream is not None:
            record = getattr(message, "record", None)
            text = repr(record["message"] if record else str(message))
            if len(text) > 80:
                text = text[:77] + "..."
            level = record["level"].name if record else "?"
            line = f"kepmlog.loguru: record {text} ({level}) not sent: {type(error).__name__}: {error}\n"
            try:
                stream.write(line)
            except (OSError, ValueError):  # a closed stderr: nowhere left to report
                pass

    def stop(self) -> None:
        """Called by ``logger.remove()`` (and at exit, when loguru removes its sinks): shuts the
        logger down when the sink created it, else waits up to ``flush_timeout`` for delivery.
        Never raises: denials are reported on stderr by the core and counted in ``stats()``."""
        try:
            if self._owns_logger:
                self.logger.shutdown(self.flush_timeout)
            elif not self.logger.is_shut_down:
                self.logger.flush(self.flush_timeout)
        except _errors.KepmlogError:
            pass

    def __repr__(self) -> str:
        return f"<kepmlog.loguru.KeeperLoggerSink {self.logger.source} category={self.category!r}>"
