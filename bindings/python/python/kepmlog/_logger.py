"""kepmlog.Logger: the Python face of the Rust core's logger."""

from __future__ import annotations

import atexit
import enum
import json
import os
import signal
import sys
import threading
import weakref
from collections.abc import Mapping
from typing import Any, Optional, Sequence, Tuple, Union

from . import _errors
from . import _kepmlog as _native
from ._kepmlog import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_QUEUE_CAPACITY,
    NativeLogger,
    parse_level,
    script_token,
)

__all__ = ["Level", "Logger", "LevelLike", "DEFAULT_EXIT_TIMEOUT", "handle_signals"]

#: Seconds each live logger may take to deliver its queue when the interpreter exits (and the
#: default timeout of flush and shutdown): the core's close timeout, the same in every binding.
DEFAULT_EXIT_TIMEOUT: float = DEFAULT_CLOSE_TIMEOUT


class Level(enum.IntEnum):
    """The six KeeperLogger levels with their wire numbers (``MetaData.LogLevel``).

    ``VERBOSE`` is the *least* severe level although its number is the highest."""

    DEBUG = 0
    INFO = 1
    WARNING = 2
    ERROR = 3
    CRITICAL = 4
    VERBOSE = 5


LevelLike = Union[Level, int, str]


def _level_number(level: LevelLike) -> int:
    if isinstance(level, bool):
        raise TypeError("level must be an int (0..5), a str or kepmlog.Level, not bool")
    if isinstance(level, int):
        if 0 <= level <= 5:
            return int(level)
        # The core names the levels in its error: ask it about the number's text.
        return parse_level(str(level))
    return parse_level(level)


def _check_broker_type(broker: object) -> None:
    """Only the type: the native module has the core parse and check the value."""
    if broker is None or isinstance(broker, str):
        return
    if isinstance(broker, tuple) and len(broker) == 2:
        host, port = broker
        if isinstance(host, str) and isinstance(port, int) and not isinstance(port, bool):
            return
    raise TypeError(f"broker must be 'HOST:PORT' or a (host, port) tuple, not {broker!r}")


def _seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    return float(value)


# The asynchronous signals a Python program may handle. The native worker threads start with
# them blocked: a process-directed signal is then delivered to a Python thread. Taken by a native
# thread, it would only set Python's flag and leave the main thread asleep in a wait (Event.wait,
# join) that nothing interrupts, so neither kepmlog's handler nor the tool's, nor Ctrl+C's
# KeyboardInterrupt, would run until that wait returned.
_NATIVE_THREADS_BLOCK: "frozenset[signal.Signals]" = (
    frozenset(
        getattr(signal, name)
        for name in ("SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGCHLD")
        if hasattr(signal, name)
    )
    if hasattr(signal, "pthread_sigmask")
    else frozenset()
)


def _new_native(config: "dict[str, Any]") -> NativeLogger:
    """The native logger, whose worker thread (started here, when the connection is new)
    inherits this thread's signal mask with ``_NATIVE_THREADS_BLOCK`` added; a signal that
    arrives meanwhile stays pending and is delivered when the mask is put back."""
    if not _NATIVE_THREADS_BLOCK:
        return NativeLogger(**config)
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _NATIVE_THREADS_BLOCK)
    try:
        return NativeLogger(**config)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


# Live loggers, for interpreter exit, termination signals and fork. Weak: a logger the program
# dropped is shut down by the native object's finalizer instead. Re-entrant: the signal hook
# runs in the main thread between two bytecodes, possibly while that thread holds the lock.
_live: "weakref.WeakSet[Logger]" = weakref.WeakSet()
_live_lock = threading.RLock()
_exiting = False


