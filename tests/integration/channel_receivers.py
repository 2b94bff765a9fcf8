"""Real local receivers for the notifier channels, each checking what its real counterpart
checks: a DingTalk robot (access_token, timestamp within an hour, ``sign`` recomputed the
way DingTalk documents it, ``msgtype: markdown``), a WeCom robot (``key``, markdown within
4096 bytes), an Alertmanager webhook receiver that validates the version-4 schema and the
timestamped signature (rejecting old timestamps), and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import socket
import threading
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller

RANGE = (29000, 29999)


def port_in_range(start: int) -> int:
    """The first free loopback port from ``start`` within this test suite's range."""
    for p in range(start, RANGE[1] + 1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                continue
            return p
    raise RuntimeError(f"no free port in {start}..{RANGE[1]}")


def _is_rfc3339(s: Any) -> bool:
    from datetime import datetime

    try:
        datetime.fromisoformat(str(s).replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def alertmanager_errors(b: Any) -> list[str]:
    """What is wrong with an Alertmanager webhook body (version 4), or []."""
    out: list[str] = []
    if not isinstance(b, dict):
        return ["body is not an object"]
    want: dict[str, type | tuple[type, ...]] = {
        "version": str, "groupKey": str, "truncatedAlerts": int, "status": str,
        "receiver": str, "groupLabels": dict, "commonLabels": dict,
        "commonAnnotations": dict, "externalURL": str, "alerts": list,
    }  # fmt: skip
    for k, t in want.items():
        if not isinstance(b.get(k), t):
            out.append(f"{k}: missing or not {t}")
    if b.get("version") != "4":
        out.append("version is not '4'")
    if b.get("status") not in ("firing", "resolved"):
        out.append("status")
    for i, a in enumerate(b.get("alerts") or []):
        for k, t in {"status": str, "labels": dict, "annotations": dict, "startsAt": str,
                     "endsAt": str, "generatorURL": str, "fingerprint": str}.items():  # fmt: skip
            if not isinstance(a.get(k), t):
                out.append(f"alerts[{i}].{k}: missing or not {t}")
        if a.get("status") not in ("firing", "resolved"):
            out.append(f"alerts[{i}].status")
        if not (_is_rfc3339(a.get("startsAt")) and _is_rfc3339(a.get("endsAt"))):
            out.append(f"alerts[{i}]: times not RFC 3339")
        for m in ("labels", "annotations"):
            if not all(isinstance(v, str) for v in (a.get(m) or {}).values()):
                out.append(f"alerts[{i}].{m}: values must be strings")
        if "alertname" not in (a.get("labels") or {}):
            out.append(f"alerts[{i}].labels.alertname missing")
        fp = a.get("fingerprint") or ""
        if len(fp) != 16 or any(c not in "0123456789abcdef" for c in fp):
            out.append(f"alerts[{i}].fingerprint: not 16 hex digits")
    return out


class ChannelReceiver:
    """One HTTP server with the three receivers on their paths:
    ``/robot/send`` (DingTalk), ``/cgi-bin/webhook/send`` (WeCom), ``/am`` (Alertmanager)."""

    def __init__(self, port: int, *, dingtalk_token: str, dingtalk_secret: str,
                 wecom_key: str, hook_secret: bytes, max_age_s: int = 300) -> None:  # fmt: skip
        self.dingtalk: list[dict[str, Any]] = []
        self.wecom: list[dict[str, Any]] = []
        self.am: list[dict[str, Any]] = []
        self.refused: list[tuple[str, str]] = []  # (path, why)
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                return None

            def _answer(self, code: int, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                u = urlsplit(self.path)
                q = {k: v[0] for k, v in parse_qs(u.query).items()}
                if u.path == "/robot/send":
                    self._dingtalk(q, body)
                elif u.path == "/cgi-bin/webhook/send":
                    self._wecom(q, body)
                elif u.path == "/am":
                    self._am(body)
                else:
                    self._answer(404, {})

            def _dingtalk(self, q: dict[str, str], body: bytes) -> None:
                # DingTalk's documented check: timestamp (ms) within an hour of now, and
                # sign == urlencode(base64(HmacSHA256(secret, timestamp + "\n" + secret)))
                # (parse_qs has already undone the URL encoding)
                why = None
                ts = q.get("timestamp", "")
                if q.get("access_token") != dingtalk_token:
                    why = "token"
                elif not ts.isdigit() or abs(time.time() * 1000 - int(ts)) > 3600_000:
                    why = "timestamp"
                else:
                    mac = hmac.new(dingtalk_secret.encode(), f"{ts}\n{dingtalk_secret}".encode(),
                                   hashlib.sha256).digest()  # fmt: skip
                    if not hmac.compare_digest(base64.b64encode(mac).decode(), q.get("sign", "")):
                        why = "sign"
                msg = json.loads(body)
                if why is None and (msg.get("msgtype") != "markdown"
                                    or not {"title", "text"} <= set(msg.get("markdown", {}))):
                    why = "format"  # fmt: skip
                if why is not None:
                    outer.refused.append(("dingtalk", why))
                    self._answer(200, {"errcode": 310000, "errmsg": f"sign not match ({why})"})
                    return
                outer.dingtalk.append(msg)
                self._answer(200, {"errcode": 0, "errmsg": "ok"})

            def _wecom(self, q: dict[str, str], body: bytes) -> None:
                msg = json.loads(body)
                content = msg.get("markdown", {}).get("content", "")
                if q.get("key") != wecom_key:
                    outer.refused.append(("wecom", "key"))
                    self._answer(200, {"errcode": 93000, "errmsg": "invalid webhook url"})
                    return
                if msg.get("msgtype") != "markdown" or len(content.encode()) > 4096:
                    outer.refused.append(("wecom", "format"))
                    self._answer(200, {"errcode": 40008, "errmsg": "invalid message type"})
                    return
                outer.wecom.append(msg)
                self._answer(200, {"errcode": 0, "errmsg": "ok"})

            def _am(self, body: bytes) -> None:
                ts = self.headers.get("X-Riskwatch-Timestamp", "")
                sig = self.headers.get("X-Riskwatch-Signature", "")
                want = "sha256=" + hmac.new(hook_secret, f"{ts}.".encode() + body,
                                            hashlib.sha256).hexdigest()  # fmt: skip
                if not ts.isdigit() or abs(time.time() - int(ts)) > max_age_s:
                    outer.refused.append(("am", "timestamp"))
                    self._answer(401, {})
                    return
                if not hmac.compare_digest(want, sig):
                    outer.refused.append(("am", "signature"))
                    self._answer(401, {})
                    return
                b = json.loads(body)
                errs = alertmanager_errors(b)
                if errs:
                    outer.refused.append(("am", "; ".join(errs)))
                    self._answer(400, {"errors": errs})
                    return
                outer.am.append(b)
                self._answer(200, {})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmtpReceiver:
    """A real SMTP server (aiosmtpd) keeping every message it is given."""

    def __init__(self, port: int) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []
        outer = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                msg = message_from_bytes(envelope.original_content, policy=policy.default)
                outer.messages.append((envelope.mail_from, list(envelope.rcpt_tos), msg))  # type: ignore[arg-type]
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=port)
        self.controller.start()
        self.port = port

    def close(self) -> None:
        self.controller.stop()
