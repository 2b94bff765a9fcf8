#!/usr/bin/env python3
"""Notifier plugins against real local receivers, against a baseline measured in the same
run: how many notifications per second one notifier thread gets out, and what rendering
costs.

(a) baseline: bare httpx POSTs of the native JSON to a local ``http.server`` (one kept-alive
    connection, the same client settings the notifiers use): the HTTP floor.
(b) each HTTP plugin's ``send()`` to the same server: ``webhook`` (native, timestamped
    signature), ``webhook`` with ``format: alertmanager``, ``dingtalk`` (markdown, signed),
    ``wecom`` (markdown); printed as sends/s and as a ratio to (a).
(c) ``email`` to a local aiosmtpd server (one kept SMTP connection).
(d) rendering alone (no I/O): Alertmanager body, DingTalk body, email message per second.

These are per-notifier-thread figures on a local loopback; real robots answer in tens of
milliseconds and DingTalk and WeCom allow about 20 messages a minute per robot, so in a
storm the robot channels are bound by their rate limits, not by riskwatch.

    python bench/bench_notifiers.py [--n 2000]
"""

from __future__ import annotations

import argparse
import http.server
import socket
import threading
import time
from typing import Any

import httpx
import orjson
from aiosmtpd.controller import Controller

from riskwatch.alerts.notifiers.email import EmailNotifier
from riskwatch.alerts.notifiers.message import Renderer
from riskwatch.alerts.notifiers.robots import DingTalkNotifier, WeComNotifier
from riskwatch.alerts.notifiers.webhook import WebhookNotifier
from riskwatch.alerts.store import Delivery

PAYLOAD = orjson.dumps({
    "id": "c6aa2e556f8932f8", "event": "c6aa2e556f8932f8:1", "rule": "ch4_face",
    "level": "red", "state": "firing", "action": "firing", "enterprise": "mine1",
    "site": "face1", "sensor": "CH4-T1", "group": None, "kind": "ch4", "value": 1.6,
    "threshold": 1.5, "ts": 1795880000000, "since": 1795880000000,
    "message": "mine1/face1/CH4-T1: ch4 1.6 % >= power-off 1.5 %", "acked": False,
    "tier": 0, "flapping": False, "by": "engine", "note": None, "source": "rule",
    "max_level": "red", "reason": None,
})  # fmt: skip
ROBOT_OK = b'{"errcode":0,"errmsg":"ok"}'


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_server() -> tuple[http.server.ThreadingHTTPServer, str]:
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real receivers
        disable_nagle_algorithm = True  # headers and body written apart: no 40 ms stall

        def log_message(self, *a: Any) -> None:
            return None

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(ROBOT_OK)))
            self.end_headers()
            self.wfile.write(ROBOT_OK)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}"


def rate(n: int, fn: Any) -> float:
    d = [Delivery(f"e{i}:n", "a", "n", PAYLOAD, "mine1", "face1", 0) for i in range(n)]
    fn(d[0])  # connect first
    t0 = time.perf_counter()
    for x in d:
        fn(x)
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    n = ap.parse_args().n
    srv, base = http_server()
    client = httpx.Client(timeout=5)
    hdr = {"Content-Type": "application/json"}
    floor = rate(n, lambda d: client.post(base + "/hook", content=d.payload, headers=hdr))
    print(f"(a) baseline httpx POST: {floor:8.0f} /s")
    r = Renderer("zh")
    plugins = {
        "webhook (native, signed)": WebhookNotifier("w", base + "/hook", "k"),
        "webhook (alertmanager, signed)": WebhookNotifier("w", base + "/am", "k",
                                                          format="alertmanager"),
        "dingtalk (markdown, signed)": DingTalkNotifier("d", base + "/robot/send", "t",
                                                        "SECx", r),
        "wecom (markdown)": WeComNotifier("c", base + "/cgi-bin/webhook/send", "k", r),
    }  # fmt: skip
    for name, p in plugins.items():
        v = rate(n, p.send)
        print(f"(b) {name:<31} {v:8.0f} /s  ratio to (a) {v / floor:.2f}")
        p.close()
    srv.shutdown()

    class Sink:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 OK"

    port = _port()
    ctl = Controller(Sink(), hostname="127.0.0.1", port=port)
    ctl.start()
    mail = EmailNotifier("m", "127.0.0.1", port, "none", None, None, "rw@example.com",
                         ("ops@example.com",), r)  # fmt: skip
    v = rate(max(200, n // 4), mail.send)
    print(f"(c) email to local aiosmtpd:     {v:8.0f} /s")
    mail.close()
    ctl.stop()
    d = Delivery("e:n", "a", "n", PAYLOAD, "mine1", "face1", 0)
    am = plugins["webhook (alertmanager, signed)"]
    dt = plugins["dingtalk (markdown, signed)"]
    for name, fn in (("alertmanager body", lambda: am.body(d)),  # type: ignore[attr-defined]
                     ("dingtalk body", lambda: dt.body(d)),  # type: ignore[attr-defined]
                     ("email message", lambda: mail.message(d).as_bytes())):  # fmt: skip
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        print(f"(d) render {name:<22} {n / (time.perf_counter() - t0):8.0f} /s")


if __name__ == "__main__":
    main()
