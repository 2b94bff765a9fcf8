"""The files that run riskwatch in production: the systemd unit (``systemd-analyze verify``
when the machine has it, and always its keys read back), the Prometheus rules
(``promtool test rules`` when promtool is at hand: .ci/run extracts it from Debian's
prometheus package), the Containerfile (every RUN step is the install script or a
container-only step) and ``config init --production``.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from riskwatch.config.cli import bundled_root
from riskwatch.config.engine import load_engine_config

ROOT = Path(__file__).resolve().parents[3]
UNIT = bundled_root() / "systemd" / "riskwatch.service"


def _unit_keys() -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> values (systemd keys may repeat: Environment=, ExecStartPre=)."""
    out: dict[str, dict[str, list[str]]] = {}
    section = ""
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            out.setdefault(section, {})
            continue
        key, sep, value = line.partition("=")
        assert sep and section, f"not a key=value line: {raw!r}"
        out[section].setdefault(key, []).append(value)
    return out


def test_unit_is_hardened_and_restarts_a_dead_engine() -> None:
    keys = _unit_keys()
    svc = {k: v[-1] for k, v in keys["Service"].items()}
    assert svc["User"] == svc["Group"] == "riskwatch"
    assert svc["ExecStart"] == "/opt/riskwatch/bin/riskwatch run -c /etc/riskwatch/engine.yaml"
    assert svc["ExecStartPre"].endswith("--check")
    assert svc["Restart"] == "on-failure"  # `riskwatch run` exits 70 when a thread dies
    assert svc["NoNewPrivileges"] == "yes" and svc["ProtectSystem"] == "strict"
    assert svc["ReadWritePaths"] == "/var/lib/riskwatch" == svc["WorkingDirectory"]
    assert svc["StateDirectory"] == "riskwatch"
    assert svc["KillSignal"] == "SIGTERM" and svc["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert "NUMBA_CACHE_DIR=/var/lib/riskwatch/cache/numba" in keys["Service"]["Environment"]
    assert "MemoryDenyWriteExecute" not in svc  # numba's JIT writes executable pages
    assert keys["Install"]["WantedBy"] == ["multi-user.target"]
    # the production config keeps all state under the one writable folder
    cfg = (bundled_root() / "production" / "engine.yaml").read_text()
    assert cfg.count("@STATE_DIR@/") == 4


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_analyze_verify_has_nothing_to_say(tmp_path: Path) -> None:
    # verify checks that ExecStart's binary exists: point it at this interpreter's riskwatch
    exe = Path(sys.executable).parent / "riskwatch"
    assert exe.exists()
    unit = tmp_path / "riskwatch.service"
    unit.write_text(UNIT.read_text().replace("/opt/riskwatch/bin/riskwatch", str(exe)))
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                       text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert (r.stdout + r.stderr).strip() == ""  # unknown keys are only warnings: none wanted


def test_sysusers_line_names_the_unit_user() -> None:
    text = (bundled_root() / "systemd" / "riskwatch.sysusers").read_text()
    lines = [ln.split() for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert lines[0][:2] == ["u", "riskwatch"] and "/var/lib/riskwatch" in lines[0]


def _promtool() -> str | None:
    return os.environ.get("RW_PROMTOOL") or shutil.which("promtool")


@pytest.mark.skipif(_promtool() is None, reason="no promtool (Debian package prometheus)")
def test_promtool_checks_and_tests_the_engine_alert_rules() -> None:
    tool = _promtool()
    assert tool is not None
    d = bundled_root() / "prometheus"
    r = subprocess.run([tool, "check", "rules", "riskwatch-rules.yml"], cwd=d,
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([tool, "test", "rules", "riskwatch-rules.test.yml"], cwd=d,
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


def test_every_alert_rule_is_tested_and_has_a_summary() -> None:
    d = bundled_root() / "prometheus"
    rules = yaml.safe_load((d / "riskwatch-rules.yml").read_text())["groups"][0]["rules"]
    names = {r["alert"] for r in rules}
    assert {"RiskwatchWatchdog", "RiskwatchDown", "RiskwatchNoReadings", "RiskwatchSpoolFilling",
            "RiskwatchUnackedRising", "RiskwatchDeadLetters",
            "RiskwatchAlertNotificationLag"} <= names  # fmt: skip
    assert all(r["annotations"]["summary"] and r["labels"]["severity"] for r in rules)
    tests = yaml.safe_load((d / "riskwatch-rules.test.yml").read_text())["tests"]
    fired = {a["alertname"] for t in tests for a in t["alert_rule_test"] if a["exp_alerts"]}
    assert fired >= {"RiskwatchWatchdog", "RiskwatchDown", "RiskwatchNoReadings",
                     "RiskwatchSpoolFilling", "RiskwatchSpoolFull", "RiskwatchUnackedRising",
                     "RiskwatchDeadLetters", "RiskwatchAlertNotificationLag"}  # fmt: skip


def test_containerfile_runs_only_the_install_script_and_container_steps() -> None:
    text = (ROOT / "Containerfile").read_text().replace("\\\n", " ")
    runs = [ln.strip()[4:] for ln in text.splitlines() if ln.strip().startswith("RUN ")]
    assert runs[0] == 'sh deploy/install.sh /opt/riskwatch "$EXTRAS"'
    assert runs[1].startswith("useradd --system") and len(runs) == 2
    assert "ENTRYPOINT [\"riskwatch\"]" in text and "USER riskwatch" in text


def test_grafana_dashboards_are_provisioning_json_on_the_provisioned_datasources() -> None:
    d = bundled_root() / "grafana"
    uids = {s["uid"] for s in yaml.safe_load(
        (d / "provisioning" / "datasources.yaml").read_text())["datasources"]}  # fmt: skip
    titles = []
    for f in sorted((d / "dashboards").glob("*.json")):
        dash = json.loads(f.read_text())
        titles.append(dash["title"])
        assert dash["uid"].startswith("riskwatch-") and dash["schemaVersion"] >= 36
        for p in dash["panels"]:
            assert p["datasource"]["uid"] in uids
            assert all(t["datasource"]["uid"] in uids for t in p["targets"])
    assert titles == ["riskwatch / engine health", "riskwatch / sensor",
                      "riskwatch / site overview"]  # fmt: skip
    sensor = json.loads((d / "dashboards" / "riskwatch-sensor.json").read_text())
    assert sensor["annotations"]["list"][0]["query"].startswith('SELECT "message"')
    assert [t.get("alias") for t in sensor["panels"][0]["targets"]] == [None, "alarm", "power-off"]


def test_config_init_production_writes_a_production_shaped_config(tmp_path: Path) -> None:
    etc, state = tmp_path / "etc", tmp_path / "state"
    argv = [sys.executable, "-m", "riskwatch.cli", "config", "init", "--production", str(etc),
            "--state-dir", str(state)]  # fmt: skip
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "riskwatch users -c" in r.stdout and "--role admin" in r.stdout
    cfg = load_engine_config(etc / "engine.yaml")
    assert cfg.ingest.strict is True
    assert cfg.console.listen == "127.0.0.1:8080" and cfg.alerts.api.listen == "127.0.0.1:9110"
    assert cfg.metrics.listen == "127.0.0.1:9108" and cfg.storage.influx is not None
    assert cfg.mqtt.url.startswith("mqtts://")
    assert cfg.mqtt.password_file == str(etc / "secrets" / "mqtt.password")
    assert cfg.storage.influx.password_file == str(etc / "secrets" / "influx.password")
    assert cfg.storage.spool_dir == str(state / "spool")
    assert cfg.alerts.store == str(state / "alerts.sqlite")
    assert cfg.console.users == str(state / "console-users.json")
    assert cfg.catalog == ["catalog/site.csv"]
    assert (etc / "catalog" / "site.csv").read_text().count("\n") == 1  # a header to fill in
    assert not (etc / "catalog" / "mixed.csv").exists() and not (etc / "scenarios").exists()
    assert not list((etc / "rules").glob("*_test.yaml"))
    token = etc / "secrets" / "api-admin.token"
    assert stat.S_IMODE(token.stat().st_mode) == 0o640 and len(token.read_text().strip()) >= 40
    first = token.read_text()
    r = subprocess.run([*argv, "--force", "--bind", "0.0.0.0"], capture_output=True, text=True,
                       timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert token.read_text() == first  # never replaced: clients hold it
    assert load_engine_config(etc / "engine.yaml").console.listen == "0.0.0.0:8080"
