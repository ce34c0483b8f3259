"""tests/vectors/records.json through the Python API: the broker must receive exactly the
MetaData the Rust core's own tests expect, in order."""

from __future__ import annotations

import json
import uuid

import pytest

import kepmlog
from conftest import REPO, DevAgent

VECTORS = json.loads((REPO / "tests" / "vectors" / "records.json").read_text(encoding="utf-8"))
CASES = VECTORS["cases"]
METADATA_KEYS = ["MessageType", "LogLevel", "Source", "Category", "Message", "CorrelationId", "Context"]


def _log_case(log: kepmlog.Logger, inp: dict, by_name: bool) -> bool:
    level = inp["level_name"] if by_name else inp["level"]
    return log.log(level, inp["category"], inp["message"], inp["correlation_id"], inp["context"])


@pytest.mark.parametrize("by_name", [False, True], ids=["level-number", "level-name"])
def test_vectors_on_the_wire(agent: DevAgent, by_name: bool) -> None:
    spec = VECTORS["logger"]
    log = kepmlog.Logger(
        spec["source"], default_category=spec["default_category"], **agent.logger_options()
    )
    expected = []
    for case in CASES:
        if "error" in case:
            with pytest.raises(kepmlog.KepmlogError) as info:
                _log_case(log, case["input"], by_name)
            assert info.value.kind == case["error"], case["name"]
            assert isinstance(info.value, ValueError), case["name"]
        else:
            assert _log_case(log, case["input"], by_name) is True, case["name"]
            expected.append(case["expect"])
    assert log.flush(20) == 0
    got = agent.wait_for(len(expected))
    assert len(got) == len(expected)
    for case_expect, msg in zip(expected, got):
        payload = msg["payload"]
        assert list(payload) == ["Id", "Version", "RespondToTopic", "MetaData"]
        assert uuid.UUID(payload["Id"]).version == 4
        assert payload["Version"] == 1 and payload["RespondToTopic"] is None
        assert list(payload["MetaData"]) == METADATA_KEYS
        assert payload["MetaData"] == case_expect
    assert len({m["payload"]["Id"] for m in got}) == len(got)
    stats = log.stats()
    assert stats["delivered"] == len(expected) and stats["pending"] == 0
    assert log.shutdown(5) == 0


def test_build_metadata_matches_vectors() -> None:
    """The native record builder gives the same MetaData without a broker."""
    from kepmlog._kepmlog import build_metadata

    spec = VECTORS["logger"]
    for case in CASES:
        inp = case["input"]
        category = inp["category"] or spec["default_category"]
        args = (inp["level"], spec["source"], category, inp["message"], inp["correlation_id"], inp["context"])
        if "error" in case:
            with pytest.raises(kepmlog.KepmlogError) as info:
                build_metadata(*args)
            assert info.value.kind == case["error"]
        else:
            assert json.loads(build_metadata(*args))["MetaData"] == case["expect"], case["name"]
