"""riskwatch: streaming risk monitoring and early warning for work-safety supervision."""

from importlib.metadata import PackageNotFoundError, version

try:  # the one place the version is written is pyproject.toml; the installed metadata has it
    __version__ = version("riskwatch")
except PackageNotFoundError:  # pragma: no cover - a checkout on sys.path, never installed
    __version__ = "0+unknown"
__all__ = ["__version__"]
