"""Secrets: read from an environment variable or a file, never from the YAML itself.

Config keys come in pairs, ``password_env`` (the variable's name) and ``password_file``
(a file holding the secret, e.g. a mounted Kubernetes or systemd credential); the file
wins when both are given.

>>> import os
>>> os.environ["RW_DOCTEST_SECRET"] = "s3cret"
>>> resolve_secret("RW_DOCTEST_SECRET", None, what="mqtt.password")
's3cret'
>>> resolve_secret(None, None, what="mqtt.password") is None
True
>>> try:
...     resolve_secret("RW_DOCTEST_UNSET", None, what="mqtt.password")
... except ConfigErrors as exc:
...     print(exc)
<config>: mqtt.password: environment variable RW_DOCTEST_UNSET is not set
"""

from __future__ import annotations

import os
from pathlib import Path

from riskwatch.errors import ConfigError, ConfigErrors

__all__ = ["resolve_secret"]


def resolve_secret(env: str | None, file: str | None, *, what: str) -> str | None:
    """Read a secret from an environment variable or a file (file wins if both)."""
    if file:
        try:
            return Path(file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigErrors(
                [ConfigError(what, f"cannot read secret file {file}: {exc.strerror}")]
            ) from exc
    if env:
        val = os.environ.get(env)
        if val is None:
            raise ConfigErrors([ConfigError(what, f"environment variable {env} is not set")])
        return val
    return None