class Logger:
    """A KeeperLogger client for one job task.

    Logging validates the record, builds its exact JSON and hands it to a bounded queue; a
    native worker thread (which never takes the GIL) discovers the broker through the agent's
    Plugin Settings API, connects over TLS MQTT v5 and publishes with QoS 1. Creating a logger
    never blocks on the network.

    The log methods return ``True`` when the record was queued and ``False`` when the queue
    was full and the record was dropped (counted in ``stats()["dropped"]``); they never block
    unless ``overflow="block"``. They raise ``EmptyMessageError`` (a ``ValueError``) for an
    empty message, ``TypeError`` for arguments that are not ``str``, and ``ShutDownError``
    after :meth:`shutdown`.

    Unset options come from the job's environment like the Rust core: job id from
    ``KEEPER_JOB_ID``, API base from ``--keeper-api-base`` in ``sys.argv``, token from the
    script name. At interpreter exit, and on SIGTERM or SIGHUP (see :func:`handle_signals`),
    every live logger is shut down with a bounded ``exit_timeout``; in a child created by ``os.fork()`` the logger re-creates its native
    half (new client id with the child's pid) so the child logs on its own connection.

    Args:
        source: ``MetaData.Source``, the tool's name in the logs (default: the token).
        job_id: the job's id (default: ``KEEPER_JOB_ID``). Hyphens, never underscores.
        token: short name of the binary in the client id (default: the script's name).
        api_base: agent HTTPS API base (default: ``--keeper-api-base`` in ``sys.argv``, else
            ``https://127.0.0.1:6889``).
        ca_bundle: PEM file of CAs to trust; without it, verification is skipped for loopback
            hosts only.
        broker: ``"host:port"`` or ``(host, port)``: skip Plugin Settings discovery.
        queue_capacity: records the queue holds before ``overflow`` applies.
        overflow: ``"drop"`` (default: drop new records when full, count them) or
            ``"block"`` (wait up to ``block_timeout`` seconds for room, GIL released).
        event_topic: topic of :meth:`event` (default ``Jobs/{jobId}/events``).
        default_category: ``MetaData.Category`` when a call passes ``""``.
        exit_timeout: seconds allowed to deliver the queue at interpreter exit, on a
            termination signal, or when the logger is garbage-collected without
            :meth:`shutdown`.
        diagnostics: print kepmlog's own warnings (``kepmlog: ...``) on stderr.
        fallback: what to do without a job id: ``"error"`` (raise ``JobIdError``,
            which names the fix) or ``"stderr"`` (create the logger anyway, print one
            ``kepmlog:`` warning and write every record as a text line on stderr, which the
            agent captures as the task's output). Default: ``KEPMLOG_FALLBACK``, else
            ``"error"``.
        undelivered_to_stderr: at shutdown (or exit), write the records still undelivered at
            the deadline to stderr as text lines (the first 1,000, then a count). Default True.
        spool_dir: the crash-safe spool: every accepted record is also written to a file under
            this directory before the log call returns, and what a killed run, or one whose
            broker never came up, did not deliver is sent by the job's next run. Default:
            ``KEPMLOG_SPOOL_DIR``, else no spool. It must be this user's and writable by nobody
            else (created 0700 when missing).
        args: process arguments to read ``--keeper-api-base`` from (default ``sys.argv``).
    """

    __slots__ = ("_native", "_config", "_exit_timeout", "__weakref__")

    def __init__(
        self,
        source: Optional[str] = None,
        *,
        job_id: Optional[str] = None,
        token: Optional[str] = None,
        api_base: Optional[str] = None,
        ca_bundle: Union[str, "os.PathLike[str]", None] = None,
        broker: Union[str, Tuple[str, int], None] = None,
        queue_capacity: int = DEFAULT_QUEUE_CAPACITY,
        overflow: str = "drop",
        block_timeout: float = 1.0,
        event_topic: Optional[str] = None,
        default_category: str = "General",
        exit_timeout: float = DEFAULT_EXIT_TIMEOUT,
        diagnostics: bool = True,
        args: Optional[Sequence[str]] = None,
        fallback: Optional[str] = None,
        undelivered_to_stderr: bool = True,
        spool_dir: Union[str, "os.PathLike[str]", None] = None,
    ) -> None:
        # Types only: the values (capacity, overflow name, broker, topics) are the core's to
        # check, so its messages are the same in every binding.
        if fallback is not None and not isinstance(fallback, str):
            raise TypeError(f"fallback must be 'error' or 'stderr', not {type(fallback).__name__}")
        if not isinstance(overflow, str):
            raise TypeError(f"overflow must be 'drop' or 'block', not {type(overflow).__name__}")
        if isinstance(queue_capacity, bool) or not isinstance(queue_capacity, int):
            raise TypeError(f"queue_capacity must be an int, not {type(queue_capacity).__name__}")
        _check_broker_type(broker)
        argv = list(sys.argv if args is None else args)
        if token is None:
            token = script_token(argv[0] if argv else None, "python")
        self._exit_timeout = _seconds("exit_timeout", exit_timeout)
        self._config = dict(
            source=source,
            default_category=default_category,
            job_id=job_id,
            token=token,
            api_base=api_base,
            ca_bundle=None if ca_bundle is None else os.fspath(ca_bundle),
            broker=broker,
            queue_capacity=queue_capacity,
            overflow=overflow,
            block_timeout=_seconds("block_timeout", block_timeout),
            event_topic=event_topic,
            args=argv,
            exit_timeout=self._exit_timeout,
            diagnostics=bool(diagnostics),
            fallback=fallback,
            undelivered_to_stderr=bool(undelivered_to_stderr),
            spool_dir=None if spool_dir is None else os.fspath(spool_dir),
        )
        self._native = _new_native(self._config)
        with _live_lock:
            _live.add(self)
        _install_signal_hooks_once()

    @classmethod
    def from_job(cls, source: Optional[str] = None, **options: Any) -> "Logger":
        """A logger configured the way the agent starts a job task: job id from
        ``KEEPER_JOB_ID``, API base from ``--keeper-api-base`` in ``sys.argv``, token from the
        script name. ``options`` override any of the constructor's keywords."""
        return cls(source, **options)

    # -- logging -------------------------------------------------------------------------

    def log(
        self,
        level: LevelLike,
        category: str,
        message: str,
        correlation_id: str = "",
        context: str = "",
    ) -> bool:
        """Queues one record at ``level`` (a :class:`Level`, 0..5, or a name such as
        ``"warning"``). Returns ``False`` when the queue was full (record dropped)."""
        return self._native.log(_level_number(level), category, message, correlation_id, context)

    def debug(self, category: str, message: str, correlation_id: str = "", context: str = "") -> bool:
        """Queues a Debug record. See :meth:`log`."""
        return self._native.log(0, category, message, correlation_id, context)

    def info(self, category: str, message: str, correlation_id: str = "", context: str = "") -> bool:
        """Queues an Info record. See :meth:`log`."""
        return self._native.log(1, category, message, correlation_id, context)

    def warning(self, category: str, message: str, correlation_id: str = "", context: str = "") -> bool:
        """Queues a Warning record. See :meth:`log`."""
        return self._native.log(2, category, message, correlation_id, context)

    def error(self, category: str, message: str, correlation_id: str = "", context: str = "") -> bool:
        """Queues an Error record. See :meth:`log`."""
        return self._native.log(3, category, message, correlation_id, context)

    def critical(self, category: str, message: str, correlation_id: str = "", context: str = "") -> bool:
        """Queues a Critical record. See :meth:`log`."""
        return self._native.log(4, category, message, correlation_id, context)

    def verbose(self, category: str, message: str, correlation_id: str = "", context: str = "") -> bool:
        """Queues a Verbose record (the least severe level). See :meth:`log`."""
        return self._native.log(5, category, message, correlation_id, context)

    def event(self, event: Mapping[str, Any]) -> bool:
        """Publishes a job progress event (a ``dict`` of JSON values) to :attr:`event_topic`,
        QoS 1. The topic must be in the job's ``allowedPublications``. Returns ``False`` when
        the queue was full."""
        if not isinstance(event, Mapping):
            raise TypeError(f"event must be a dict (one JSON object), not {type(event).__name__}")
        try:
            text = json.dumps(event, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as e:
            raise _errors.InvalidEventError(
                f"invalid event: {e}; pass one JSON object", "invalid_event"
            ) from e
        return self._native.event_json(text)

    # -- delivery ------------------------------------------------------------------------

    def flush(self, timeout: float = DEFAULT_EXIT_TIMEOUT) -> int:
        """Waits (GIL released) until every record accepted before the call is acknowledged by
        the broker, or ``timeout`` seconds. Returns how many are still undelivered (0: all);
        they stay queued. Reaching the deadline is not an error.

        Raises ``DeniedError`` (a ``PermissionError``) when the broker refused publishes since
        the last flush (add the topic to ``mqttTopics.allowedPublications``), else
        ``UndeliverableError`` when records were given up (larger than the broker's Maximum
        Packet Size). Both carry ``undelivered``, ``denied``, ``denied_topics`` and
        ``undeliverable``."""
        return self._native.flush(_seconds("timeout", timeout))

    def shutdown(self, timeout: float = DEFAULT_EXIT_TIMEOUT) -> int:
        """Flushes for up to ``timeout`` seconds, disconnects and stops the worker (GIL
        released). Idempotent. Returns the number of records given up at the deadline (0: all
        delivered; the others are written to stderr unless ``undelivered_to_stderr=False``).
        Raises like :meth:`flush` for denials and given-up records since the last flush (the
        logger is shut down all the same). Later log calls raise ``ShutDownError``."""
        try:
            return self._native.shutdown(_seconds("timeout", timeout))
        finally:
            with _live_lock:
                _live.discard(self)

    close = shutdown

    def stats(self) -> "dict[str, Any]":
        """Counters: accepted, delivered, dropped, denied, failed, printed, pending,
        recovered, spool_dropped, reconnects, connected, last_error, broker, client_id.
        ``accepted = delivered + denied + failed + pending``. ``printed``: records written to
        stderr as text lines (every record with ``fallback="stderr"`` and no job id, none of
        them ``accepted``; else those undelivered at shutdown, also counted in ``failed``).
        ``recovered``: records an earlier run of the job left in the spool, sent by this logger
        first (part of ``accepted``); ``spool_dropped``: records the spool's cap removed from
        disk before they were delivered."""
        return self._native.stats()

    @property
    def client_id(self) -> str:
        """``{jobId}_{token}_{pid}`` as sent to the broker."""
        return self._native.client_id

    @property
    def job_id(self) -> str:
        return self._native.job_id

    @property
    def source(self) -> str:
        """``MetaData.Source`` of this logger's records."""
        return self._native.source

    @property
    def event_topic(self) -> str:
        return self._native.event_topic

    @property
    def is_shut_down(self) -> bool:
        return self._native.is_shut_down

    @property
    def writes_to_stderr(self) -> bool:
        """True when records go to stderr instead of KeeperLogger (``fallback="stderr"`` and
        no job id)."""
        return self._native.writes_to_stderr

    def __enter__(self) -> "Logger":
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            self.shutdown(self._exit_timeout)
        except (_errors.DeniedError, _errors.UndeliverableError):
            # Raising here would replace the exception leaving the with block; the core has
            # reported the denial on stderr (unless diagnostics are off) and counted it.
            if exc_type is None:
                raise

    def __repr__(self) -> str:
        return f"<kepmlog.Logger client_id={self.client_id!r} source={self.source!r}>"

    def _recreate_in_child(self) -> None:
        if self._native.is_shut_down:
            return
        try:
            self._native = _new_native(self._config)
        except Exception as e:  # never break the fork itself
            print(f"kepmlog: cannot re-create the logger in the forked child: {e}", file=sys.stderr)


def resolve_logger(logger: Optional[Logger], logger_options: Mapping[str, Any]) -> Tuple[Logger, bool]:
    """The logger an adapter (handler, processor, sink) sends to, and whether it owns it: the
    one given, or one it creates with :meth:`Logger.from_job` from Logger keywords; never
    both."""
    if logger is None:
        return Logger.from_job(**logger_options), True
    if not isinstance(logger, Logger):
        raise TypeError(f"logger must be a kepmlog.Logger, not {type(logger).__name__}")
    if logger_options:
        raise TypeError(
            "pass either a logger or Logger keywords, not both: " + ", ".join(sorted(logger_options))
        )
    return logger, False


def _before_fork() -> None:
    # A worker in its start-up may be inside a one-time initialisation (ureq, rustls) that the
    # child would inherit half-done and hang on: wait for it (bounded) before the fork.
    _native.fork_prepare()


def _after_fork_in_child() -> None:
    global _live_lock
    _native.fork_child()
    # Another thread may have held the lock at fork time; the child has only this thread.
    _live_lock = threading.RLock()
    for logger in list(_live):
        logger._recreate_in_child()


def _shutdown_all(when: str) -> None:
    """Shuts every live logger down, each bounded by its ``exit_timeout``: at interpreter exit
    and on a termination signal. Never raises."""
    global _exiting
    _exiting = True
    with _live_lock:
        loggers = list(_live)
    for logger in loggers:
        try:
            logger.shutdown(logger._exit_timeout)
        except (_errors.DeniedError, _errors.UndeliverableError):
            # Nobody is left to catch it, and the core has already written the denial or the
            # given-up records on stderr (its diagnostics), where the agent captures them.
            pass
        except Exception as e:  # exit must go on
            print(f"kepmlog: shutdown at {when} failed: {e}", file=sys.stderr)


def _shutdown_all_at_exit() -> None:
    _shutdown_all("exit")


def is_exiting() -> bool:
    """True once the interpreter-exit hook (or the signal hook) has shut the loggers down."""
    return _exiting


# -- termination signals -------------------------------------------------------------------
#
# The default action of SIGTERM and SIGHUP ends the process without running atexit hooks, so
# what is queued would be lost. kepmlog takes over such a signal only while its handler is the
# default one: it shuts the loggers down as at exit, then restores the default and raises the
# signal again, so the process still dies of it (status -15, shell 143). SIGINT is left alone:
# Python's default handler raises KeyboardInterrupt, which unwinds to the atexit hook.

#: The signals the hook takes, those of them the platform has. None on Windows, where a task
#: is ended by TerminateProcess, which nothing in the process can see.
_HOOK_SIGNALS: "tuple[signal.Signals, ...]" = (
    ()
    if sys.platform == "win32"
    else tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
)
# handle_signals()'s choice; None: KEPMLOG_SIGNALS decides (any value but 0, false, no, off
# means on).
_signals_choice: Optional[bool] = None
# Whether a Logger was created (in any thread), and whether the main thread has been through
# the lazy install (the first Logger it created, or handle_signals(True) after a Logger).
_logger_created = False
_signals_tried = False
# The signals whose handler kepmlog set (and would put back to the default).
_signals_installed: "set[int]" = set()


def _signals_enabled() -> bool:
    if _signals_choice is not None:
        return _signals_choice
    value = os.environ.get("KEPMLOG_SIGNALS", "").strip().lower()
    return value not in ("0", "false", "no", "off")


def _on_signal(signum: int, frame: object) -> None:
    # The default first: a second signal during the delivery ends the process at once.
    signal.signal(signum, signal.SIG_DFL)
    _signals_installed.discard(signum)
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    try:
        _shutdown_all(name)
    finally:
        # Die of the signal as its default action would have (exit status -signum, 128+n in
        # a shell), whatever happened above: the process was asked to end.
        os.kill(os.getpid(), signum)


def _install_signal_hooks() -> None:
    """Takes every hook signal whose handler is the default. Main thread only."""
    global _signals_tried
    _signals_tried = True
    for sig in _HOOK_SIGNALS:
        if signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, _on_signal)
            _signals_installed.add(sig)


