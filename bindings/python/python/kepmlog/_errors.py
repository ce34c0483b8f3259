"""Exceptions raised by kepmlog. Every message says what to change."""

from __future__ import annotations

__all__ = [
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
]


class KepmlogError(Exception):
    """Base class of every kepmlog error. ``kind`` is the core's stable short name
    (``"empty_message"``, ``"shut_down"``, ``"denied"``, ...)."""

    kind: str = "internal"

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind


class InvalidInputError(KepmlogError, ValueError):
    """Bad input to a constructor or a log call (a ``ValueError``)."""


class JobIdError(InvalidInputError):
    """``KEEPER_JOB_ID`` is missing (``kind == "missing_job_id"``: declare ``mqttTopics`` in the
    job JSON or pass ``job_id``) or unusable (``"invalid_job_id"``: job ids use hyphens)."""

    kind = "invalid_job_id"


class InvalidTokenError(InvalidInputError):
    """An explicit ``token`` that cannot be used in an MQTT client id."""

    kind = "invalid_token"


class InvalidOptionError(InvalidInputError):
    """An option kepmlog cannot use (queue capacity 0, unreadable CA bundle, ...)."""

    kind = "invalid_option"


class EmptyMessageError(InvalidInputError):
    """The message is empty or only white space: KeeperLogger rejects those."""

    kind = "empty_message"


class InvalidLevelError(InvalidInputError):
    """Not one of Debug, Info, Warning, Error, Critical, Verbose (0..5)."""

    kind = "invalid_level"


class InvalidEventError(InvalidInputError):
    """An event must be one JSON object (a ``dict`` of JSON-serializable values)."""

    kind = "invalid_event"


class ShutDownError(KepmlogError):
    """The logger was shut down: create a new one to log again."""

    kind = "shut_down"


class _DeliveryError(KepmlogError):
    """What ``flush``/``shutdown`` could not deliver, set by the native module from the core's
    outcome: ``undelivered`` (not acknowledged at the deadline), ``denied`` (refused by the
    broker) with ``denied_topics``, ``undeliverable`` (given up, e.g. larger than the broker's
    Maximum Packet Size). The counts are of records since the previous flush or shutdown."""

    undelivered: int = 0
    denied: int = 0
    denied_topics: list[str]
    undeliverable: int = 0

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message, kind)
        self.denied_topics = []


class DeniedError(_DeliveryError, PermissionError):
    """The broker refused publishes since the last flush: add the topic to
    ``mqttTopics.allowedPublications`` in the job JSON. Raised by ``flush`` and ``shutdown``."""

    kind = "denied"


class UndeliverableError(_DeliveryError):
    """Records were given up since the last flush for another reason than the deadline (a
    record larger than the broker's Maximum Packet Size): log shorter messages and contexts.
    Raised by ``flush`` and ``shutdown``."""

    kind = "undeliverable"


class ForkedError(KepmlogError):
    """A native logger was used in a forked child (kepmlog.Logger re-creates itself there)."""

    kind = "forked"
