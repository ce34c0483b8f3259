"""Every way a job tool's process ends, in child processes logging to a real devagent: a
termination signal (SIGTERM, SIGHUP), a handler of the tool's own, KEPMLOG_SIGNALS=0, an
uncaught exception, sys.exit(n) and Ctrl+C (SIGINT). Each test counts the arrivals by message
and checks the exit status.

The children print "ready" once their log calls have returned (the records are then accepted,
not necessarily delivered), and the test signals only after reading it."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
from typing import Any

import pytest

from conftest import SIGNAL_PRELUDE, DevAgent, run_python

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

# A child that logs RECORDS records, says so, then waits for a signal (or does what EPILOGUE
# says). PROLOGUE runs before the Logger is created.
CHILD = """
import json, os, signal, sys, threading, time, kepmlog
{prologue}
log = kepmlog.Logger.from_job("ExitPathTool", diagnostics=False, exit_timeout={exit_timeout})
n = int(os.environ["RECORDS"])
for i in range(n):
    log.info("Exit", "record %d" % i)
handler = signal.getsignal(signal.SIGTERM)
print(json.dumps({{"sigterm_handler": getattr(handler, "__qualname__", str(handler)),
                  "sigterm_default": handler is signal.SIG_DFL}}), flush=True)
{epilogue}
"""

# Short sleeps, not one endless wait: Python runs a handler when the main thread is back in the
# interpreter, and a signal that lands between the interpreter's last check and the start of a
# blocking wait (the test signals right after the ready line) would only be seen when that
# wait returns.
BLOCK = "while True:\n    time.sleep(0.1)"


class Child:
    """A Python child process whose stdout and stderr are read as they come."""

    def __init__(self, agent: DevAgent, records: int, *, prologue: str = "", epilogue: str = BLOCK,
                 exit_timeout: float = 5.0, env: dict[str, str] | None = None) -> None:
        code = CHILD.format(prologue=prologue, epilogue=epilogue, exit_timeout=exit_timeout)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SIGNAL_PRELUDE + code, f"--keeper-api-base={agent.api_base}"],
            env=agent.env(RECORDS=str(records), **(env or {})),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: "queue.Queue[str]" = queue.Queue()
        self._stderr: list[str] = []
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self._lines.put), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self._stderr.append), daemon=True),
        ]
        for t in self._threads:
            t.start()

    @staticmethod
    def _pump(stream: Any, put: Any) -> None:
        for line in stream:
            put(line)

    def ready(self, timeout: float = 60.0) -> dict[str, Any]:
        """The child's first stdout line (JSON), printed after its log calls returned."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self.proc.kill()
            raise AssertionError(f"the child never got ready; stderr: {self.stderr()}") from None
        return dict(json.loads(line))

    def wait(self, timeout: float = 60.0) -> int:
        """The exit status (negative: killed by that signal); fails if the child does not end
        within `timeout` (a guard against a hang, not a measure)."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"the child did not end within {timeout} s; stderr: {self.stderr()}") from None
        for t in self._threads:
            t.join(timeout=10)
        return rc

    def stderr(self) -> str:
        return "".join(self._stderr)


def _assert_all_arrived(agent: DevAgent, n: int) -> None:
    msgs = agent.wait_for(n, timeout=30)
    got = sorted(int(m["payload"]["MetaData"]["Message"].split()[1]) for m in msgs)
    assert got == list(range(n)), f"{len(got)} of {n} arrived"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_termination_signal_delivers_all_then_dies_of_it(agent: DevAgent, sig: signal.Signals) -> None:
    child = Child(agent, 10000)
    ready = child.ready()
    assert ready["sigterm_handler"] == "_on_signal", ready
    child.proc.send_signal(sig)
    rc = child.wait()
    assert rc == -sig, (rc, child.stderr())
    _assert_all_arrived(agent, 10000)
    assert "kepmlog" not in child.stderr()


def test_sigterm_waits_for_records_still_queued(agent: DevAgent) -> None:
    # The broker is down while the child logs, so every record is still queued at the signal;
    # back up, the worker reconnects (its backoff is at most 5 s) within the exit timeout.
    agent.command("broker stop")
    child = Child(agent, 200, exit_timeout=60.0)
    child.ready()
    agent.command("broker start")
    child.proc.send_signal(signal.SIGTERM)
    rc = child.wait(timeout=90)
    assert rc == -signal.SIGTERM, (rc, child.stderr())
    _assert_all_arrived(agent, 200)
    assert "record" not in child.stderr()  # none given up


def test_sigterm_with_broker_down_writes_the_records_to_stderr(agent: DevAgent) -> None:
    agent.command("broker stop")
    child = Child(agent, 5, exit_timeout=1.0)
    child.ready()
    child.proc.send_signal(signal.SIGTERM)
    rc = child.wait()
    assert rc == -signal.SIGTERM, (rc, child.stderr())
    err = child.stderr()
    for i in range(5):
        assert f"[Exit] record {i}\n" in err, err  # given up at the deadline: on stderr, not lost


def test_a_handler_of_the_tool_is_kept(agent: DevAgent) -> None:
    # The tool set its own SIGTERM handler before the Logger: kepmlog leaves it, and the tool's
    # sys.exit(7) runs the exit hook, which delivers.
    prologue = (
        "def on_term(signum, frame):\n"
        "    print('tool handler', flush=True)\n"
        "    sys.exit(7)\n"
        "signal.signal(signal.SIGTERM, on_term)\n"
    )
    child = Child(agent, 1000, prologue=prologue)
    ready = child.ready()
    assert ready["sigterm_handler"] == "on_term", ready
    child.proc.send_signal(signal.SIGTERM)
    rc = child.wait()
    assert rc == 7, (rc, child.stderr())
    assert child._lines.get(timeout=10) == "tool handler\n"
    _assert_all_arrived(agent, 1000)


def test_kepmlog_signals_0_installs_nothing(agent: DevAgent) -> None:
    # With the broker down and a 60 s exit timeout, a hook would keep the child alive for a
    # minute and then write the records to stderr; without one, SIGTERM ends it at once and
    # nothing of kepmlog's runs.
    agent.command("broker stop")
    child = Child(agent, 5, exit_timeout=60.0, env={"KEPMLOG_SIGNALS": "0"})
    ready = child.ready()
    assert ready["sigterm_default"] is True, ready
    child.proc.send_signal(signal.SIGTERM)
    rc = child.wait(timeout=30)
    assert rc == -signal.SIGTERM, (rc, child.stderr())
    assert "record" not in child.stderr()


def test_uncaught_exception_delivers_all(agent: DevAgent) -> None:
    child = Child(agent, 1000, epilogue="raise RuntimeError('tool failed')")
    child.ready()
    rc = child.wait()
    assert rc == 1, (rc, child.stderr())
    assert "RuntimeError: tool failed" in child.stderr()
    _assert_all_arrived(agent, 1000)


def test_sys_exit_delivers_all(agent: DevAgent) -> None:
    child = Child(agent, 1000, epilogue="sys.exit(3)")
    child.ready()
    rc = child.wait()
    assert rc == 3, (rc, child.stderr())
    _assert_all_arrived(agent, 1000)


def test_keyboard_interrupt_unwinds_to_the_exit_hook(agent: DevAgent) -> None:
    # kepmlog leaves SIGINT to Python: KeyboardInterrupt unwinds, the atexit hook delivers, and
    # Python (3.8+) then dies of SIGINT. The prologue sets Python's own handler in case the
    # test runs where SIGINT is ignored (a background job), in which Python keeps it ignored.
    prologue = "signal.signal(signal.SIGINT, signal.default_int_handler)"
    epilogue = "assert signal.getsignal(signal.SIGINT) is signal.default_int_handler\n" + BLOCK
    child = Child(agent, 1000, prologue=prologue, epilogue=epilogue)
    child.ready()
    child.proc.send_signal(signal.SIGINT)
    rc = child.wait()
    assert rc == -signal.SIGINT, (rc, child.stderr())
    assert "KeyboardInterrupt" in child.stderr()
    _assert_all_arrived(agent, 1000)


THREAD_MASKS = """
import json, os, kepmlog
log = kepmlog.Logger.from_job("MaskTool", diagnostics=False)
log.info("Mask", "record 0")
assert log.flush(20) == 0
masks = {}
for tid in os.listdir("/proc/self/task"):
    try:  # a short-lived thread may be gone already
        with open(f"/proc/self/task/{tid}/comm") as f:
            name = f.read().strip()
        with open(f"/proc/self/task/{tid}/status") as f:
            status = dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)
    except FileNotFoundError:
        continue
    masks[name if int(tid) != os.getpid() else "main"] = int(status["SigBlk"], 16)
