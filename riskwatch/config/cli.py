"""``riskwatch config``: copy the bundled configs out for editing, print samples.

The bundled files live inside the package (``importlib.resources``), so a fresh install
can run ``riskwatch demo`` and ``riskwatch config init DIR`` with nothing else present.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from importlib import resources
from pathlib import Path

__all__ = ["bundled_root", "register"]

SUBDIRS = ("rules", "catalog", "detectors", "scenarios", "mosquitto", "notifiers")


def bundled_root() -> Path:
    """Folder of the bundled config files inside the installed package."""
    return Path(str(resources.files("riskwatch.config")))


def _samples() -> dict[str, Path]:
    root = bundled_root()
    out = {"engine": root / "engine.yaml"}
    for sub in SUBDIRS:
        for p in sorted((root / sub).rglob("*")):
            if p.is_file() and p.suffix in (".yaml", ".yml", ".csv", ".conf", ".acl"):
                name = p.relative_to(root / sub)
                out[f"{sub}/{name if sub == 'mosquitto' else name.with_suffix('')}"] = p
    return out


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "config",
        help="copy bundled configs out (init) or print a sample",
        description="Work with the configuration files that ship inside riskwatch.",
    )
    csub = p.add_subparsers(dest="config_command", metavar="ACTION")
    init = csub.add_parser(
        "init",
        help="copy the sample engine config, rule packs, catalogue, detectors and scenarios",
        description="Copy the bundled engine.yaml, rules/, catalog/, detectors/ and scenarios/ "
        "into DIR so engineers can edit and version them; then run "
        "'riskwatch run -c DIR/engine.yaml'.",
    )
    init.add_argument("dir", help="target folder (created if missing)")
    init.add_argument("--force", action="store_true", help="overwrite existing files")
    init.set_defaults(func=_init)
    sample = csub.add_parser(
        "sample",
        help="print a bundled sample (engine, rules/coal_mine, catalog/mixed, ...)",
        description="Print one bundled file; without KIND, list what there is.",
    )
    sample.add_argument("kind", nargs="?", help="e.g. engine, rules/hazchem, detectors/default")
    sample.set_defaults(func=_sample)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])


def _init(args: argparse.Namespace) -> int:
    root = bundled_root()
    dest = Path(args.dir)
    dest.mkdir(parents=True, exist_ok=True)
    copied = skipped = 0
    items = [(root / "engine.yaml", dest / "engine.yaml")]
    for sub in SUBDIRS:
        for p in sorted((root / sub).rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts:
                items.append((p, dest / sub / p.relative_to(root / sub)))
    for src, dst in items:
        if dst.exists() and not args.force:
            skipped += 1
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        copied += 1
    print(
        f"copied {copied} files into {dest}"
        + (f" ({skipped} existing kept; --force overwrites)" if skipped else "")
    )
    print(f"next: edit {dest / 'engine.yaml'}, then: riskwatch run -c {dest / 'engine.yaml'}")
    return 0


def _sample(args: argparse.Namespace) -> int:
    samples = _samples()
    if not args.kind:
        sys.stdout.write("".join(f"{name}\n" for name in samples))
        return 0
    path = samples.get(args.kind)
    if path is None:
        print(f"no sample {args.kind!r}; have: {', '.join(samples)}", file=sys.stderr)
        return 1
    sys.stdout.write(path.read_text(encoding="utf-8"))
    return 0
