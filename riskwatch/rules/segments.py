"""Segmented array helpers: sequential logic over runs of rows without a Python loop.

The vectorised rule pass keeps a slot's rows (or a (slot, level) pair's entries)
contiguous and in time order: a *segment*. Sequential semantics (the previous reading of
a slot, the start of a ``for`` run, the last latch event) become forward fills within
segments: put each row's own index where something happened (an event, or the segment
start) and 0 elsewhere, and ``np.maximum.accumulate`` carries the latest index forward.

>>> import numpy as np
>>> slot = np.array([4, 4, 4, 7, 7])
>>> first = run_starts(slot)
>>> first.tolist(), run_ends(first).tolist()
([True, False, False, True, False], [False, False, True, False, True])
>>> shift_in_segments(np.array([1, 2, 3, 4, 5]), first, np.array([0, 0, 0, 9, 9])).tolist()
[0, 1, 2, 9, 4]
>>> event = np.array([False, True, False, False, False])
>>> forward_fill_index(event | first, False).tolist()
[0, 1, 1, 3, 3]
"""

from __future__ import annotations

import numpy as np

__all__ = ["forward_fill_index", "run_ends", "run_starts", "shift_in_segments"]


def forward_fill_index(marker: np.ndarray, all_marked: bool) -> np.ndarray:
    """Per row, the index of the latest marked row at or before it (row 0 must be marked).

    ``all_marked`` says every row is marked (then this is ``arange``, with no scan).
    """
    if all_marked:
        return np.arange(len(marker))
    idx = np.where(marker, np.arange(len(marker)), 0)
    return np.maximum.accumulate(idx)


def run_starts(a: np.ndarray) -> np.ndarray:
    """True where a run of equal values starts (``np.r_`` costs more than the work here)."""
    out = np.empty(len(a), bool)
    if len(a):
        out[0] = True
        np.not_equal(a[1:], a[:-1], out=out[1:])
    return out


def run_ends(first: np.ndarray) -> np.ndarray:
    """Run ends from run starts: True where the next element opens a run, and at the end."""
    out = np.empty(len(first), bool)
    if len(first):
        out[:-1] = first[1:]
        out[-1] = True
    return out


def shift_in_segments(a: np.ndarray, first: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """Previous row's value within the segment; ``fill`` (per row) at segment starts."""
    out = np.empty_like(a)
    out[1:] = a[:-1]
    if len(a):
        out[0] = fill[0]
    out[first] = fill[first]
    return out
