r"""Text that is not valid UTF-8 in parsed JSON: lone UTF-16 surrogates.

orjson refuses them; the stdlib parser (the decoder's fallback for NaN and big integers)
accepts ``\uD800``-style escapes and yields strings no UTF-8 encoder can write, which
once stopped storage for good. Only payloads with such an escape are walked.

>>> obj = [{"sensor": "A"}, {"sensor": "B\ud800"}]
>>> may_hold_surrogates(rb'[{"sensor": "B\ud800"}]'), mark_bad_text(obj), obj[1].where
(True, None, 'sensor')
"""

from __future__ import annotations

import re
from typing import Any

from riskwatch.ingest.columns import BadText

__all__ = ["bad_text", "mark_bad_text", "may_hold_surrogates"]

#: a \uD800-\uDFFF escape: the only way a lone surrogate gets past the stdlib parser
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def may_hold_surrogates(payload: bytes) -> bool:
    """Whether the raw payload has a surrogate escape (then the parsed text is checked)."""
    return _SURROGATE_ESCAPE.search(payload) is not None


def mark_bad_text(obj: Any) -> str | None:
    """Readings of a list or envelope whose text is not UTF-8 are replaced, in place, by a
    :class:`BadText` (dead-lettered alone); returns where the message itself has such text
    outside its readings (the whole message is then dead-lettered), else None."""
    rows = obj if type(obj) is list else None
    rest: Any = obj
    if type(obj) is dict and type(obj.get("readings")) is list:
        rows = obj["readings"]
        rest = {k: v for k, v in obj.items() if k != "readings"}
    elif rows is not None:
        rest = None
    if rows is not None:
        for i, r in enumerate(rows):
            where = bad_text(r)
            if where is not None:
                rows[i] = BadText(where)
    return bad_text(rest) if rest is not None else None


def bad_text(obj: Any) -> str | None:
    """Where the parsed JSON holds a string with a lone surrogate (key or value), or None.

    Only run when the payload has a surrogate escape; the nesting is already bounded by
    the parser."""
    stack: list[tuple[Any, str]] = [(obj, "")]
    while stack:
        x, where = stack.pop()
        if type(x) is str:
            try:
                x.encode("utf-8")
            except UnicodeEncodeError:
                return where or "payload"
        elif type(x) is dict:
            for k, v in x.items():
                at = f"{where}.{k}" if where else str(k)
                stack.append((k, at))
                stack.append((v, at))
        elif type(x) is list:
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(x))
    return None
