"""kepmlog.structlog: a structlog processor that sends each event to KeeperLogger.

Put it last in the processor chain::

    import structlog, kepmlog.structlog

    structlog.configure(processors=[
        kepmlog.structlog.KeeperLoggerProcessor(source="SecretScanner", category="SecretsScan"),
    ])
    structlog.get_logger().warning("possible secret", path="/srv/.env", category="Finding")

It needs structlog 22.1 or later (``pip install structlog``, or ``pip install
'kepmlog[structlog]'``); ``import kepmlog`` alone never imports it.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Mapping, MutableMapping, Optional, Tuple

try:
    import structlog
    from structlog.processors import StackInfoRenderer
except ImportError as e:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "kepmlog.structlog needs structlog: pip install structlog "
        "(or pip install 'kepmlog[structlog]')",
        name=e.name,
    ) from e

from . import _errors, _logger
from ._handler import context_head, join_context, wire_level
from ._kepmlog import parse_level
from ._logger import Logger

__all__ = ["KeeperLoggerProcessor", "wire_level_of"]

#: What a name the core does not know maps to: structlog's level-less ``msg()`` (and a custom
#: method name) is an ordinary record, not a problem nor noise.
_UNKNOWN_LEVEL = 1


def _level_name(name: str) -> Optional[int]:
    """The level a structlog method or ``level`` name names: the core's names (as everywhere,
    ``fatal``, ``warn``, ``trace`` included) plus structlog's ``exception``; else None."""
    if name.lower() == "exception":
        return 3
    try:
        return parse_level(name)
    except _errors.InvalidLevelError:
        return None

# Keys the processor maps to MetaData fields or renders itself (and "level" when it names a
# level); every other key goes to Context as JSON. "_record" and "_from_structlog" are
# ProcessorFormatter's bookkeeping.
_OWN_KEYS = frozenset(
    ("event", "category", "correlation_id", "context", "exc_info", "stack_info", "stack",
     "_record", "_from_structlog")
)
_EXC_FORMATTER = logging.Formatter()
_STACK = StackInfoRenderer(additional_ignores=["kepmlog"])


