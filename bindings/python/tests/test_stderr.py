"""stderr as the last resort, in whole processes: a failed handler leaves nothing behind,
fallback="stderr" without a job id, and records undelivered at shutdown."""

from __future__ import annotations

import os
import re

from conftest import JOB_ID, DevAgent, run_python

# 2026-12-02T01:23:45.678Z and one space
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")


def _no_job_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KEEPER_JOB_ID", "KEPMLOG_FALLBACK")}
    env.update(extra)
    return env


def _records(stderr: str) -> list[str]:
    """The record lines of stderr, without their timestamps."""
    out = []
    for line in stderr.splitlines():
        if line.startswith("kepmlog:"):
            continue
        assert TIME.match(line), line
        out.append(TIME.sub("", line))
    return out


FAILING_HANDLER = """
import logging, kepmlog
logging.basicConfig(handlers=[kepmlog.KeeperLoggerHandler(source="SecretScanner")])
"""


def test_a_handler_that_fails_to_build_leaves_no_traceback_at_exit() -> None:
    proc = run_python(FAILING_HANDLER, _no_job_env())
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("Traceback") == 1, proc.stderr
    assert "JobIdError" in proc.stderr and "mqttTopics" in proc.stderr, proc.stderr
    assert "Exception ignored" not in proc.stderr, proc.stderr
    assert "AttributeError" not in proc.stderr, proc.stderr


BAD_LEVEL_HANDLER = """
import logging, kepmlog
try:
    kepmlog.KeeperLoggerHandler(source="T", job_id="j", broker="127.0.0.1:1", level="NOPE")
except ValueError as e:
    print("refused:", e)
"""


def test_a_handler_refused_after_its_logger_was_made_leaves_nothing_behind() -> None:
    proc = run_python(BAD_LEVEL_HANDLER, _no_job_env())
    assert proc.returncode == 0, proc.stderr
    assert "refused:" in proc.stdout
    assert proc.stderr == "", proc.stderr


TEN_BY_HAND = """
import logging, kepmlog
logging.basicConfig(level=logging.INFO, handlers=[kepmlog.KeeperLoggerHandler(source="SecretScanner")])
log = logging.getLogger("scan")
for i in range(10):
    log.warning("Possible secret in file%d.go", i, extra={"category": "Finding"})
direct = kepmlog.Logger(source="Other")
assert direct.writes_to_stderr
direct.event({"phase": "done"})
"""


def test_fallback_stderr_without_a_job_id_writes_each_record_once() -> None:
    proc = run_python(TEN_BY_HAND, _no_job_env(KEPMLOG_FALLBACK="stderr"))
    assert proc.returncode == 0, proc.stderr
    warnings = [l for l in proc.stderr.splitlines() if l.startswith("kepmlog:")]
    assert len(warnings) == 1, proc.stderr
    assert "KEEPER_JOB_ID is not set" in warnings[0] and "fallback=stderr" in warnings[0]
    want = [f"Warning  SecretScanner [Finding] Possible secret in file{i}.go" for i in range(10)]
    want.append('EVENT    Other {"phase":"done"}')
    assert _records(proc.stderr) == want


def test_fallback_is_an_option_and_a_bad_value_names_the_choices() -> None:
    code = """
import kepmlog
log = kepmlog.Logger(source="T", fallback="stderr", diagnostics=False)
log.info("C", "by hand")
print(log.stats()["printed"], log.stats()["accepted"], log.writes_to_stderr)
try:
    kepmlog.Logger(source="T", fallback="console")
except kepmlog.InvalidOptionError as e:
    print("refused:", e)
"""
    proc = run_python(code, _no_job_env())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "1 0 True"
    assert '"error", "stderr"' in proc.stdout
    assert _records(proc.stderr) == ["Info     T [C] by hand"]


TWENTY = """
import sys, kepmlog
log = kepmlog.Logger(source="DownTool", job_id=%r, api_base=sys.argv[1], diagnostics=False,
                     undelivered_to_stderr=sys.argv[2] == "on")
for i in range(20):
    log.info("Undelivered", "u %%d" %% i)
left = log.shutdown(float(sys.argv[3]))
print(left, log.stats()["printed"])
""" % JOB_ID


def test_records_undelivered_at_shutdown_are_written_in_order(make_agent) -> None:
    agent: DevAgent = make_agent()
    agent.command("broker stop")
    proc = run_python(TWENTY, agent.env(), args=(agent.api_base, "on", "0.3"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["20", "20"]
    assert _records(proc.stderr) == [f"Info     DownTool [Undelivered] u {i}" for i in range(20)]

    off = run_python(TWENTY, agent.env(), args=(agent.api_base, "off", "0.3"))
    assert off.returncode == 0, off.stderr
    assert off.stdout.split() == ["20", "0"]
    assert off.stderr == "", off.stderr


def test_delivered_records_are_never_written_to_stderr(agent: DevAgent) -> None:
    proc = run_python(TWENTY, agent.env(), args=(agent.api_base, "on", "20"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0", "0"]
    assert proc.stderr == "", proc.stderr
    assert len(agent.metadata(20)) >= 20
