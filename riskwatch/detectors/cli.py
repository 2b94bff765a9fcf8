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
import csv
import os
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from riskwatch.errors import RiskwatchError

if TYPE_CHECKING:  # heavy imports stay out of start-up (riskwatch score on a tiny file)
    import numpy as np

    from riskwatch.detectors.config import DetectorSpec
    from riskwatch.detectors.ensemble import Ensemble

__all__ = ["default_config_path", "read_table", "register", "score_frame", "select_spec"]

CHUNK_ROWS = 4096
#: Below this many rows, `riskwatch score` runs the numpy path instead of compiling the
#: kernels (same numbers; compiling or loading them costs more than a small file).
JIT_MIN_ROWS = 20_000


def default_config_path() -> Path:
    """The bundled default detector config (``riskwatch/config/detectors/default.yaml``)."""
    return Path(str(resources.files("riskwatch") / "config" / "detectors" / "default.yaml"))


def select_spec(config: str | Path | None, detector: str | None) -> DetectorSpec:
    """Pick a spec by name from the config file, or build a one-member spec for a type.

    Without a name: the entry called ``generic`` if the file has one (the bundled file
    does), else the first enabled entry.
    """
    from riskwatch.detectors.config import DetectorSpec, load_detector_file
    from riskwatch.detectors.registry import DETECTORS

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
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and open-window flags (rows x columns) for a value matrix, one sensor per
    column, row order = time. A window is open on a row from the reading that raised it
    up to (not including) the reading that cleared it."""
    import numpy as np

    n, m = values.shape
    out = np.zeros((n, m))
    alert = np.zeros((n, m), dtype=bool)
    sensor_row = np.arange(m, dtype=np.int32)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, unit="row", file=sys.stderr, disable=None)
    for a in range(0, n, CHUNK_ROWS):
        b = min(n, a + CHUNK_ROWS)
        k = b - a
        before = ens.active(sensor_row)
        res = ens.process(
            np.tile(sensor_row, k), values[a:b].reshape(-1), np.repeat(time_ns[a:b], m)
        )
        out[a:b] = (res.score if raw else res.decision).reshape(k, m)
        alert[a:b] = _open_rows(res.raised.reshape(k, m), res.cleared.reshape(k, m), before)
        if bar is not None:
            bar.update(k)
    if bar is not None:
        bar.close()
    return out, alert


def _open_rows(raised: np.ndarray, cleared: np.ndarray, before: np.ndarray) -> np.ndarray:
    """Per row of a chunk (rows x columns), whether each column's window is open after
    the row: the last raise (open) or clear (closed) at or before it, else ``before``."""
    import numpy as np

    k = len(raised)
    event = raised | cleared
    idx = np.where(event, np.arange(k)[:, None], -1)
    last = np.maximum.accumulate(idx, axis=0)
    state = np.take_along_axis(raised, np.maximum(last, 0), axis=0)
    return np.where(last >= 0, state, before[None, :])


def read_table(path: str | Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a CSV whose delimiter is sniffed (``,``, ``;``, tab, ``|``)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        sample = f.read(64 * 1024)
        f.seek(0)
        try:
            dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        except csv.Error:
            dialect = csv.excel
        rows = [r for r in csv.reader(f, dialect) if r]
    if not rows:
        raise RiskwatchError(f"{path}: empty file")
    return [h.strip() for h in rows[0]], rows[1:]


def _numeric(col: list[str]) -> np.ndarray | None:
    """The column as float64 (empty cells are gaps; a decimal comma is read as a point),
    or None if any cell is not a number."""
    import numpy as np

    for cells in (col, [c.replace(",", ".") for c in col]):
        try:
            return np.array([float(c) if c.strip() else np.nan for c in cells], dtype=np.float64)
        except ValueError:
            continue
    return None


def _times(col: list[str], path: str) -> np.ndarray:
    """Timestamps as int64 ns (ISO text, or numbers taken as seconds since the epoch)."""
    import numpy as np

    num = _numeric(col)
    if num is not None:
        return (num * 1e9).astype(np.int64)
    try:
        text = np.array([c.strip().replace(" ", "T", 1).rstrip("Z") for c in col])
        return text.astype("datetime64[ns]").astype(np.int64)
    except ValueError:
        from riskwatch.extras import require

        require("pandas", "offline", f"reading the times of {path}")
        import pandas as pd  # other spellings (time zones, day-first, ...)

        t = pd.to_datetime(pd.Series(col), utc=True, format="mixed")
        return t.dt.tz_localize(None).to_numpy().astype("datetime64[ns]").astype(np.int64)


def _score(args: argparse.Namespace) -> int:
    header, rows = read_table(args.input)
    if len(rows) < JIT_MIN_ROWS and "riskwatch.detectors.kernels" not in sys.modules:
        # numpy path (same numbers): importing numba and loading the kernels costs more
        # than scoring a small file. The kernels module reads RISKWATCH_JIT once, at its
        # first import; the variable is put back so child processes do not inherit it.
        prev = os.environ.get("RISKWATCH_JIT")
        os.environ["RISKWATCH_JIT"] = "0"
        try:
            import riskwatch.detectors.kernels  # noqa: F401
        finally:
            if prev is None:
                del os.environ["RISKWATCH_JIT"]
            else:
                os.environ["RISKWATCH_JIT"] = prev
    import numpy as np

    spec = select_spec(args.config, args.detector)
    width = len(header)
    cols = [[r[j] if j < len(r) else "" for r in rows] for j in range(width)]
    tj = header.index("timestamp") if "timestamp" in header else 0
    vcols, vals = [], []
    for j in range(width):
        if j != tj and (v := _numeric(cols[j])) is not None:
            vcols.append(j)
            vals.append(v)
    if not vcols:
        raise RiskwatchError(
            f"{args.input}: no numeric value column (columns: {', '.join(header)})"
        )
    time_ns = _times(cols[tj], args.input)
    values = np.stack(vals, axis=1)
    from riskwatch.detectors.base import GroupedDetector

    ens = spec.build(jit=None if len(rows) >= JIT_MIN_ROWS else False)
    for det in ens.members.values():
        if isinstance(det, GroupedDetector):  # one asset: the file, or each column alone
            m = len(vcols)
            det.bind_groups(np.zeros(m, np.int64) if args.asset else np.arange(m))
    scores, alert = score_frame(ens, time_ns, values, raw=args.raw, progress=len(rows) >= 10_000)
    with open(args.output, "w", newline="") as f:
        w = csv.writer(f)
        names = [header[tj]] + [header[j] for j in vcols]
        many = len(vcols) > 1
        if many:
            names += [f"{header[j]}_anomaly_score" for j in vcols]
            names += [f"{header[j]}_alert" for j in vcols]
        w.writerow([*names, "anomaly_score", "alert"])
        best = scores.max(axis=1)
        any_open = alert.any(axis=1)
        s_txt = [[format(v, ".6g") for v in r] for r in np.round(scores, 6).tolist()]
        b_txt = [format(v, ".6g") for v in np.round(best, 6).tolist()]
        a_int = alert.astype(int).tolist()
        o_int = any_open.astype(int).tolist()
        for i in range(len(rows)):  # writing text, not the hot path
            row = [cols[tj][i]] + [cols[j][i] for j in vcols]
            if many:
                row += s_txt[i] + a_int[i]
            w.writerow([*row, b_txt[i], o_int[i]])
    return 0


EPILOG = """examples:
  riskwatch score nyc_taxi.csv -o scored.csv                     # the bundled `generic` entry
  riskwatch score nyc_taxi.csv -o scored.csv --detector anomaly  # another entry of the file
  riskwatch score nyc_taxi.csv -o scored.csv --detector robust   # one detector type alone
  riskwatch score nyc_taxi.csv -o scored.csv --detector cad_ose  # CAD OSE, published parameters
  riskwatch score pump.csv -o scored.csv --asset                 # columns: one asset's sensors
  riskwatch score plant.csv -o scored.csv --config my.yaml --detector pump_pressure
"""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "score",
        help="offline anomaly scoring of a timestamp,value CSV",
        description="Run the streaming detectors over a CSV (timestamp column plus one or "
        "more numeric columns, one sensor each; the delimiter is sniffed: , ; tab |) and "
        "write the input's columns plus anomaly_score and alert (1 while an anomaly window "
        "is open on any column) row for row. No look-ahead: a row's score depends only on "
        "rows before and at it. "
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
    p.add_argument(
        "--asset",
        action="store_true",
        help="the value columns are one asset's sensors: asset-level members (e.g. "
        "asset_mahalanobis) score them jointly (default: each column its own asset)",
    )
    p.set_defaults(func=_score)