def _level_key(value: Any) -> Optional[int]:
    """The KeeperLogger level a ``level`` value names, or None when it names none (then it
    is the application's data and stays in Context)."""
    if isinstance(value, str):
        return _level_name(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return wire_level(int(value))
    return None


def wire_level_of(method_name: str, event_dict: Mapping[str, Any]) -> int:
    """The KeeperLogger level (0..5) of a structlog event: its ``level`` key when that names a
    level (as ``add_log_level`` writes it, or a ``logging`` number), else the method name.
    Other names (``msg``, custom methods) are Info."""
    level = _level_key(event_dict.get("level"))
    if level is not None:
        return level
    level = _level_name(method_name)
    return _UNKNOWN_LEVEL if level is None else level


def _exc_info(value: Any) -> Optional[Tuple[Any, Any, Any]]:
    """structlog's reading of ``exc_info``: an exception, a ``sys.exc_info()`` tuple, or any
    true value for the exception being handled."""
    if isinstance(value, BaseException):
        return (type(value), value, value.__traceback__)
    if isinstance(value, tuple) and len(value) == 3:
        return value if value[0] is not None else None
    if value:
        info = sys.exc_info()
        return info if info[0] is not None else None
    return None


def render_context(event_dict: Mapping[str, Any]) -> str:
    """Context of an event, built like ``KeeperLoggerHandler`` builds it: a ``context`` string
    first, then the other keys as one compact JSON object, then the traceback and the stack,
    joined with `` | ``."""
    context = event_dict.get("context")
    # A rendered "exception" (format_exc_info, ExceptionRenderer) is a traceback, not data; a
    # structured one (dict_tracebacks: a list) stays in the JSON.
    exception = event_dict.get("exception")
    rendered = exception if isinstance(exception, str) else None
    level_is_data = _level_key(event_dict.get("level")) is None
    rest = {
        k: v for k, v in event_dict.items()
        if k not in _OWN_KEYS
        and not (k == "exception" and rendered is not None)
        and not (k == "level" and not level_is_data)
    }
    parts = context_head(context, rest)
    exc = event_dict.get("exc_info")
    info = _exc_info(exc) if exc is not None else None
    if info is not None:
        parts.append(_EXC_FORMATTER.formatException(info))
    elif rendered:
        parts.append(rendered)
    stack = event_dict.get("stack")
    if isinstance(stack, str) and stack:
        parts.append(stack)
    elif event_dict.get("stack_info"):
        parts.append(_STACK(None, "", {"stack_info": True})["stack"])
    return join_context(parts)


class KeeperLoggerProcessor:
    """A structlog processor that sends each event to KeeperLogger through a
    :class:`kepmlog.Logger`.

    * Level: the ``level`` key (``structlog.processors.add_log_level``) when it names a
      level, else the method name: ``critical``/``fatal`` -> Critical, ``error``/``exception`` -> Error,
      ``warning``/``warn`` -> Warning, ``info`` -> Info, ``debug`` -> Debug,
      ``trace``/``verbose`` -> Verbose; a ``logging`` number maps like
      :func:`kepmlog.wire_level`; any other name (``msg``) -> Info.
    * Message: ``event`` (``str()`` of a non-string event).
    * Category: the ``category`` key, else ``category`` given here, else the Logger's
      ``default_category``. CorrelationId: the ``correlation_id`` key.
    * Context: a ``context`` string, then every other key as one JSON object (bound keys,
      ``timestamp`` and ``logger`` when earlier processors add them), then the traceback of
      ``exc_info`` (or the ``exception`` text of ``format_exc_info``) and the stack of
      ``stack_info``, joined with `` | ``; newlines become spaces on the wire.

    It is the chain's final step: after queueing the record it raises
    ``structlog.DropEvent``, so the wrapped logger (``PrintLogger`` by default) prints
    nothing. With ``forward=True`` it returns the event dict unchanged instead, for a renderer
    after it (``ConsoleRenderer``, ``JSONRenderer``) to print the event as well.

    It never raises into the application (beyond the ``DropEvent`` structlog expects): an
    event KeeperLogger cannot take (an empty ``event``, a shut-down logger) goes to
    :meth:`handle_error`, which prints one line on stderr. The call only queues; a full
    queue drops the record and counts it in ``logger.stats()["dropped"]``.

    Give it a logger, or Logger keywords (``KeeperLoggerProcessor(source="SecretScanner")``)
    and it creates one with :meth:`Logger.from_job`, shut down at interpreter exit like every
    Logger (call ``processor.logger.flush()`` to wait for delivery earlier).
    """

    __slots__ = ("logger", "category", "forward")

    def __init__(
        self,
        logger: Optional[Logger] = None,
        *,
        category: str = "",
        forward: bool = False,
        **logger_options: Any,
    ) -> None:
        if not isinstance(category, str):
            raise TypeError(f"category must be a str, not {type(category).__name__}")
        self.logger, _ = _logger.resolve_logger(logger, logger_options)
        self.category = category
        self.forward = bool(forward)

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        try:
            self._send(method_name, event_dict)
        except RecursionError:
            raise
        except Exception as e:
            self._send_failed(e, method_name, event_dict)
        if self.forward:
            return event_dict
        raise structlog.DropEvent

    def _send(self, method_name: str, event_dict: Mapping[str, Any]) -> None:
        event = event_dict.get("event")
        message = "" if event is None else event if isinstance(event, str) else str(event)
        category = event_dict.get("category") or self.category
        correlation_id = event_dict.get("correlation_id") or ""
        # The native call directly: Logger.log would check the level a second time.
        self.logger._native.log(
            wire_level_of(method_name, event_dict),
            category if isinstance(category, str) else str(category),
            message,
            correlation_id if isinstance(correlation_id, str) else str(correlation_id),
            render_context(event_dict),
        )

    def _send_failed(self, error: Exception, method_name: str, event_dict: Mapping[str, Any]) -> None:
        if isinstance(error, _errors.ShutDownError) and _logger.is_exiting():
            # Events logged by other exit hooks after kepmlog's exit shutdown: as the handler.
            return
        self.handle_error(error, method_name, event_dict)

    def handle_error(self, error: Exception, method_name: str, event_dict: Mapping[str, Any]) -> None:
        """Called (instead of raising into the application) when an event could not be
        queued. Prints one line on stderr; override to count the failures, or to raise."""
        stream = sys.stderr
        if stream is not None:
            event = repr(event_dict.get("event"))
            if len(event) > 80:
                event = event[:77] + "..."
            line = (
                f"kepmlog.structlog: event {event} ({method_name}) not sent: "
                f"{type(error).__name__}: {error}\n"
            )
            try:
                stream.write(line)
            except (OSError, ValueError):  # a closed stderr: nowhere left to report
                pass

    def __repr__(self) -> str:
        return (
            f"<kepmlog.structlog.KeeperLoggerProcessor {self.logger.source}"
            f" category={self.category!r} forward={self.forward}>"
        )
