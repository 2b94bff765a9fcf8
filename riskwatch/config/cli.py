"""``riskwatch config``: copy the bundled configs out for editing, print samples.

The bundled files live inside the package (``importlib.resources``), so a fresh install
can run ``riskwatch demo`` and ``riskwatch config init DIR`` with nothing else present.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
from importlib import resources
from pathlib import Path

__all__ = ["bundled_root", "register"]

SUBDIRS = ("rules", "catalog", "detectors", "scenarios", "mosquitto", "notifiers")
#: printed by ``config sample`` but not copied by ``config init``: files for other programs
SAMPLE_ONLY = ("systemd", "prometheus", "grafana")
#: what ``config init --production`` copies from the bundled set (the site's own catalogue
#: replaces the sample plants, whose 73 sensors would raise "no data" at a real site)
PRODUCTION_SUBDIRS = ("rules", "detectors", "mosquitto")
DEFAULT_STATE_DIR = "/var/lib/riskwatch"


def bundled_root() -> Path:
    """Folder of the bundled config files inside the installed package."""
    return Path(str(resources.files("riskwatch.config")))


def _samples() -> dict[str, Path]:
    root = bundled_root()
    out = {"engine": root / "engine.yaml"}
    for sub in (*SUBDIRS, *SAMPLE_ONLY):
        for p in sorted((root / sub).rglob("*")):
            if p.is_file() and p.suffix in (".yaml", ".yml", ".csv", ".conf", ".acl", ".json",
                                            ".service", ".conf", ".sysusers"):  # fmt: skip
                name = p.relative_to(root / sub)
                keep = sub in ("mosquitto", *SAMPLE_ONLY)  # named with their suffix
                out[f"{sub}/{name if keep else name.with_suffix('')}"] = p
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
        "'riskwatch run -c DIR/engine.yaml'. With --production, write a production-shaped "
        "config instead: console, alert API, storage and metrics on; strict ingest over an "
        "empty catalog/site.csv to fill in first; secrets read from files under DIR/secrets/ "
        "(an alert API admin token is generated); alerts, console users, spool and dead "
        "letters under --state-dir.",
        epilog="example: riskwatch config init --production /etc/riskwatch "
        "--state-dir /var/lib/riskwatch",
    )
    init.add_argument("dir", help="target folder (created if missing)")
    init.add_argument("--force", action="store_true", help="overwrite existing files")
    init.add_argument(
        "--production", action="store_true",
        help="write the production layout (see above) instead of the demo-shaped sample",
    )  # fmt: skip
    init.add_argument(
        "--bind", default="127.0.0.1",
        help="with --production: the address console, alert API and metrics listen on "
        "(default 127.0.0.1, behind a reverse proxy; 0.0.0.0 in a container)",
    )  # fmt: skip
    init.add_argument(
        "--state-dir", default=DEFAULT_STATE_DIR,
        help=f"with --production: the folder the service writes (default {DEFAULT_STATE_DIR})",
    )  # fmt: skip
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
    if args.production:
        return _init_production(
            Path(args.dir), Path(args.state_dir), bind=args.bind, force=args.force
        )
    root = bundled_root()
    dest = Path(args.dir)
    dest.mkdir(parents=True, exist_ok=True)
    items = [(root / "engine.yaml", dest / "engine.yaml")]
    for sub in SUBDIRS:
        items += _tree(root / sub, dest / sub)
    copied, skipped = _copy(items, force=args.force)
    print(
        f"copied {copied} files into {dest}"
        + (f" ({skipped} existing kept; --force overwrites)" if skipped else "")
    )
    print(f"next: edit {dest / 'engine.yaml'}, then: riskwatch run -c {dest / 'engine.yaml'}")
    return 0


def _tree(src: Path, dst: Path) -> list[tuple[Path, Path]]:
    return [
        (p, dst / p.relative_to(src))
        for p in sorted(src.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    ]


def _copy(items: list[tuple[Path, Path]], *, force: bool) -> tuple[int, int]:
    copied = skipped = 0
    for src, dst in items:
        if dst.exists() and not force:
            skipped += 1
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        copied += 1
    return copied, skipped


def _init_production(dest: Path, state: Path, *, bind: str, force: bool) -> int:
    """Write the production layout: config in ``dest`` (read-only to the service), state in
    ``state``. Paths in the written engine.yaml are absolute, so the service's working
    folder does not matter and secret files resolve wherever the engine is started from."""
    root = bundled_root()
    dest, state = dest.resolve(), state.resolve()
    dest.mkdir(parents=True, exist_ok=True)
    items = [(root / "production" / "site.csv", dest / "catalog" / "site.csv")]
    for sub in PRODUCTION_SUBDIRS:
        items += [(s, d) for s, d in _tree(root / sub, dest / sub) if not s.stem.endswith("_test")]
    copied, skipped = _copy(items, force=force)
    engine = dest / "engine.yaml"
    if engine.exists() and not force:
        skipped += 1
    else:
        text = (root / "production" / "engine.yaml").read_text(encoding="utf-8")
        for key, val in (("@CONFIG_DIR@", dest), ("@STATE_DIR@", state), ("@BIND@", bind)):
            text = text.replace(key, str(val))
        engine.write_text(text, encoding="utf-8")
        copied += 1
    sec = dest / "secrets"
    sec.mkdir(mode=0o750, exist_ok=True)
    _copy([(root / "production" / "secrets-README.txt", sec / "README.txt")], force=force)
    token = sec / "api-admin.token"
    if not token.exists():  # never replaced: clients already hold it
        fd = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
    try:
        state.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"note: {state} not created ({exc.strerror}); the systemd unit creates it "
              "(StateDirectory=riskwatch)")  # fmt: skip
    print(
        f"wrote the production config into {dest} ({copied} files"
        + (f", {skipped} existing kept; --force overwrites" if skipped else "")
        + f"); state folder {state}"
    )
    print(
        "next, in this order:\n"
        f"  1. list your measuring points in {dest / 'catalog' / 'site.csv'}\n"
        f"  2. write {sec / 'mqtt.password'} and {sec / 'influx.password'} "
        f"(see {sec / 'README.txt'})\n"
        f"  3. set mqtt.url and storage.influx.url in {engine}\n"
        f"  4. riskwatch users -c {engine} add NAME --role admin   (the first console admin)\n"
        f"  5. riskwatch run -c {engine} --check, then start the service"
    )
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
