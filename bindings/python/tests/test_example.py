"""examples/python/secret_scanner.py run the way the agent runs its job (the job JSON's
command, arguments, environment and allowed topics) against a devagent."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO

JOB = json.loads((REPO / "examples" / "jobs" / "secret-scanner-python.json").read_text())


def test_example_job_delivers(make_agent) -> None:
    allowed = tuple(JOB["mqttTopics"]["allowedPublications"])
    agent = make_agent(allow=allowed)
    task = JOB["tasks"][0]
    launcher = REPO / "target" / "agent-root" / "Jobs" / "bin" / task["command"] / task["command"]
    launcher = os.environ.get("KEPM_PY_EXAMPLE_LAUNCHER", str(launcher))
    if os.access(launcher, os.X_OK):
        cmd = [launcher]
    else:  # not installed by scripts/test-python.sh: run the script with this interpreter
        cmd = [sys.executable, str(REPO / "examples" / "python" / "secret_scanner.py")]
    # One command-line string, as in the agent's schema. The example's has no quotes or
    # backslashes, so splitting on white space is what the agent's splitter does with it.
    line = task["arguments"]
    assert isinstance(line, str) and '"' not in line and "\\" not in line, line
    args = [a.replace("{KeeperApiBaseUrl}", agent.api_base) for a in line.split()]
    env = dict(os.environ, KEEPER_JOB_ID=JOB["id"], KEEPER_JOB_NAME=JOB["name"])
    proc = subprocess.run(cmd + args, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    # The tool has exited, so the broker has acknowledged everything; the capture subscriber
    # may still be receiving. The summary is the last record the example logs.
    got = agent.wait_until(lambda ms: any(m["payload"]["MetaData"]["Message"].startswith("Scan complete:") for m in ms))
    meta = [m["payload"]["MetaData"] for m in got]
    summary = [m for m in meta if m["Message"].startswith("Scan complete:")]
    assert len(summary) == 1, [m["Message"] for m in meta]
    assert summary[0]["Source"] == "SecretScanner" and summary[0]["Category"] == "SecretsScan"
    # examples/rust/src/main.rs lists the markers it looks for: a finding, path only.
    findings = [m for m in meta if m["Category"] == "Finding"]
    assert any("main.rs" in m["Message"] for m in findings)
    assert all("PRIVATE KEY" not in m["Message"] for m in meta)
    events = [m["payload"] for m in agent.wait_for(2, f"Jobs/{JOB['id']}/events")]
    assert events[0] == {"phase": "scan", "status": "started"}
    assert events[-1]["status"] == "done" and events[-1]["issues"] == len(findings)
    prefix = f"{JOB['id']}_secret-scanner_"
    clients = agent.clients_once(lambda ids: any(c.startswith(prefix) for c in ids))
    assert any(c.startswith(prefix) for c in clients), clients
