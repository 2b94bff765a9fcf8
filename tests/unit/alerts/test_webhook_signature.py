"""The receiver's recipe in docs/alerts.md runs as written and agrees with what the webhook
notifier sends: a fresh request verifies, a replayed or altered one does not."""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from riskwatch.alerts.notifiers.webhook import WebhookNotifier, sign, verify
from riskwatch.alerts.store import Delivery

DOC = Path(__file__).resolve().parents[3] / "docs" / "alerts.md"


def _recipe() -> dict[str, Any]:
    text = DOC.read_text(encoding="utf-8")
    sec = text.split("### Webhook signatures (replay protection)")[1].split("\n### ")[0]
    (code,) = re.findall(r"```python\n(.*?)```", sec, flags=re.S)
    ns: dict[str, Any] = {}
    exec(compile(code, str(DOC), "exec"), ns)  # its own asserts run here
    return ns


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    """A real local HTTP server keeping (headers, body) of every POST."""
    seen: list[tuple[dict[str, str], bytes]] = []

    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a: Any) -> None:
            return None

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((dict(self.headers.items()), body))
            self.send_response(204)
            self.end_headers()

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/hook", seen
    srv.shutdown()
    srv.server_close()


def test_docs_recipe_runs_and_matches_the_notifier(
    receiver: tuple[str, list[tuple[dict[str, str], bytes]]],
) -> None:
    url, seen = receiver
    doc_verify = _recipe()["verify"]
    n = WebhookNotifier("hook", url, "k3y", time_s=lambda: 1795880000.4)
    body = b'{"id":"a1","event":"a1:1","level":"red"}'
    n.send(Delivery("a1:1:hook", "a1", "hook", body, "m1", "f1", 0))
    n.close()
    ((h, got),) = seen
    headers = {k: h[k] for k in ("X-Riskwatch-Timestamp", "X-Riskwatch-Signature")}
    assert got == body and h["X-Riskwatch-Delivery"] == "a1:1:hook"
    assert headers["X-Riskwatch-Timestamp"] == "1795880000"
    assert headers["X-Riskwatch-Signature"] == sign(b"k3y", body, 1795880000)
    assert doc_verify(b"k3y", headers, got, now=1795880100)
    assert not doc_verify(b"k3y", headers, got, now=1795880000 + 301)
    assert not doc_verify(b"other", headers, got, now=1795880100)
    assert verify(b"k3y", got, headers["X-Riskwatch-Timestamp"],
                  headers["X-Riskwatch-Signature"], now_s=1795880100)  # fmt: skip


@pytest.mark.parametrize("mode", ["timestamp", "body"])
def test_signature_modes(
    mode: str, receiver: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    url, seen = receiver
    n = WebhookNotifier("hook", url, "k", signature=mode, time_s=lambda: 7.0)  # type: ignore[arg-type]
    n.send(Delivery("d", "a", "hook", b"{}", "m1", "f1", 0))
    n.close()
    h = seen[0][0]
    if mode == "timestamp":
        assert h["X-Riskwatch-Timestamp"] == "7"
        assert h["X-Riskwatch-Signature"] == sign(b"k", b"{}", 7)
    else:
        assert "X-Riskwatch-Timestamp" not in h
        assert h["X-Riskwatch-Signature"] == sign(b"k", b"{}")
