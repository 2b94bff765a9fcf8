"""The operator console as a server of the engine: uvicorn in a daemon thread on
``console.listen`` (see :mod:`riskwatch.console.app` for the routes).

The engine builds it from what it needs, not from the engine: the alert sink (its
:class:`~riskwatch.console.sources.AlertBoard` surface), the sensor registry, the
in-memory window of recent readings the engine fills per batch, a reader of stored
series (or None), the user file, a callable that asks for a reload, and the engine's
clock. Constructing it registers the live board as a transition listener of the sink.
Every answer carries the security headers (:data:`~riskwatch.console.app.CONSOLE_CSP`);
given ``tls`` (the certificate and key files) it serves HTTPS with ``Secure`` cookies.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from riskwatch.alerts.api import alert_out
from riskwatch.catalog import SensorRegistry
from riskwatch.clock import Clock
from riskwatch.config.engine import ConsoleConfig
from riskwatch.console.app import CONSOLE_CSP, create_app
from riskwatch.console.auth import Sessions
from riskwatch.console.hub import Hub
from riskwatch.console.sources import AlertBoard, StoredSeries
from riskwatch.console.users import UserStore
from riskwatch.console.window import SeriesWindow
from riskwatch.webserver import SecurityHeaders, ThreadedServer

__all__ = ["ConsoleServer"]

log = logging.getLogger(__name__)


class ConsoleServer:
    """The console over one alert sink, served by uvicorn in a daemon thread."""

    def __init__(
        self,
        cfg: ConsoleConfig,
        *,
        sink: AlertBoard,
        registry: SensorRegistry,
        window: SeriesWindow,
        stored: StoredSeries | None,
        users_path: Path,
        request_reload: Callable[[], None],
        clock: Clock,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        assert cfg.listen
        self.cfg = cfg
        self.sink = sink
        self.window = window
        self.users = UserStore(users_path)
        self.hub = Hub(render=alert_out)
        self.stopping = threading.Event()
        sink.add_listener(self.hub.publish)
        self.app = create_app(
            sink=sink, registry=registry, window=window, stored=stored, hub=self.hub,
            sessions=Sessions(self.users, ttl_s=cfg.session_ttl_s, clock=clock),
            request_reload=request_reload, clock=clock, stopping=self.stopping,
            secure_cookies=tls is not None,
        )  # fmt: skip
        cert, key = tls if tls is not None else (None, None)
        guarded = SecurityHeaders(self.app, csp=CONSOLE_CSP, hsts=tls is not None)
        self._server = ThreadedServer(guarded, cfg.listen, name="console", graceful_s=2,
                                      cert_file=cert, key_file=key)  # fmt: skip
        self.url: str | None = None

    def start(self, timeout: float = 10.0) -> None:
        self.url = self._server.start(timeout)
        if not self.users.all():
            log.warning("console: no users in %s; add one with 'riskwatch users add'",
                        self.users.path)  # fmt: skip

    def stop(self) -> None:
        self.stopping.set()
        self.hub.close_all()
        self._server.stop()
