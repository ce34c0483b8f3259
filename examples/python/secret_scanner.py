#!/usr/bin/env python3
"""A KEPM job tool: scans a directory tree for files that look like they hold secrets and
reports counts and paths (never the secrets) to the agent's KeeperLogger through kepmlog.

The vendor guide's "secrets scanner" sample, rewritten on kepmlog with the standard
``logging`` module. Started by the agent as
``secret-scanner-py --keeper-api-base=https://127.0.0.1:6889 [DIR]`` with ``KEEPER_JOB_ID``
in its environment (see examples/jobs/secret-scanner-python.json).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import kepmlog

# Markers of credentials that should not sit in plain files. Only whether a file contains
# one is reported.
MARKERS = (
    b"-----BEGIN RSA PRIVATE KEY-----",
    b"-----BEGIN OPENSSH PRIVATE KEY-----",
    b"-----BEGIN PRIVATE KEY-----",
    b"AKIA",
    b"password=",
    b"secret_key",
)
MAX_FILE_BYTES = 1024 * 1024
MAX_FILES = 20_000

log = logging.getLogger("secret_scanner")


def scan_root(argv: list[str]) -> Path:
    """The first argument that is not a --flag (or the value of --keeper-api-base), else "."."""
    args = iter(argv)
    for a in args:
        if a == "--keeper-api-base":
            next(args, None)
        elif not a.startswith("--"):
            return Path(a)
    return Path(".")


def collect(root: Path) -> list[Path]:
    files: list[Path] = []

    def on_error(e: OSError) -> None:
        log.warning("Cannot read %s: %s", e.filename, e.strerror, extra={"category": "Access"})

    for dirpath, _dirs, names in os.walk(root, onerror=on_error):
        for name in names:
            if len(files) >= MAX_FILES:
                return files
            files.append(Path(dirpath) / name)
    return files


def looks_secret(path: Path) -> bool:
    if path.stat().st_size > MAX_FILE_BYTES:
        return False
    data = path.read_bytes()
    return any(m in data for m in MARKERS)


def run(kepm: kepmlog.Logger, root: Path) -> int:
    log.info("Scanning %s for plain-text secrets", root, extra={"category": "Startup"})
    kepm.event({"phase": "scan", "status": "started"})
    files = collect(root)
    flagged = 0
    for n, path in enumerate(files, 1):
        try:
            if looks_secret(path):
                flagged += 1
                log.warning("Possible secret in %s", path, extra={"category": "Finding"})
        except OSError as e:
            log.debug("Skipped %s: %s", path, e.strerror, extra={"category": "Access"})
        if n % 1000 == 0:
            kepm.event({"phase": "scan", "files": n})
    summary = f"Scan complete: {flagged} issue(s) detected in {len(files)} file(s)."
    kepm.event({"phase": "scan", "status": "done", "files": len(files), "issues": flagged})
    # Findings are the report, not a failure of the task: the exit code stays 0.
    (log.warning if flagged else log.info)(summary)
    return 0


def main() -> int:
    try:
        kepm = kepmlog.Logger.from_job("SecretScanner", default_category="SecretsScan")
    except kepmlog.KepmlogError as e:
        print(f"secret-scanner: cannot log to KEPM: {e}", file=sys.stderr)
        return 2
    handler = kepmlog.KeeperLoggerHandler(kepm, category="SecretsScan")
    logging.basicConfig(level=logging.DEBUG, handlers=[handler])
    try:
        return run(kepm, scan_root(sys.argv[1:]))
    except Exception:
        log.exception("Scan failed")
        return 1
    finally:
        # Deliver everything before the agent records the exit code (interpreter exit
        # would too, but an explicit shutdown reports what it could not send).
        undelivered = kepm.shutdown(10)
        if undelivered:
            print(f"secret-scanner: {undelivered} record(s) not delivered", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
