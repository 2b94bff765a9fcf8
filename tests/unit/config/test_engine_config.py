"""Config errors name file, key path and line; secrets come from env or files."""

from __future__ import annotations

from pathlib import Path

import pytest

from riskwatch.config.engine import load_engine_config
from riskwatch.errors import ConfigErrors


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "engine.yaml"
    p.write_text(text)
    return p


CASES = [
    ("mqtt:\n  qos: 3\n", "engine.yaml:2:8: mqtt.qos: must be 0, 1 or 2, got 3"),
    ("mqtt:\n  url: http://x\n", "engine.yaml:2:8: mqtt.url: must be a URL like mqtt://host:port"),
    ("mqtt:\n  qso: 1\n", "engine.yaml:2:3: mqtt.qso: unknown key"),
    (
        "ingest:\n  batch_max_readings: many\n",
        "engine.yaml:2:23: ingest.batch_max_readings: expected an integer, got str 'many'",
    ),
    (
        "ingest:\n  batch_max_readings: 0\n",
        "engine.yaml:2:23: ingest.batch_max_readings: must be > 0",
    ),
    (
        "storage:\n  influx:\n    api: v3\n",
        "engine.yaml:3:10: storage.influx.api: must be one of 'v1', 'v2', got 'v3'",
    ),
    (
        "storage:\n  influx: {url: 'http://x', password: hunter2}\n",
        "storage.influx.password: unknown key",
    ),
    ("catalog: {a: 1}\n", "engine.yaml:1:10: catalog: expected a list, got a mapping"),
    (
        "mqtt:\n  topic_template: 'rw/{site}'\n",
        "mqtt.topic_template: must contain the level {enterprise}",
    ),
    ("mqtt: [1, 2\n", "engine.yaml:2:1: invalid YAML"),
    ("mqtt:\n  qos: 1\n  qos: 2\n", "engine.yaml:3: mqtt.qos: duplicate key"),
    ("state:\n  snapshot_every: 0s\n", "engine.yaml:2:19: state.snapshot_every: must be > 0, got 0s"),
    (
        "state:\n  snapshot_every: soon\n",
        "engine.yaml:2:19: state.snapshot_every: bad duration 'soon'",
    ),
    ("state:\n  folder: x\n", "engine.yaml:2:3: state.folder: unknown key"),
    (
        "ingest:\n  min_time: last year\n",
        "engine.yaml:2:13: ingest.min_time: must be an RFC 3339 time such as "
        "2000-01-01T00:00:00Z, got 'last year'",
    ),
]


@pytest.mark.parametrize(
    ("text", "message"), CASES, ids=[c[1].split(": ")[1] + str(i) for i, c in enumerate(CASES)]
)
def test_error_names_file_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigErrors) as ei:
        load_engine_config(write(tmp_path, text))
    assert message in str(ei.value)
    assert str(tmp_path / "engine.yaml") in str(ei.value)


def test_all_errors_in_one_pass(tmp_path: Path) -> None:
    with pytest.raises(ConfigErrors) as ei:
        load_engine_config(
            write(tmp_path, "mqtt:\n  qos: 5\n  bogus: 1\ningest:\n  strict: maybe\n")
        )
    assert len(ei.value.errors) == 3
    assert [e.line for e in ei.value.errors] == [2, 3, 5]


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    cfg = load_engine_config(write(tmp_path, "catalog: [cat/a.csv]\n"))
    assert cfg.mqtt.topics == ["rw/#"]
    assert cfg.path("cat/a.csv") == tmp_path / "cat" / "a.csv"


def test_secrets_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pw").write_text("s3cret\n")
    monkeypatch.setenv("RW_TOKEN", "tok")
    cfg = load_engine_config(
        write(
            tmp_path,
            f"mqtt: {{username: u, password_file: {tmp_path}/pw}}\n"
            "storage: {influx: {api: v2, token_env: RW_TOKEN}}\n",
        )
    )
    assert cfg.mqtt.password() == "s3cret"
    assert cfg.storage.influx.token() == "tok"
    monkeypatch.delenv("RW_TOKEN")
    with pytest.raises(ConfigErrors, match="environment variable RW_TOKEN is not set"):
        cfg.storage.influx.token()


def test_min_time_is_epoch_ns_with_its_offset(tmp_path: Path) -> None:
    cfg = load_engine_config(write(tmp_path, "ingest: {min_time: '2020-01-01T08:00:00+08:00'}\n"))
    assert cfg.ingest.min_time_ns == 1_577_836_800 * 10**9


def test_state_is_kept_beside_the_config_by_default_and_can_be_switched_off(
    tmp_path: Path,
) -> None:
    from riskwatch.config.engine import load_engine_config_text
    from riskwatch.durations import Duration

    cfg = load_engine_config(write(tmp_path, "state: {snapshot_every: 5m}\n"))
    assert cfg.state_dir() == tmp_path / "var" / "state"
    assert cfg.state.snapshot_every == Duration.parse("5m") and cfg.state.fsync is True
    assert load_engine_config(write(tmp_path, "state: {dir: null}\n")).state_dir() is None
    # a config from text has no folder to place it beside: off unless absolute
    assert load_engine_config_text("metrics: {listen: null}\n").state_dir() is None
    absolute = load_engine_config_text(f"state: {{dir: '{tmp_path}/st'}}\n")
    assert absolute.state_dir() == tmp_path / "st"
