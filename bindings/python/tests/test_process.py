"""Whole processes: delivery at interpreter exit without flush, fork, bounded exit."""

from __future__ import annotations

import time

from conftest import JOB_ID, DevAgent, run_python

TEN_THOUSAND_VIA_HANDLER = """
import logging, sys, kepmlog
logging.basicConfig(level=logging.INFO, handlers=[
    kepmlog.KeeperLoggerHandler(source="ExitTool", category="Bulk", diagnostics=False)])
log = logging.getLogger("bulk")
for i in range(10000):
    log.info("record %d", i)
# no flush, no shutdown: the exit hooks must deliver everything
"""

TEN_THOUSAND_DIRECT = """
import kepmlog
log = kepmlog.Logger.from_job("ExitTool", diagnostics=False)
for i in range(10000):
    log.info("Bulk", "record %d" % i)
"""


def _assert_all_delivered(agent: DevAgent, n: int) -> None:
    msgs = agent.wait_for(n, timeout=30)
    got = sorted(int(m["payload"]["MetaData"]["Message"].split()[1]) for m in msgs)
    assert got == list(range(n))


def test_exit_without_flush_delivers_all_via_handler(agent: DevAgent) -> None:
    proc = run_python(TEN_THOUSAND_VIA_HANDLER, agent.env(), args=(f"--keeper-api-base={agent.api_base}",))
    assert proc.returncode == 0, proc.stderr
    _assert_all_delivered(agent, 10000)


def test_exit_without_flush_delivers_all_direct(agent: DevAgent) -> None:
    proc = run_python(TEN_THOUSAND_DIRECT, agent.env(), args=(f"--keeper-api-base={agent.api_base}",))
    assert proc.returncode == 0, proc.stderr
    _assert_all_delivered(agent, 10000)


FORK = """
import os, sys, kepmlog
log = kepmlog.Logger.from_job("ForkTool", diagnostics=False)
log.info("Fork", "parent before fork")
children = []
for mode in ("flush", "exit"):
    pid = os.fork()
    if pid == 0:
        for i in range(100):
            log.info("Fork", "child-%s %d" % (mode, i))
        # One write per line: the two children run at once, and print() may write a line in
        # pieces (unbuffered stdout, PYTHONUNBUFFERED), which would interleave them.
        os.write(1, ("child %s %s\\n" % (mode, log.client_id)).encode())
        if mode == "flush":
            # os._exit skips interpreter exit hooks: flush first
            os._exit(0 if log.flush(20) == 0 else 3)
        sys.exit(0)  # normal exit: the atexit hook delivers
    children.append(pid)
for pid in children:
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0, status
log.info("Fork", "parent after fork")
print("parent", log.client_id, flush=True)
"""


def test_fork_child_gets_its_own_logger(agent: DevAgent) -> None:
    proc = run_python(FORK, agent.env(), args=(f"--keeper-api-base={agent.api_base}",))
    assert proc.returncode == 0, proc.stderr
    ids = dict(line.rsplit(" ", 1) for line in proc.stdout.split("\n") if line)
    parent_id = ids.pop("parent")
    child_ids = list(ids.values())
    assert len(set(child_ids + [parent_id])) == 3
    assert all(c.startswith(f"{JOB_ID}_python_") for c in child_ids)
    msgs = [m["payload"]["MetaData"]["Message"] for m in agent.wait_for(202)]
    assert len(msgs) == 202
    assert "parent before fork" in msgs and "parent after fork" in msgs
    for mode in ("flush", "exit"):
        assert sorted(int(m.split()[1]) for m in msgs if m.startswith(f"child-{mode} ")) == list(range(100))
    clients = agent.clients_once(lambda ids: all(c in ids for c in child_ids + [parent_id]))
    assert parent_id in clients and all(c in clients for c in child_ids)


def test_exit_with_broker_down_is_bounded(agent: DevAgent) -> None:
    agent.command("broker stop")
    code = (
        "import kepmlog\n"
        "log = kepmlog.Logger.from_job('ExitTool', exit_timeout=1.0)\n"
        "for i in range(100):\n"
        "    log.info('Bulk', 'undeliverable %d' % i)\n"
    )
    start = time.monotonic()
    proc = run_python(code, agent.env(), args=(f"--keeper-api-base={agent.api_base}",), timeout=60)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    assert elapsed < 1.0 + 10.0, elapsed
    assert "kepmlog:" in proc.stderr  # the loss is reported, not silent
