"""``riskwatch score``: offline anomaly scoring of a CSV with exactly the streaming code.

The file is fed row by row through the same :class:`~riskwatch.detectors.ensemble.Ensemble`
the engine runs (each value column is one sensor, each row one round: score, then
learn), so the score of a row depends only on the rows before and at it.

    riskwatch score data.csv -o scored.csv                  # bundled default config
    riskwatch score data.csv -o scored.csv --detector robust  # one detector type, defaults
    riskwatch score data.csv -o scored.csv --config my_detectors.yaml --detector pumps
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

import numpy as np

from riskwatch.detectors.config import DetectorSpec, load_detector_file
from riskwatch.detectors.ensemble import Ensemble
from riskwatch.detectors.registry import DETECTORS
from riskwatch.errors import RiskwatchError
from riskwatch.extras import require

__all__ = ["default_config_path", "register", "score_frame", "select_spec"]

CHUNK_ROWS = 4096


def default_config_path() -> Path:
    """The bundled default detector config (``riskwatch/config/detectors/default.yaml``)."""
    return Path(str(resources.files("riskwatch") / "config" / "detectors" / "default.yaml"))


def select_spec(config: str | Path | None, detector: str | None) -> DetectorSpec:
    """Pick a spec by name from the config file, or build a one-member spec for a type.

    Without a name: the entry called ``generic`` if the file has one (the bundled file
    does), else the first enabled entry.
    """
    path = Path(config) if config else default_config_path()
    f = load_detector_file(path)
    specs = [s for s in f.detectors if s.enabled]
    if detector is None:
        generic = [s for s in f.detectors if s.name == "generic"]
        if generic:
            return generic[0]
        if not specs:
            raise RiskwatchError(f"{path}: no enabled detector")
        return specs[0]
    for s in f.detectors:
        if s.name == detector:
            return s
    if detector in DETECTORS:
        return DetectorSpec(name=detector, members={detector: {"type": detector}})
    names = ", ".join([s.name for s in f.detectors] + sorted(DETECTORS))
    raise RiskwatchError(f"unknown detector {detector!r} (config {path} has: {names})")


def score_frame(
    ens: Ensemble,
    time_ns: np.ndarray,
    values: np.ndarray,
    *,
    raw: bool = False,
    progress: bool = False,
) -> np.ndarray:
    """Scores (rows x columns) for a value matrix, one sensor per column, row order = time."""
    n, m = values.shape
    out = np.zeros((n, m))
    sensor_row = np.arange(m, dtype=np.int32)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, unit="row", file=sys.stderr, disable=None)
    for a in range(0, n, CHUNK_ROWS):
        b = min(n, a + CHUNK_ROWS)
        k = b - a
        res = ens.process(
            np.tile(sensor_row, k), values[a:b].reshape(-1), np.repeat(time_ns[a:b], m)
        )
        out[a:b] = (res.score if raw else res.decision).reshape(k, m)
        if bar is not None:
            bar.update(k)
    if bar is not None:
        bar.close()
    return out


def _score(args: argparse.Namespace) -> int:
    require("pandas", "offline", "riskwatch score")
    import pandas as pd

    spec = select_spec(args.config, args.detector)
    df = pd.read_csv(args.input)
    tcol = "timestamp" if "timestamp" in df.columns else df.columns[0]
    vcols = [c for c in df.columns if c != tcol and pd.api.types.is_numeric_dtype(df[c])]
    if not vcols:
        raise RiskwatchError(f"{args.input}: no numeric value column")
    t = pd.to_datetime(df[tcol], utc=True, format="mixed")
    time_ns = t.dt.tz_localize(None).to_numpy().astype("datetime64[ns]").astype(np.int64)
    values = df[vcols].to_numpy(dtype=np.float64)
    ens = spec.build()
    scores = score_frame(ens, time_ns, values, raw=args.raw, progress=len(df) >= 10_000)
    text = pd.read_csv(args.input, dtype=str, keep_default_na=False)  # echo values verbatim
    out = pd.DataFrame({tcol: text[tcol]})
    for c in vcols:
        out[c] = text[c]
    if len(vcols) > 1:
        for j, c in enumerate(vcols):
            out[f"{c}_anomaly_score"] = np.round(scores[:, j], 6)
    out["anomaly_score"] = np.round(scores.max(axis=1), 6)
    out.to_csv(args.output, index=False)
    return 0


EPILOG = """examples:
  riskwatch score nyc_taxi.csv -o scored.csv                     # the bundled `generic` entry
  riskwatch score nyc_taxi.csv -o scored.csv --detector anomaly  # another entry of the file
  riskwatch score nyc_taxi.csv -o scored.csv --detector robust   # one detector type alone
  riskwatch score plant.csv -o scored.csv --config my.yaml --detector pump_pressure
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "score",
        help="offline anomaly scoring of a timestamp,value CSV",
        description="Run the streaming detectors over a CSV (timestamp column plus one or "
        "more numeric columns, one sensor each) and write timestamp,value,anomaly_score row "
        "for row. No look-ahead: a row's score depends only on rows before and at it. "
        "By default the score is the decision score: the combined score where an anomaly "
        "window opens or while none is open, 0 for repeats inside an open window and, if "
        "the entry sets `repeats`, for the later sub-threshold readings of a weak episode "
        "(so an episode counts once at any cut-off).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", help="input CSV (header: timestamp,value[,value2...])")
    p.add_argument("-o", "--output", required=True, help="output CSV")
    p.add_argument(
        "--detector",
        help="entry name in the config (default: its `generic` entry), or a detector type "
        "with its defaults (robust, seasonal_shift, ...)",
    )
    p.add_argument("--config", help="detector YAML (default: the bundled default.yaml)")
    p.add_argument(
        "--raw", action="store_true", help="write the combined score without repeat suppression"
    )
    p.set_defaults(func=_score)
