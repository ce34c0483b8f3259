"""Test harness: a real `kepm-devagent serve` (Plugin Settings over HTTPS + Mosquitto over TLS)
per test, speaking JSON lines."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

REPO = Path(__file__).resolve().parents[3]
JOB_ID = "py-test"
EVENT_TOPIC = f"Jobs/{JOB_ID}/events"


def devagent_path() -> str:
    path = os.environ.get("KEPM_DEVAGENT") or str(REPO / "target" / "debug" / "kepm-devagent")
    if not os.access(path, os.X_OK):
        pytest.fail(
            f"kepm-devagent not found at {path}: run `cargo build -p kepm-devagent` "
            "or set KEPM_DEVAGENT"
        )
    return path


class DevAgent:
    """One `kepm-devagent serve` process; collects what its broker received."""

    def __init__(self, *extra: str, allow: tuple[str, ...] = ("KeeperLogger", EVENT_TOPIC)) -> None:
        # --deny-visible: these tests cover kepmlog's handling of a denial it can see (PUBACK
        # 0x87); the agent's usual silent drop is the devagent's own tests' concern.
        args = [devagent_path(), "serve", "--deny-visible"]
        for topic in allow:
            args += ["--allow", topic]
        args += list(extra)
        env = dict(os.environ, TMPDIR="/tmp")
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
            bufsize=1,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("kepm-devagent exited before it was ready")
        self.ready: dict[str, Any] = json.loads(line)
        assert self.ready["event"] == "ready", self.ready
        self.api_base: str = self.ready["api_base"]
        self.ca: str = self.ready["ca"]
        self.broker = (self.ready["broker_host"], self.ready["broker_port"])
        self._messages: list[dict[str, Any]] = []
        self._clients: list[str] = []
        self._replies: "queue.Queue[dict[str, Any]]" = queue.Queue()
        self._cv = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            kind = ev.get("event")
            with self._cv:
                if kind == "message":
                    self._messages.append(ev)
                elif kind == "client":
                    self._clients.append(ev["client_id"])
                elif kind in ("ok", "error"):
                    self._replies.put(ev)
                self._cv.notify_all()

    def env(self, **extra: str) -> dict[str, str]:
        """Environment of a job task started by the agent."""
        return dict(os.environ, KEEPER_JOB_ID=JOB_ID, KEEPER_JOB_NAME=JOB_ID, **extra)

    def messages(self, topic: str = "KeeperLogger") -> list[dict[str, Any]]:
        with self._cv:
            return [m for m in self._messages if m["topic"] == topic]

    def metadata(self, count: int = 0, timeout: float = 20.0) -> list[dict[str, Any]]:
        """MetaData of the KeeperLogger messages, after waiting for at least `count`."""
        return [m["payload"]["MetaData"] for m in self.wait_for(count, "KeeperLogger", timeout)]

    def clients(self) -> list[str]:
        with self._cv:
            return list(self._clients)

    def clients_once(self, done: Callable[[list[str]], bool], timeout: float = 20.0) -> list[str]:
        """The client ids the broker saw connect, once `done(ids)` holds (or at the timeout).
        They come from the broker's log, which may trail the messages the capture received."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                got = list(self._clients)
                left = deadline - time.monotonic()
                if done(got) or left <= 0:
                    return got
                self._cv.wait(min(left, 0.5))

    def connections_of(self, client_id: str, at_least: int = 1, timeout: float = 20.0) -> int:
        """How many times the broker saw `client_id` connect, after waiting until it saw it at
        least `at_least` times and a moment more (the connection lines come from the broker's
        log and may trail the messages)."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while self._clients.count(client_id) < at_least:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(min(left, 0.5))
        time.sleep(0.5)
        with self._cv:
            return self._clients.count(client_id)

    def wait_for(self, count: int, topic: str = "KeeperLogger", timeout: float = 20.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                got = [m for m in self._messages if m["topic"] == topic]
                left = deadline - time.monotonic()
                if len(got) >= count or left <= 0:
                    return got
                self._cv.wait(min(left, 0.5))

    def wait_until(
        self, done: Callable[[list[dict[str, Any]]], bool], topic: str = "KeeperLogger", timeout: float = 20.0
    ) -> list[dict[str, Any]]:
        """The messages on `topic` once `done(messages)` holds (or at the timeout): for tests
        that know which message comes last but not how many come before it. The capture
        subscriber receives after the tool has exited, so a count of one is not enough."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                got = [m for m in self._messages if m["topic"] == topic]
                left = deadline - time.monotonic()
                if done(got) or left <= 0:
                    return got
                self._cv.wait(min(left, 0.5))

    def command(self, cmd: str, timeout: float = 20.0) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        reply = self._replies.get(timeout=timeout)
        assert reply["event"] == "ok", reply
        return reply

    def logger_options(self, **extra: Any) -> dict[str, Any]:
        opts: dict[str, Any] = dict(job_id=JOB_ID, api_base=self.api_base, diagnostics=False)
        opts.update(extra)
        return opts

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)


@pytest.fixture
def agent() -> Iterator[DevAgent]:
    a = DevAgent()
    try:
        yield a
    finally:
        a.stop()


@pytest.fixture
def make_agent() -> Iterator[Any]:
    made: list[DevAgent] = []

    def make(*extra: str, **kw: Any) -> DevAgent:
        a = DevAgent(*extra, **kw)
        made.append(a)
        return a

    try:
        yield make
    finally:
        for a in made:
            a.stop()


# Children start with the signal dispositions the agent gives a task (SIGHUP and SIGTERM at
# their defaults, SIGINT Python's own), whatever this test run inherited: under `nohup` or a
# shell's background job SIGHUP or SIGINT arrive ignored, an ignored disposition survives exec,
# and kepmlog rightly keeps an ignored signal ignored.
SIGNAL_PRELUDE = (
    "import signal as _s; _s.signal(_s.SIGHUP, _s.SIG_DFL); _s.signal(_s.SIGTERM, _s.SIG_DFL); "
    "_s.signal(_s.SIGINT, _s.default_int_handler); del _s\n"
)


def run_python(code: str, env: dict[str, str], timeout: float = 120.0, args: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Runs `code` in a fresh interpreter (same venv, signals as SIGNAL_PRELUDE sets them) and
    returns the finished process."""
    return subprocess.run(
        [sys.executable, "-c", SIGNAL_PRELUDE + code, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
