"""Threads that may not die quietly.

A long-running thread of the engine (the engine loop, storage) that raises has lost its
work for good: a zombie process that still answers health checks but stores nothing is
the worst outcome. :func:`guarded` wraps a thread's target so that such an exception is
logged as CRITICAL with its traceback and reported to ``on_fatal``; the engine then stops
and exits non-zero, so a supervisor (systemd, a container runtime) restarts it.

>>> died = []
>>> def work(): raise RuntimeError("boom")
>>> guarded(work, name="demo", on_fatal=died.append)()
>>> died
['demo']
"""

from __future__ import annotations

import logging
from collections.abc import Callable

__all__ = ["guarded"]

log = logging.getLogger("riskwatch.threads")


def guarded(
    target: Callable[[], None], *, name: str, on_fatal: Callable[[str], None]
) -> Callable[[], None]:
    """``target`` wrapped: an exception escaping it is logged and reported, not lost."""

    def run() -> None:
        try:
            target()
        except BaseException:
            log.critical(
                "thread %s died; the engine stops and exits non-zero so that its supervisor "
                "restarts it", name, exc_info=True,
            )  # fmt: skip
            on_fatal(name)

    return run