def _uninstall_signal_hooks() -> None:
    """Puts the default back where kepmlog's handler is still the one set. Main thread only."""
    for sig in list(_signals_installed):
        if signal.getsignal(sig) is _on_signal:
            signal.signal(sig, signal.SIG_DFL)
        _signals_installed.discard(sig)


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _install_signal_hooks_once() -> None:
    """Called by every new Logger: the hook goes in at the first one created on the main
    thread (never at import, never from another thread, where Python cannot set handlers)."""
    global _logger_created, _signals_tried
    _logger_created = True
    if _signals_tried or not _on_main_thread():
        return
    _signals_tried = True
    if not _signals_enabled():
        return
    try:
        _install_signal_hooks()
    except (ValueError, OSError) as e:  # e.g. not the main interpreter: a Logger all the same
        print(f"kepmlog: cannot hook termination signals: {e}", file=sys.stderr)


def handle_signals(enabled: bool) -> None:
    """Turns kepmlog's termination-signal hook on or off for the whole process.

    On (the default, unless ``KEPMLOG_SIGNALS=0`` is set): when the first :class:`Logger` is
    created on the main thread, kepmlog takes SIGTERM and SIGHUP where their handler is still
    the default one. On such a signal it shuts every live logger down (each bounded by its
    ``exit_timeout``, as at interpreter exit), then restores the default handler and raises
    the signal again, so the process still ends killed by it. A handler the program set
    itself is never replaced. SIGINT is left to Python (``KeyboardInterrupt`` unwinds to the
    exit hook); nothing is hooked on Windows.

    ``handle_signals(False)`` puts the default back on the signals kepmlog took and keeps it
    from taking any; ``handle_signals(True)`` takes them at once if a Logger exists, else at
    the first one. Either wins over ``KEPMLOG_SIGNALS``. Setting a handler is only possible
    on the main thread: from another thread, a call that would change one raises
    ``ValueError``.
    """
    global _signals_choice
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled must be a bool, not {type(enabled).__name__}")
    changes = _logger_created if enabled else bool(_signals_installed)
    if changes and not _on_main_thread():
        raise ValueError("kepmlog.handle_signals() sets signal handlers: call it from the main thread")
    _signals_choice = enabled
    if not changes:
        return
    if enabled:
        _install_signal_hooks()
    else:
        _uninstall_signal_hooks()


atexit.register(_shutdown_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_native.fork_parent,
        after_in_child=_after_fork_in_child,
    )
