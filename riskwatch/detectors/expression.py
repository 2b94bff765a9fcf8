"""Combine expressions: how an entry merges its members' scores into one.

Members score every reading on the common [0, 1] scale (see :mod:`.base`); an
expression names members and nests three operators:

* ``any``: the element-wise maximum (any member's evidence suffices);
* ``all``: the minimum (a reading is anomalous only if *no* model explains it, e.g. a
  value both far from the recent level and far from its time-of-day profile);
* ``pooled``: ``any``, or where stronger the two strongest members' evidence pooled by
  Fisher's method (:func:`pooled`).

In YAML an expression is a member name or a one-key mapping, ``{any: [frozen, {all:
[level, daily]}]}``; here it is the member name or the tuple ``(op, [parts])``.

>>> import numpy as np
>>> scores = {"a": np.array([0.2, 0.7]), "b": np.array([0.6, 0.1])}
>>> evaluate(("any", ["a", "b"]), scores).tolist(), evaluate(("all", ["a", "b"]), scores).tolist()
([0.6, 0.7], [0.2, 0.1])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Union

import numpy as np

__all__ = ["OPERATORS", "Combine", "evaluate", "members_of", "pooled"]

Combine = Union[str, tuple[str, Sequence["Combine"]]]  # noqa: UP007 - recursive alias

#: the operators of an expression, in the order error messages name them
OPERATORS = ("any", "all", "pooled")


def members_of(expr: Combine) -> list[str]:
    """Member names an expression refers to.

    >>> members_of(("any", ["flat", ("all", ["level", "daily_shift"])]))
    ['flat', 'level', 'daily_shift']
    """
    if isinstance(expr, str):
        return [expr]
    out: list[str] = []
    for part in expr[1]:
        out += members_of(part)
    return out


def pooled(parts: Sequence[np.ndarray]) -> np.ndarray:
    """``any``, or the pooled evidence of the two strongest parts where that is stronger.

    With surprises ``u1 >= u2`` (decades, ``10 * score``) of the two strongest of ``n``
    parts, Fisher's method gives ``s - log10(1 + s ln 10)`` for ``s = u1 + u2`` (the tail
    of the product of two independent uniform tails), and ``log10(n (n - 1) / 2)``
    pays for having picked the best of the pairs (Bonferroni). Two members that are each
    only moderately surprised (a day-profile chart and a level shift at 3 decades each)
    then make a decision neither makes alone; one member's strong evidence still
    suffices, as in ``any``, and the score is never below ``any``'s.

    Parameters
    ----------
    parts : sequence of numpy.ndarray
        The parts' scores in [0, 1], one array per part, all of one length.

    References
    ----------
    R. A. Fisher, *Statistical Methods for Research Workers*, Oliver and Boyd, 1925
    (combining independent tests, section 21.1).

    >>> a, b = np.array([0.3, 0.6, 0.3]), np.array([0.3, 0.0, 0.1])
    >>> pooled([a, b, np.zeros(3)]).round(3).tolist()  # 3 parts, 3 pairs
    [0.435, 0.6, 0.3]
    """
    n = len(parts)
    if n == 1:
        return parts[0]
    decades = np.stack(parts) * 10.0
    two_largest = np.partition(decades, n - 2, axis=0)[n - 2 :]  # unordered
    pair_sum = two_largest[0] + two_largest[1]
    pair = pair_sum - np.log10(1.0 + pair_sum * np.log(10.0)) - np.log10(n * (n - 1) / 2.0)
    return np.minimum(np.maximum(np.maximum.reduce(parts), pair / 10.0), 1.0)


def evaluate(expr: Combine, scores: Mapping[str, np.ndarray]) -> np.ndarray:
    """The expression over the members' ``scores``: ``any`` = element-wise max, ``all``
    = element-wise min, ``pooled`` = :func:`pooled`. A bare member name returns that
    member's array itself (not a copy)."""
    if isinstance(expr, str):
        return scores[expr]
    op, args = expr
    parts = [evaluate(e, scores) for e in args]
    if op == "pooled":
        return pooled(parts)
    reduce = np.maximum if op == "any" else np.minimum
    out = parts[0]
    for p in parts[1:]:
        out = reduce(out, p)
    return out
