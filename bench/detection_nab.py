"""NAB subset through ``riskwatch score``: one configuration for every file, three profiles.

Runs the real CLI (``riskwatch score FILE -o OUT``, i.e. exactly the streaming code) over
every data file of the NAB subset, then scores the result folder with the independent
NAB scorer (``/work/shared/tools/nabscore.py``): NAB's corpus-wide optimal threshold per
profile, and also the score at the configuration's own fixed threshold (0.5), which
shows whether the score scale is calibrated rather than tuned.

    python bench/detection_nab.py                     # bundled default config
    python bench/detection_nab.py --config my.yaml --detector NAME
    python bench/detection_nab.py --holdout           # also score each category alone
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SHARED = Path(os.environ.get("RISKWATCH_SHARED", "/work/shared"))
NAB = SHARED / "data" / "nab"
SCORER = SHARED / "tools" / "nabscore.py"
PUBLISHED = {  # standard / low-FP / low-FN on this subset (issue 6)
    "ARTime": (67.1, 58.1, 72.7),
    "Numenta HTM": (61.3, 54.3, 66.2),
    "Random Cut Forest": (47.1, 34.7, 56.7),
    "windowed Gaussian": (12.1, 4.8, 16.0),
}
PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")


def _scorer():
    spec = importlib.util.spec_from_file_location("nabscore", SCORER)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["nabscore"] = mod
    spec.loader.exec_module(mod)
    return mod


def _cli() -> list[str]:
    exe = Path(sys.executable).with_name("riskwatch")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "import sys; from riskwatch.cli import main; sys.exit(main())"]


def run_all(out: Path, config: str | None, detector: str | None, jobs: int) -> None:
    files = sorted((NAB / "data").glob("*/*.csv"))
    cmd = _cli()

    def one(f: Path) -> None:
        dst = out / f.parent.name / f.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        args = [*cmd, "--log-level", "WARNING", "score", str(f), "-o", str(dst)]
        if config:
            args += ["--config", config]
        if detector:
            args += ["--detector", detector]
        subprocess.run(args, check=True, stderr=subprocess.DEVNULL)

    with ThreadPoolExecutor(jobs) as ex:
        list(ex.map(one, files))


def score(out: Path, windows: dict, fixed: float | None = None) -> dict:
    ns = _scorer()
    data = ns.load_results(str(out), windows, data_dir=str(NAB / "data"))
    return ns.score_corpus(data, windows, list(PROFILES), threshold=fixed)


def _row(label: str, res: dict) -> str:
    vals = " ".join(f"{res[p]['normalized']:>9.1f}" for p in PROFILES)
    thr = " ".join(f"{res[p]['threshold']:.3f}" for p in PROFILES)
    det = res["standard"]
    return (
        f"{label:<28} {vals}   thr {thr}   windows {det['windows_detected']}/{det['n_windows']}"
        f"  fp-rows {det['fp_rows']}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--config")
    ap.add_argument("--detector")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", help="keep result CSVs here (default: a temporary folder)")
    ap.add_argument("--reuse", action="store_true", help="score existing --out results only")
    ap.add_argument("--holdout", action="store_true", help="also score each category alone")
    ap.add_argument("--per-file", action="store_true", help="print per-file standard scores")
    ap.add_argument("--json", help="write the summary here")
    a = ap.parse_args(argv)
    windows = json.loads((NAB / "labels" / "combined_windows.json").read_text())
    out = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="rw-nab-"))
    t0 = time.perf_counter()
    if not a.reuse:
        run_all(out, a.config, a.detector, a.jobs)
    elapsed = time.perf_counter() - t0
    opt = score(out, windows)
    fixed = score(out, windows, fixed=0.5)
    print(f"NAB subset: {len(windows)} files, scored in {elapsed:.1f}s; results in {out}")
    print(f"{'detector':<28} {'standard':>9} {'low-FP':>9} {'low-FN':>9}")
    print(_row("riskwatch (NAB-optimal thr)", opt))
    print(_row("riskwatch (fixed thr 0.5)", fixed))
    for name, v in PUBLISHED.items():
        print(f"{name:<28} {v[0]:>9.1f} {v[1]:>9.1f} {v[2]:>9.1f}   (published)")
    summary = {
        "optimal": {p: opt[p]["normalized"] for p in PROFILES},
        "fixed_0.5": {p: fixed[p]["normalized"] for p in PROFILES},
    }
    if a.holdout:
        cats = sorted({k.split("/")[0] for k in windows})
        for c in cats:
            sub = {k: v for k, v in windows.items() if k.startswith(c + "/")}
            if not any(sub.values()):
                continue
            print(_row(f"  only {c}", score(out, sub)))
    if a.per_file:
        for f, r in sorted(opt["standard"]["files"].items()):
            print(
                f"  {f:<60} {r['score']:>7.3f}  tp {r.get('windows_detected')}  fp {r.get('fp_rows')}"
            )
    if a.json:
        Path(a.json).write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
