"""Label matchers: ``{site: face1, level: [red, orange], rule: "~ch4_.*"}``.

Every key must match; a list means any of its values; ``~`` starts a regular expression
(full match); an empty matcher set matches everything.

>>> m = Matchers({"site": ["face1"], "level": ["red", "orange"], "rule": ["~ch4_.*"]})
>>> m({"site": "face1", "level": "red", "rule": "ch4_face"})
True
>>> m({"site": "face1", "level": "yellow", "rule": "ch4_face"})
False
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

__all__ = ["Matchers"]


class Matchers:
    __slots__ = ("_tests", "spec")

    def __init__(self, spec: Mapping[str, Sequence[str] | str] | None) -> None:
        self.spec = {k: [v] if isinstance(v, str) else list(v) for k, v in (spec or {}).items()}
        self._tests: list[tuple[str, frozenset[str], list[re.Pattern[str]]]] = []
        for k, vals in self.spec.items():
            plain = frozenset(v for v in vals if not v.startswith("~"))
            rx = [re.compile(v[1:]) for v in vals if v.startswith("~")]
            self._tests.append((k, plain, rx))

    def __call__(self, labels: Mapping[str, str]) -> bool:
        for k, plain, rx in self._tests:
            v = labels.get(k, "")
            if v in plain:
                continue
            if any(r.fullmatch(v) for r in rx):
                continue
            return False
        return True

    def __repr__(self) -> str:
        return f"Matchers({self.spec!r})"
