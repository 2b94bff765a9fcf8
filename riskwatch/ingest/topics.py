"""Topic templates: which MQTT topic levels become tags.

>>> t = TopicTemplate("rw/{enterprise}/{site}/{gateway}")
>>> t.match("rw/mine1/face3/GW-7")
{'enterprise': 'mine1', 'site': 'face3', 'gateway': 'GW-7'}
>>> t.match("rw/mine1/face3") is None
True
>>> t.match("other/mine1/face3/GW-7") is None
True
"""

from __future__ import annotations

import re

__all__ = ["TopicTemplate"]

_FIELD = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")


class TopicTemplate:
    """A topic template such as ``rw/{enterprise}/{site}/{gateway}``.

    Each level is either a literal, a ``{name}`` placeholder (becomes a tag), ``+``
    (any one level, ignored) or a trailing ``#`` (any rest, ignored).
    """

    def __init__(self, template: str) -> None:
        self.template = template
        self.levels: list[tuple[str, str]] = []  # (kind, text): kind in lit, var, plus, hash
        parts = template.split("/")
        for i, p in enumerate(parts):
            m = _FIELD.match(p)
            if m:
                self.levels.append(("var", m.group(1)))
            elif p == "+":
                self.levels.append(("plus", p))
            elif p == "#":
                if i != len(parts) - 1:
                    raise ValueError(f"'#' must be the last level of {template!r}")
                self.levels.append(("hash", p))
            elif "{" in p or "}" in p:
                raise ValueError(f"bad placeholder {p!r} in topic template {template!r}")
            else:
                self.levels.append(("lit", p))
        self.names = [t for k, t in self.levels if k == "var"]
        self._cache: dict[str, dict[str, str] | None] = {}

    def match(self, topic: str) -> dict[str, str] | None:
        """Tags of ``topic`` or None if it does not fit the template (cached per topic)."""
        hit = self._cache.get(topic, False)
        if hit is not False:
            return hit  # type: ignore[return-value]
        out = self._match(topic)
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[topic] = out
        return out

    def _match(self, topic: str) -> dict[str, str] | None:
        parts = topic.split("/")
        tags: dict[str, str] = {}
        for i, (kind, text) in enumerate(self.levels):
            if kind == "hash":
                return tags
            if i >= len(parts):
                return None
            p = parts[i]
            if kind == "lit" and p != text:
                return None
            if kind == "var":
                if not p:
                    return None
                tags[text] = p
        if len(parts) != len(self.levels):
            return None
        return tags

    def format(self, **tags: str) -> str:
        return "/".join(tags[t] if k == "var" else t for k, t in self.levels)
