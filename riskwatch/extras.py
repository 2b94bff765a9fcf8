"""Optional dependencies ("extras") and the one error that names the extra to install.

The core install (``pip install .``) runs the engine, the demo, the console and the alert
API on SQLite. Heavy parts only some sites need are extras of the package, imported when
first used, so a missing one fails where it is needed, with the ``pip install`` line that
fixes it, instead of making every install carry them::

    jit       numba: compiled detector kernels (numpy fallback without it)
    scipy     scipy: exact normal-tail probabilities for detector scores (a numpy
              approximation, relative error < 1.2e-7, without it)
    river     river: the ``river_*`` detectors
    postgres  psycopg: the PostgreSQL alert store
    offline   pandas: ``riskwatch replay`` and ``riskwatch score`` read CSV histories
    influx2   influxdb-client: ``storage.influx.api: v2``
    all       every extra above

>>> require("json", "offline", "a test").__name__
'json'
>>> try:
...     require("riskwatch_no_such_module", "postgres", "PostgreSQL alert store")
... except MissingExtra as exc:
...     print(exc.extra, "|", str(exc)[:63])
postgres | PostgreSQL alert store needs: pip install 'riskwatch[postgres]'
"""

from __future__ import annotations

import importlib
from types import ModuleType

from riskwatch.errors import RiskwatchError

__all__ = ["EXTRAS", "MissingExtra", "require"]

#: extra name -> what it adds (``riskwatch --version`` and the docs list these)
EXTRAS: dict[str, str] = {
    "jit": "numba: compiled detector kernels",
    "scipy": "scipy: exact normal-tail probabilities in detector scores",
    "river": "river: the river_* detectors",
    "postgres": "psycopg: the PostgreSQL alert store",
    "offline": "pandas: riskwatch replay and riskwatch score",
    "influx2": "influxdb-client: storage.influx.api v2",
}


class MissingExtra(RiskwatchError):
    """A feature was used whose optional dependency is not installed."""

    def __init__(self, feature: str, extra: str, module: str) -> None:
        self.feature, self.extra, self.module = feature, extra, module
        super().__init__(
            f"{feature} needs: pip install 'riskwatch[{extra}]' (module {module} is not installed)"
        )


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtra` naming ``extra`` and ``feature``.

    Only a missing top-level package is translated: an installed package that fails to
    import for another reason raises its own error, which is the one worth reading.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != module.split(".")[0]:
            raise
        raise MissingExtra(feature, extra, module) from exc
