"""NAB subset: would asking a member's evidence to persist pay? (offline, not shipped)

Runs the ``generic`` entry (or ``--config``/``--detector``) over every NAB file with the
streaming ensemble, keeps each member's *calibrated* score per reading, and recombines
them offline: per member, the surprise ``u`` (decades, capped at 10) of the current
reading is combined with that of the previous ``k - 1`` readings by Fisher's method
(``-log10`` of the probability that ``k`` independent uniform tails have a product this
small), ``max(u, fisher) - log10(2)`` (two tests looked at), then ``any`` over members.
Uses only the current and past readings (no look-ahead). The repeat suppression of the
ensemble (its threshold and hold) is replayed on the result, which is then scored by
the NAB scorer like ``detection_nab.py``. Prints all files, each category alone, and
leave-one-file-out differences against the entry as it is (``k = 0``).

    python bench/nab_persistence.py            # k = 2 and 3
    python bench/nab_persistence.py --k 2
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
import detection_nab as dn

from riskwatch.detectors.cli import select_spec


def _members(args: tuple[str | None, str | None, Path]) -> dict[str, np.ndarray]:
    config, detector, f = args
    ens = select_spec(config, detector).build()
    df = pd.read_csv(f)
    t = pd.to_datetime(df["timestamp"], utc=True, format="mixed").dt.tz_localize(None)
    tn = t.to_numpy().astype("datetime64[ns]").astype(np.int64)
    res = ens.process(np.zeros(len(df), np.int32), df["value"].to_numpy(float), tn)
    meta = {"t": tn, "threshold": np.array(ens.threshold), "hold": np.array(ens.hold_ns)}
    return {**meta, **res.members}


def fisher(u: np.ndarray, k: int) -> np.ndarray:
    """``-log10 P(product of k uniforms <= 10**-(sum of the last k u))`` per reading."""
    s = u.copy()
    for j in range(1, k):
        s[j:] += u[:-j]
    x = s * np.log(10.0)
    tail, term = np.zeros_like(x), np.ones_like(x)
    for i in range(k):
        if i:
            term = term * x / i
        tail += term
    return s - np.log10(tail)


def combined(m: dict[str, np.ndarray], names: list[str], k: int) -> np.ndarray:
    outs = []
    for n in names:
        u = np.minimum(m[n], 1.0) * 10.0
        if k >= 2:
            u = np.maximum(u, fisher(u, k)) - np.log10(2.0)
        outs.append(np.clip(u / 10.0, 0.0, 1.0))
    return np.max(outs, axis=0)


def suppress(score: np.ndarray, t: np.ndarray, thr: float, hold: int) -> np.ndarray:
    """The ensemble's decision score: 0 for repeats inside an open window."""
    dec, act, last = score.copy(), False, 0
    for i in range(len(score)):
        hot = score[i] >= thr
        if act:
            dec[i] = 0.0
            if hot:
                last = t[i]
            elif t[i] - last >= hold:
                act = False
        elif hot:
            act, last = True, t[i]
    return dec


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--config")
    ap.add_argument("--detector")
    ap.add_argument("--k", type=int, nargs="+", default=[2, 3])
    a = ap.parse_args(argv)
    windows = json.loads((dn.NAB / "labels" / "combined_windows.json").read_text())
    files = sorted((dn.NAB / "data").glob("*/*.csv"))
    with ProcessPoolExecutor(2) as ex:
        mem = list(ex.map(_members, [(a.config, a.detector, f) for f in files]))
    names = [n for n in mem[0] if n not in ("t", "threshold", "hold")]
    out: dict[int, Path] = {}
    for k in [0, *a.k]:
        d = Path(tempfile.mkdtemp(prefix=f"rw-nab-persist{k}-"))
        for f, m in zip(files, mem, strict=True):
            dec = suppress(combined(m, names, k), m["t"], float(m["threshold"]), int(m["hold"]))
            src = pd.read_csv(f, dtype=str, keep_default_na=False)
            dst = d / f.parent.name / f.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            src.assign(anomaly_score=np.round(dec, 6)).to_csv(dst, index=False)
        out[k] = d
        print(dn._row("as is" if k == 0 else f"persistence k={k}", dn.score(d, windows)))
        for c in ("artificial", "realKnownCause"):
            sub = {f: w for f, w in windows.items() if f.startswith(c)}
            print(dn._row(f"  only {c}", dn.score(d, sub)))
    for k in a.k:
        better = dict.fromkeys(dn.PROFILES, 0)
        for f in windows:
            sub = {g: w for g, w in windows.items() if g != f}
            r0, r1 = dn.score(out[0], sub), dn.score(out[k], sub)
            for p in dn.PROFILES:
                better[p] += r1[p]["normalized"] > r0[p]["normalized"]
        print(f"k={k}: leave-one-file-out, better than as is without each of {len(windows)}:")
        print("  " + ", ".join(f"{p} {v}" for p, v in better.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
