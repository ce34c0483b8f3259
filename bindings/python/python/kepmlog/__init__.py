"""kepmlog: log from a Keeper Privilege Manager job task to the agent's KeeperLogger.

Records go over TLS MQTT v5 with QoS 1 from a bounded queue drained by a native worker
thread, so logging never blocks the tool and nothing accepted is lost::

    import logging, kepmlog

    logging.basicConfig(level=logging.INFO,
                        handlers=[kepmlog.KeeperLoggerHandler(source="SecretScanner",
                                                              category="SecretsScan")])
    logging.info("Scan complete: %d issues detected.", 0)

or directly::

    with kepmlog.Logger.from_job("SecretScanner") as log:
        log.info("SecretsScan", "Scan complete: 0 issues detected.")
"""

from __future__ import annotations

from ._errors import (
    DeniedError,
    EmptyMessageError,
    ForkedError,
    InvalidEventError,
    InvalidInputError,
    InvalidLevelError,
    InvalidOptionError,
    InvalidTokenError,
    JobIdError,
    KepmlogError,
    ShutDownError,
    UndeliverableError,
)
from ._handler import VERBOSE, KeeperLoggerHandler, wire_level
from ._kepmlog import CORE_VERSION, DEFAULT_API_BASE, DEFAULT_QUEUE_CAPACITY
from ._logger import DEFAULT_EXIT_TIMEOUT, Level, Logger, handle_signals

__version__ = "0.1.0"

__all__ = [
    "Logger",
    "Level",
    "handle_signals",
    "KeeperLoggerHandler",
    "VERBOSE",
    "wire_level",
    "KepmlogError",
    "InvalidInputError",
    "JobIdError",
    "InvalidTokenError",
    "InvalidOptionError",
    "EmptyMessageError",
    "InvalidLevelError",
    "InvalidEventError",
    "ShutDownError",
    "DeniedError",
    "UndeliverableError",
    "ForkedError",
    "DEFAULT_API_BASE",
    "DEFAULT_QUEUE_CAPACITY",
    "DEFAULT_EXIT_TIMEOUT",
    "CORE_VERSION",
    "__version__",
]
