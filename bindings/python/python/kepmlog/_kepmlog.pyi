# Type stubs of the native module kepmlog._kepmlog (Rust, pyo3). Use the kepmlog package's
# Logger and KeeperLoggerHandler; this module is their engine.
import logging
from typing import Any, Optional, Sequence, Tuple, Union, final

DEFAULT_QUEUE_CAPACITY: int
DEFAULT_API_BASE: str
#: Seconds: the core's timeout for a logger closed without one (Python's exit_timeout).
DEFAULT_CLOSE_TIMEOUT: float
CORE_VERSION: str

@final
class NativeLogger:
    def __init__(
        self,
        source: Optional[str],
        default_category: str,
        job_id: Optional[str],
        token: Optional[str],
        api_base: Optional[str],
        ca_bundle: Optional[str],
        broker: Union[str, Tuple[str, int], None],
        queue_capacity: int,
        overflow: str,
        block_timeout: float,
        event_topic: Optional[str],
        args: Optional[Sequence[str]],
        exit_timeout: float,
        diagnostics: bool,
        fallback: Optional[str] = None,
        undelivered_to_stderr: bool = True,
        spool_dir: Optional[str] = None,
    ) -> None: ...
    def log(
        self, level: int, category: str, message: str, correlation_id: str, context: str
    ) -> bool: ...
    def log_record(
        self, record: logging.LogRecord, default_category: str, message: Optional[str] = None
    ) -> bool: ...
    def event_json(self, json: str) -> bool: ...
    # Both return the number undelivered at the deadline; they raise DeniedError /
    # UndeliverableError (with undelivered, denied, denied_topics, undeliverable) instead
    # when records were denied or given up since the previous flush or shutdown.
    def flush(self, timeout: float) -> int: ...
    def shutdown(self, timeout: float) -> int: ...
    def stats(self) -> dict[str, Any]: ...
    @property
    def client_id(self) -> str: ...
    @property
    def job_id(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def event_topic(self) -> str: ...
    @property
    def is_shut_down(self) -> bool: ...
    @property
    def writes_to_stderr(self) -> bool: ...

def parse_level(name: str) -> int: ...
def safe_token(name: str) -> str: ...
def script_token(script: Optional[str], interpreter: str = "python") -> str: ...
def fork_prepare() -> bool: ...
def fork_parent() -> None: ...
def fork_child() -> None: ...
def build_metadata(
    level: int,
    source: str,
    category: str,
    message: str,
    correlation_id: str = "",
    context: str = "",
) -> str: ...
