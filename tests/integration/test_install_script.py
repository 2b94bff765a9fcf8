"""The Containerfile's install step, run where no image can be built or pulled: the same
``deploy/install.sh`` into a fresh virtual environment (the core, no extras), whose
``riskwatch demo`` then raises alerts (on its embedded broker, the core's fallback, so the
shared Mosquitto's ``rw/`` topics stay quiet). This is also the README's
``pip install . && riskwatch demo`` on the core install."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_install_script_gives_a_core_install_whose_demo_raises_alerts(tmp_path: Path) -> None:
    prefix = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    r = subprocess.run(["sh", str(ROOT / "deploy" / "install.sh"), str(prefix)],
                       capture_output=True, text=True, timeout=600, env=env)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout.splitlines()
    assert out[0].startswith("riskwatch ") and "engine.yaml: OK (" in out[-1]
    listed = subprocess.run([str(prefix / "bin" / "pip"), "list", "--format=freeze"],
                            capture_output=True, text=True, check=True).stdout.lower()  # fmt: skip
    for heavy in ("numba", "scipy", "pandas", "river", "psycopg", "influxdb-client"):
        assert f"\n{heavy}==" not in f"\n{listed}"
    demo = subprocess.run(
        [str(prefix / "bin" / "riskwatch"), "demo", "--duration", "30s",
         "--embedded-broker", "--metrics", "127.0.0.1:26021",
         "--console", "127.0.0.1:26022", "--workdir", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    assert re.search(r"^\s*(ALERT|LEVEL UP)\s+RED\s", demo.stdout, re.M), demo.stdout[-2000:]
    assert "stopped cleanly" in demo.stdout
