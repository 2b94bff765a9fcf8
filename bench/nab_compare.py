"""NAB subset: is a candidate configuration better than the baseline, beyond the labels?

The over-fitting guard of docs/detectors.md as one command. Both configurations run
through ``riskwatch score`` on every file (as ``detection_nab.py`` does); then, for the
three NAB profiles, it prints

- the whole subset, and each category alone (the split check: a change should not buy
  one category at the cost of the other);
- leave-one-file-out: with each of the 18 files removed in turn, on how many of the
  18 remaining subsets the candidate scores above / below the baseline (a gain that
  hangs on one file shows up as a split count).

    git show 5ae4a5b:riskwatch/config/detectors/default.yaml > /tmp/previous.yaml
    python bench/nab_compare.py --baseline /tmp/previous.yaml          # candidate: bundled
    python bench/nab_compare.py --baseline A.yaml --candidate B.yaml --detector generic

Both configurations run with the code of this checkout, so it compares configuration
changes; for a code change, keep the result folder of ``detection_nab.py`` from the old
code and compare the two folders.

Every run of it on the labelled windows is one more configuration looked at: count
them in your note.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import detection_nab as dn

CATEGORIES = ("artificialNoAnomaly", "artificialWithAnomaly", "realKnownCause")


def _split_rows(label: str, out: Path, windows: dict) -> None:
    print(dn._row(label, dn.score(out, windows)))
    art = {f: w for f, w in windows.items() if f.startswith("artificial")}
    print(dn._row("  artificial (all 11 files)", dn.score(out, art)))
    for c in CATEGORIES[1:]:
        print(
            dn._row(
                f"  only {c}", dn.score(out, {f: w for f, w in windows.items() if f.startswith(c)})
            )
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--baseline", required=True, help="detector config file of the baseline")
    ap.add_argument("--candidate", help="detector config file (default: the bundled one)")
    ap.add_argument("--detector", help="entry name in both files (default: generic)")
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args(argv)
    windows = json.loads((dn.NAB / "labels" / "combined_windows.json").read_text())
    outs = {}
    for name, cfg in (("baseline", a.baseline), ("candidate", a.candidate)):
        outs[name] = Path(tempfile.mkdtemp(prefix=f"rw-nab-{name}-"))
        print(f"running {name} ({cfg or 'bundled config'}) ...", file=sys.stderr)
        dn.run_all(outs[name], cfg, a.detector, a.jobs)
    print(f"{'':<34} {'standard':>9} {'low-FP':>9} {'low-FN':>9}")
    for name, out in outs.items():
        _split_rows(name, out, windows)
    above = dict.fromkeys(dn.PROFILES, 0)
    below = dict.fromkeys(dn.PROFILES, 0)
    for f in windows:
        sub = {g: w for g, w in windows.items() if g != f}
        r0, r1 = dn.score(outs["baseline"], sub), dn.score(outs["candidate"], sub)
        for p in dn.PROFILES:
            d = r1[p]["normalized"] - r0[p]["normalized"]
            above[p] += d > 1e-9
            below[p] += d < -1e-9
    print(f"leave-one-file-out (of {len(windows)}): candidate above / below the baseline")
    print("  " + ", ".join(f"{p} {above[p]} / {below[p]}" for p in dn.PROFILES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
