"""YAML loading that keeps line marks, so every config error can name file:line:col.

>>> doc = YamlDoc.from_text("mqtt:\\n  qos: 3\\n", file="engine.yaml")
>>> doc.data
{'mqtt': {'qos': 3}}
>>> doc.where(("mqtt", "qos"))
(2, 8)
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from riskwatch.errors import ConfigError, ConfigErrors

__all__ = ["KeyPath", "YamlDoc", "format_path"]

KeyPath = tuple[str | int, ...]


def format_path(path: KeyPath) -> str:
    """``("rules", 3, "above")`` → ``rules[3].above``."""
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


@dataclass
class YamlDoc:
    """Plain Python data from a YAML document plus a map from key path to (line, col)."""

    data: Any
    file: str
    marks: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)

    @classmethod
    def from_path(cls, path: str | Path) -> YamlDoc:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigErrors(
                [ConfigError("", f"cannot read file: {exc.strerror}", file=str(p))]
            ) from exc
        return cls.from_text(text, file=str(p))

    @classmethod
    def from_text(cls, text: str, file: str = "<string>") -> YamlDoc:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            raise ConfigErrors(
                [
                    ConfigError(
                        "",
                        f"invalid YAML: {exc.problem}",
                        file=file,
                        line=mark.line + 1 if mark else None,
                        col=mark.column + 1 if mark else None,
                    )
                ]
            ) from exc
        except yaml.YAMLError as exc:
            raise ConfigErrors([ConfigError("", f"invalid YAML: {exc}", file=file)]) from exc
        finally:
            loader.dispose()
        doc = cls(None, file)
        errors: list[ConfigError] = []
        if node is not None:
            doc.data = doc._convert(loader, node, (), errors)
        ConfigErrors.raise_if(errors)
        return doc

    def _convert(
        self, loader: yaml.SafeLoader, node: yaml.Node, path: KeyPath, errors: list[ConfigError]
    ) -> Any:
        self.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            loader.flatten_mapping(node)
            out: dict[Hashable, Any] = {}
            for knode, vnode in node.value:
                key = loader.construct_object(knode, deep=True)
                if not isinstance(key, Hashable) or isinstance(key, (list, dict)):
                    errors.append(self.error(path, "mapping key must be a scalar"))
                    continue
                skey = key if isinstance(key, (str, int)) else str(key)
                if skey in out:
                    line = knode.start_mark.line + 1
                    errors.append(
                        ConfigError(
                            format_path((*path, skey)), "duplicate key", file=self.file, line=line
                        )
                    )
                self.key_marks[(*path, skey)] = (
                    knode.start_mark.line + 1,
                    knode.start_mark.column + 1,
                )
                out[skey] = self._convert(loader, vnode, (*path, skey), errors)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._convert(loader, v, (*path, i), errors) for i, v in enumerate(node.value)]
        return loader.construct_object(node, deep=True)

    def where(self, path: KeyPath) -> tuple[int | None, int | None]:
        """Line and column of ``path``, or of its nearest ancestor that has a mark."""
        p = tuple(path)
        while True:
            if p in self.marks:
                return self.marks[p]
            if not p:
                return (None, None)
            p = p[:-1]

    def error(self, path: KeyPath, message: str, *, at_key: bool = False) -> ConfigError:
        """A ConfigError located at ``path`` (at its key rather than its value if ``at_key``)."""
        mark = self.key_marks.get(tuple(path)) if at_key else None
        line, col = mark if mark else self.where(path)
        return ConfigError(format_path(path), message, file=self.file, line=line, col=col)