print(json.dumps(masks))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/task")
def test_native_threads_leave_the_signals_to_python(agent: DevAgent) -> None:
    # A process-directed signal taken by kepmlog's worker would only set Python's flag, leaving
    # a main thread asleep in Event.wait() or join() to sleep on: no handler would run.
    proc = run_python(THREAD_MASKS, agent.env(), args=(f"--keeper-api-base={agent.api_base}",))
    assert proc.returncode == 0, proc.stderr
    masks = json.loads(proc.stdout)
    bits = [1 << (sig - 1) for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM)]
    assert "kepmlog-worker" in masks, masks
    for sig_bit in bits:
        assert masks["kepmlog-worker"] & sig_bit, masks
        assert not masks["main"] & sig_bit, masks  # the caller's own mask is put back
    _assert_all_arrived(agent, 1)


API = """
import json, os, signal, sys, threading, kepmlog
from kepmlog import _logger

def name(sig):
    h = signal.getsignal(sig)
    if h is signal.SIG_DFL:
        return "default"
    return "ignore" if h is signal.SIG_IGN else getattr(h, "__qualname__", str(h))

def error_of(f, *a):
    try:
        f(*a)
    except Exception as e:
        return type(e).__name__
    return None

out = {"import": name(signal.SIGTERM)}
opts = dict(diagnostics=False)
# A Logger made on another thread installs nothing (Python sets handlers on the main thread
# only); the main thread's first Logger does.
t = threading.Thread(target=lambda: kepmlog.Logger.from_job("ApiTool", **opts))
t.start(); t.join()
out["thread_logger"] = name(signal.SIGTERM)
log = kepmlog.Logger.from_job("ApiTool", **opts)
out["logger"] = [name(signal.SIGTERM), name(signal.SIGHUP), name(signal.SIGINT) == "default_int_handler"]
kepmlog.handle_signals(False)
out["off"] = [name(signal.SIGTERM), name(signal.SIGHUP)]
kepmlog.Logger.from_job("ApiTool", **opts)
out["off_then_logger"] = name(signal.SIGTERM)
errors = []
t = threading.Thread(target=lambda: errors.append(error_of(kepmlog.handle_signals, True)))
t.start(); t.join()
out["from_thread"] = errors[0]
out["not_bool"] = error_of(kepmlog.handle_signals, 1)
kepmlog.handle_signals(True)
out["on"] = [name(signal.SIGTERM), name(signal.SIGHUP)]
signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the tool's choice since
kepmlog.handle_signals(False)
kepmlog.handle_signals(True)
out["ignored_kept"] = [name(signal.SIGTERM), name(signal.SIGHUP)]
print(json.dumps(out), flush=True)
"""


def test_handle_signals_api(agent: DevAgent) -> None:
    proc = run_python(API, agent.env(), args=(f"--keeper-api-base={agent.api_base}",))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out == {
        "import": "default",  # never at import
        "thread_logger": "default",
        "logger": ["_on_signal", "_on_signal", True],  # SIGINT left to Python
        "off": ["default", "default"],
        "off_then_logger": "default",
        "from_thread": "ValueError",
        "not_bool": "TypeError",
        "on": ["_on_signal", "_on_signal"],
        "ignored_kept": ["_on_signal", "ignore"],  # only a default handler is taken
    }, proc.stderr


def test_kepmlog_signals_0_then_handle_signals_true(agent: DevAgent) -> None:
    code = (
        "import signal, kepmlog\n"
        "log = kepmlog.Logger.from_job('ApiTool', diagnostics=False)\n"
        "before = signal.getsignal(signal.SIGTERM) is signal.SIG_DFL\n"
        "kepmlog.handle_signals(True)\n"  # the call wins over the environment
        "print(before, signal.getsignal(signal.SIGTERM).__qualname__)\n"
    )
    proc = run_python(code, agent.env(KEPMLOG_SIGNALS="0"), args=(f"--keeper-api-base={agent.api_base}",))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "_on_signal"]
