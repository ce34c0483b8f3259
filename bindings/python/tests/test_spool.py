"""The crash-safe spool through the Python API: `spool_dir` reaches the core, a run that could
not deliver leaves its records for the next one, which sends them first (`stats()["recovered"]`),
and a spool directory other users can write is refused with the fix."""

from __future__ import annotations

import os
import pathlib

import pytest

import kepmlog
from conftest import DevAgent


def test_the_next_run_sends_what_a_run_without_a_broker_left(agent: DevAgent, tmp_path: pathlib.Path) -> None:
    spool = tmp_path / "spool"
    # The first run's broker never answers (nothing listens on port 1): its records stay spooled.
    first = kepmlog.Logger(
        "SpoolTool", **agent.logger_options(broker="127.0.0.1:1", api_base=None),
        spool_dir=spool, undelivered_to_stderr=False,
    )
    for i in range(50):
        first.info("Spool", f"first {i}")
    assert first.shutdown(0.3) == 50, "undelivered at the deadline"
    assert any(spool.rglob("*.seg")), "the records are on disk"

    with kepmlog.Logger("SpoolTool", **agent.logger_options(), spool_dir=str(spool)) as second:
        assert second.stats()["recovered"] == 50
        second.info("Spool", "second")
        assert second.flush(20) == 0
        stats = second.stats()
        assert (stats["accepted"], stats["delivered"], stats["spool_dropped"]) == (51, 51, 0)
    got = [m["Message"] for m in agent.metadata(52) if m["Category"] != "kepmlog"]
    assert got == [f"first {i}" for i in range(50)] + ["second"]
    assert not [p for p in spool.rglob("*") if p.is_file()], "nothing left on disk"


@pytest.mark.skipif(os.name != "posix", reason="Unix permissions")
def test_a_spool_directory_others_can_write_is_refused(agent: DevAgent, tmp_path: pathlib.Path) -> None:
    tmp_path.chmod(0o777)
    with pytest.raises(kepmlog.KepmlogError) as e:
        kepmlog.Logger("SpoolTool", **agent.logger_options(), spool_dir=tmp_path)
    assert "spool_dir" in str(e.value) and "chmod 700" in str(e.value)
