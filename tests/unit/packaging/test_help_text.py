"""Every ``--help`` text of every verb is plain text: no reStructuredText roles or double
backticks from the docstrings the verbs reuse."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

from riskwatch.cli import _all_parsers, build_parser

MARKUP = re.compile(r"``|:[a-z]+:`")


def test_no_help_text_carries_docstring_markup() -> None:
    parsers = _all_parsers(build_parser())
    assert len(parsers) > 20
    texts = []
    for p in parsers:
        texts += [p.description or "", p.epilog or "", p.format_help()]
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                texts += [c.help or "" for c in a._choices_actions]
    bad = [t[:120] for t in texts if MARKUP.search(t)]
    assert bad == []


def test_demo_help_reads_plainly() -> None:
    r = subprocess.run([sys.executable, "-m", "riskwatch.cli", "demo", "--help"],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0
    assert "riskwatch demo: the whole system on one machine" in r.stdout
    assert "the engine (riskwatch.engine.Engine)" in r.stdout
