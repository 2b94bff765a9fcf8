"""Is riskwatch's CAD OSE the published one? File by file against NAB's ``contextOSE`` results.

Runs :func:`riskwatch.detectors.cad_ose.cad_ose_scores` the way NAB's runner runs its
``context_ose`` detector (the file's minimum and maximum as the range, rest period
``probation / 5`` with probation ``min(floor(0.15 n), 750)``, every other parameter at
the published default) over the 18 files of the NAB subset, then compares with NAB's
shipped result files (``results/contextOSE/``):

- row by row: Pearson correlation, share of rows equal to 1e-9, largest difference;
- NAB score per file at NAB's published contextOSE thresholds (NAB
  ``config/thresholds.json``: standard 0.76552734375, low FP 0.76563720703125, low FN
  0.70478515625), ours and the published file's, with the repository's scorer
  (``detection_nab.score``: the independent NAB scorer, standard / low-FP / low-FN
  profiles);
- the 18-file corpus score (NAB's sweep threshold) of both.

Values are parsed as NAB's pandas read them (the legacy ``xstrtod`` of pandas' C
parser, which is not correctly rounded: on ec2_request_latency_system_failure.csv it
puts the maximum one level lower). Nothing is tuned here; the parameters are the
published ones.

    python bench/cad_ose_faithful.py [--jobs 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import detection_nab as dn

from riskwatch.detectors.cad_ose import cad_ose_scores

PUBLISHED_THRESHOLDS = {  # NAB config/thresholds.json, "contextOSE"
    "standard": 0.7655273437500002,
    "reward_low_FP_rate": 0.7656372070312502,
    "reward_low_FN_rate": 0.7047851562500003,
}


def pandas_xstrtod(text: str) -> float:
    """A number as pandas' legacy C parser (``xstrtod``, its default until 1.x) read it:
    digits accumulated in a double, then scaled by repeated squaring of 10.

    >>> pandas_xstrtod("99.248") == 99.248, pandas_xstrtod("-1.5e2")
    (False, -150.0)
    """
    s = text.strip()
    neg = s.startswith("-")
    if s[:1] in "+-":
        s = s[1:]
    mant, _, exp = s.lower().partition("e")
    ip, _, fp = mant.partition(".")
    num = 0.0
    for ch in ip + fp:
        num = num * 10.0 + (ord(ch) - 48)
    e = -len(fp) + (int(exp) if exp else 0)
    p10, n = 10.0, abs(e)
    while n:
        if n & 1:
            num = num / p10 if e < 0 else num * p10
        n >>= 1
        p10 *= p10
    return -num if neg else num


def _run(rel: str) -> tuple[str, list[str], np.ndarray, float]:
    with open(dn.NAB / "data" / rel, newline="") as f:
        rows = list(csv.DictReader(f))
    x = np.array([pandas_xstrtod(r["value"]) for r in rows])
    n = len(x)
    probation = min(math.floor(0.15 * n), 0.15 * 5000)
    t0 = time.process_time()
    s = cad_ose_scores(x, lo=float(x.min()), hi=float(x.max()), rest_period=probation / 5.0)
    return rel, [r["timestamp"] for r in rows], s, time.process_time() - t0


def _published(rel: str) -> np.ndarray:
    d, f = rel.split("/")
    path = dn.NAB / "results" / "contextOSE" / d / f"contextOSE_{f}"
    with open(path, newline="") as fh:
        return np.array([float(r["anomaly_score"]) for r in csv.DictReader(fh)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", help="write our result CSVs here (default: a temporary folder)")
    a = ap.parse_args(argv)
    import json

    windows = json.loads((dn.NAB / "labels" / "combined_windows.json").read_text())
    out = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="rw-cad-"))
    files = sorted(windows)
    with ProcessPoolExecutor(a.jobs) as ex:
        runs = list(ex.map(_run, files))
    pub_dir = Path(tempfile.mkdtemp(prefix="rw-cad-pub-"))
    cpu = 0.0
    rows_total = 0
    for rel, ts, s, dt in runs:
        cpu += dt
        rows_total += len(s)
        for root, scores in ((out, s), (pub_dir, _published(rel))):
            dst = root / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            with open(dst, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["timestamp", "anomaly_score"])
                w.writerows(zip(ts, (repr(float(v)) for v in scores), strict=True))
    ours_fix = dn.score(out, windows, PUBLISHED_THRESHOLDS)
    pub_fix = dn.score(pub_dir, windows, PUBLISHED_THRESHOLDS)
    print(
        f"CAD OSE on the NAB subset: {rows_total} rows, {cpu:.1f} s CPU "
        f"({1e6 * cpu / rows_total:.0f} us per reading); our results in {out}"
    )
    print("per file: correlation with the published scores, rows equal (1e-9), max |diff|,")
    print(
        "NAB raw score at the published thresholds (standard / low FP / low FN), ours vs published"
    )
    hdr = f"{'file':<58} {'corr':>7} {'equal':>7} {'max|d|':>8}   {'ours':>22}   {'published':>22}"
    print(hdr)
    worst = 0.0
    for rel, _, s, _ in runs:
        p = _published(rel)
        corr = float(np.corrcoef(s, p)[0, 1]) if s.std() > 0 and p.std() > 0 else float("nan")
        eq = float(np.mean(np.abs(s - p) < 1e-9))
        mx = float(np.abs(s - p).max())
        mine = [ours_fix[q]["files"][rel]["score"] for q in dn.PROFILES]
        theirs = [pub_fix[q]["files"][rel]["score"] for q in dn.PROFILES]
        worst = max(worst, *(abs(x - y) for x, y in zip(mine, theirs, strict=True)))
        fmt = " ".join(f"{v:>7.3f}" for v in mine), " ".join(f"{v:>7.3f}" for v in theirs)
        print(f"{rel:<58} {corr:>7.4f} {eq:>7.4f} {mx:>8.1e}   {fmt[0]}   {fmt[1]}")
    print(f"largest per-file score difference: {worst:.6f} points")
    opt_o, opt_p = dn.score(out, windows), dn.score(pub_dir, windows)
    print("18-file corpus, normalised (NAB sweep threshold):")
    for label, r in (("ours", opt_o), ("published", opt_p)):
        vals = " / ".join(f"{r[q]['normalized']:.2f}" for q in dn.PROFILES)
        print(f"  {label:<10} {vals}")
    for label, r in (("ours", ours_fix), ("published", pub_fix)):
        vals = " / ".join(f"{r[q]['normalized']:.2f}" for q in dn.PROFILES)
        print(f"  {label:<10} {vals}   (at NAB's published contextOSE thresholds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
