"""`riskwatch config init` copies a working set; `run --check` validates all of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from riskwatch.cli import main


def test_init_then_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "cfg"
    assert main(["config", "init", str(d)]) == 0
    assert (d / "engine.yaml").is_file() and (d / "rules" / "coal_mine.yaml").is_file()
    assert main(["run", "-c", str(d / "engine.yaml"), "--check"]) == 0
    out = capsys.readouterr().out
    assert "OK (" in out and "catalogued sensors" in out
    # a second init keeps edited files
    (d / "engine.yaml").write_text("mqtt: {qos: 9}\n")
    assert main(["config", "init", str(d)]) == 0
    assert main(["run", "-c", str(d / "engine.yaml"), "--check"]) == 1
    assert "mqtt.qos: must be 0, 1 or 2, got 9" in capsys.readouterr().err


def test_sample_lists_and_prints(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "sample"]) == 0
    names = capsys.readouterr().out.split()
    assert "engine" in names and "rules/coal_mine" in names
    assert main(["config", "sample", "engine"]) == 0
    assert "topic_template" in capsys.readouterr().out
