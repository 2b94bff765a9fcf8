"""The core install: without the extras the engine, its detectors and the CLI import and
run, and every feature that needs an extra says which ``pip install`` fixes it.

Each case runs in a child interpreter in which the extras' packages are made unimportable
(``sys.modules[name] = None`` makes ``import name`` raise ModuleNotFoundError, as on an
install without them), so the machine's full environment cannot hide a top-level import.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]
HEAVY = ("numba", "llvmlite", "scipy", "pandas", "river", "psycopg", "influxdb_client")


def _core(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    prelude = f"import sys\nfor m in {HEAVY!r}:\n    sys.modules[m] = None\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )


def test_core_dependencies_hold_none_of_the_heavy_parts() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"]).lower()
    for name in ("numba", "scipy", "pandas", "river", "psycopg", "influxdb-client"):
        assert name not in core
    extras = project["optional-dependencies"]
    assert extras["all"] == ["riskwatch[jit,scipy,river,postgres,offline,influx2]"]


def test_engine_and_bundled_detectors_work_without_extras(tmp_path: Path) -> None:
    r = _core(
        """
        import numpy as np
        import riskwatch.cli, riskwatch.engine, riskwatch.demo  # noqa: F401
        from riskwatch.detectors import base, kernels
        from riskwatch.detectors.special import log_ndtr
        assert base.log_ndtr is log_ndtr, base.log_ndtr
        assert kernels.JIT is False
        print(base.z_to_decades(np.array([0.0, 4.4172, 40.0])).round(1).tolist())
        """,
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[0.0, 5.0, 349.1]"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["replay", "h.csv", "-r", "r.yaml"],
         "riskwatch replay needs: pip install 'riskwatch[offline]'"),
    ],
)
def test_offline_commands_name_their_extra(argv: list[str], message: str, tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("timestamp,value\n2026-01-01T00:00:00Z,1\n")
    (tmp_path / "h.csv").write_text("time,sensor,value\n0,A,1\n")
    (tmp_path / "r.yaml").write_text("rules: []\n")
    r = _core(f"from riskwatch.cli import main\nsys.exit(main({argv!r}))", tmp_path)
    assert r.returncode != 0
    assert message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_score_runs_on_the_core_install(tmp_path: Path) -> None:
    """riskwatch score reads CSV itself (no pandas): it works without the extras."""
    rows = "".join(f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z,{i % 7}\n" for i in range(400))
    (tmp_path / "in.csv").write_text("timestamp,value\n" + rows)
    r = _core("from riskwatch.cli import main\nsys.exit(main(['score', 'in.csv', '-o', "
              "'out.csv']))", tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    head = (tmp_path / "out.csv").read_text().splitlines()[0]
    assert "anomaly_score" in head and "alert" in head


def test_postgres_store_names_its_extra(tmp_path: Path) -> None:
    r = _core(
        """
        from riskwatch.alerts.store import AlertStore
        from riskwatch.extras import MissingExtra
        try:
            AlertStore("postgresql://rw@127.0.0.1:1/rw")
        except MissingExtra as exc:
            print(exc)
        """,
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("PostgreSQL alert store needs: pip install 'riskwatch[postgres]'")


def test_river_detector_names_its_extra(tmp_path: Path) -> None:
    r = _core(
        """
        from riskwatch.detectors.river_adapter import _hst
        from riskwatch.extras import MissingExtra
        try:
            _hst(3, 3, 50, 1)
        except MissingExtra as exc:
            print(exc)
        """,
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert "needs: pip install 'riskwatch[river]'" in r.stdout


def test_numpy_log_ndtr_matches_scipy_to_its_stated_error() -> None:
    from scipy.special import log_ndtr as exact

    from riskwatch.detectors.special import log_ndtr

    x = np.concatenate([np.linspace(-60.0, 9.0, 20001), [0.0, -0.0]])
    got, want = log_ndtr(x), exact(x)
    rel = np.abs(got - want) / np.maximum(np.abs(want), 1e-300)
    assert rel.max() < 1.3e-7
    assert np.isnan(log_ndtr(np.array([np.nan]))).all()
    assert np.isfinite(log_ndtr(np.array([-1e4]))).all()  # far tail: no underflow to -inf


def test_version_comes_from_the_installed_metadata() -> None:
    from importlib.metadata import version

    import riskwatch

    assert riskwatch.__version__ == version("riskwatch")
    r = subprocess.run([sys.executable, "-m", "riskwatch.cli", "--version"],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.stdout.strip() == f"riskwatch {version('riskwatch')}"
