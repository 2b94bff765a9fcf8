"""TLS for the servers the engine runs (the console, the alert API): a certificate chain and
its private key, PEM files named in the config. :func:`check_server_tls` loads them once at
config load, so a missing file, a key that does not match its certificate or an
unreadable PEM is a config error at ``file:line:col`` rather than a server that never
starts.

>>> import ssl
>>> t = ServerTlsConfig(cert_file="console.crt", key_file="console.key")
>>> t.paths(lambda p: Path("/etc/rw") / p)
(PosixPath('/etc/rw/console.crt'), PosixPath('/etc/rw/console.key'))
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ServerTlsConfig", "check_server_tls"]


@dataclass(frozen=True)
class ServerTlsConfig:
    """``cert_file``: the server's certificate (chain) in PEM; ``key_file``: its private key
    in PEM (unencrypted; keep it mode 0600). Relative paths are from the config file."""

    cert_file: str
    key_file: str

    def paths(self, resolve: Callable[[str], Path]) -> tuple[Path, Path]:
        return resolve(self.cert_file), resolve(self.key_file)


def check_server_tls(tls: ServerTlsConfig, resolve: Callable[[str], Path]) -> str | None:
    """Why ``tls`` cannot serve (a sentence), or None when the pair loads."""
    cert, key = tls.paths(resolve)
    for what, p in (("cert_file", cert), ("key_file", key)):
        if not p.is_file():
            return f"{what}: no such file {str(p)!r}"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        return f"cannot load the certificate and key: {exc}"
    return None
