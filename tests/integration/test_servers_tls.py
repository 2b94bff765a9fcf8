"""The console and the alert API over TLS from the engine's config (a real engine over the
real Mosquitto, httpx checking the certificate): HTTPS URLs, ``Secure`` session cookies,
HSTS; a certificate that does not load is a config error at its line; listening beyond
loopback without TLS is a WARNING."""

from __future__ import annotations

import logging
import os
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest

from riskwatch.config.engine import load_engine_config
from riskwatch.console.users import UserStore
from riskwatch.engine import Engine
from riskwatch.errors import ConfigErrors
from riskwatch.webserver import SecurityHeaders, ThreadedServer
from tests.integration.spine_helpers import engine_yaml, unique

pytestmark = pytest.mark.integration

CONSOLE_PORT, API_PORT, OPEN_PORT = 25111, 25112, 25113
PW = "pw-t16-tls"


def self_signed(wd: Path) -> tuple[Path, Path]:
    cert, key = wd / "srv.crt", wd / "srv.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_console_and_api_over_tls(tmp_path: Path, mqtt_addr: tuple[str, int]) -> None:
    cert, _key = self_signed(tmp_path)
    UserStore(tmp_path / "users.json").add("li", PW, "operator", ["mine1"])
    os.environ["T16_TLS_TOKEN"] = "t16-tls-secret"
    extra = (
        f"console: {{listen: '127.0.0.1:{CONSOLE_PORT}', users: '{tmp_path}/users.json',"
        " tls: {cert_file: srv.crt, key_file: srv.key}}\n"  # relative to engine.yaml
        f"alerts:\n  api:\n    listen: '127.0.0.1:{API_PORT}'\n"
        "    tls: {cert_file: srv.crt, key_file: srv.key}\n"
        "    tokens: [{name: ops, token_env: T16_TLS_TOKEN}]\n"
    )
    cfg = engine_yaml(tmp_path, mqtt_port=mqtt_addr[1], root=unique("t16scope"), influx=None,
                      extra=extra)  # fmt: skip
    trust = ssl.create_default_context(cafile=str(cert))
    eng = Engine(load_engine_config(cfg))
    eng.start()
    try:
        assert eng.console_url == f"https://127.0.0.1:{CONSOLE_PORT}"
        assert eng.api_url == f"https://127.0.0.1:{API_PORT}"
        with httpx.Client(base_url=eng.console_url, verify=trust, timeout=10) as c:
            r = c.post("/api/login", json={"name": "li", "password": PW})
            assert r.status_code == 200
            cookie = r.headers["set-cookie"].lower()
            assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
            assert r.headers["strict-transport-security"] == "max-age=31536000"
            assert c.get("/api/me").json()["name"] == "li"
        with httpx.Client(base_url=eng.api_url, verify=trust, timeout=10) as a:
            r = a.get("/api/v1/alerts", headers={"Authorization": "Bearer t16-tls-secret"})
            assert r.status_code == 200 and "strict-transport-security" in r.headers
        with pytest.raises(httpx.ConnectError):  # the system CAs do not know this one
            httpx.get(f"{eng.api_url}/healthz", timeout=5)
    finally:
        eng.stop()


def test_a_bad_certificate_is_a_config_error(tmp_path: Path) -> None:
    _cert, key = self_signed(tmp_path)
    (tmp_path / "other.key").write_text(key.read_text().replace("A", "B", 40))
    f = tmp_path / "engine.yaml"
    f.write_text(
        "console:\n  listen: '127.0.0.1:0'\n  tls: {cert_file: srv.crt, key_file: nope.key}\n"
        "alerts:\n  api:\n    listen: '127.0.0.1:0'\n"
        "    tls: {cert_file: srv.crt, key_file: other.key}\n"
    )
    with pytest.raises(ConfigErrors) as ei:
        load_engine_config(f)
    lines = str(ei.value).splitlines()
    assert lines[0] == f"{f}:3:8: console.tls: key_file: no such file '{tmp_path}/nope.key'"
    assert lines[1].startswith(f"{f}:7:10: alerts.api.tls: cannot load the certificate and key")


def test_listening_beyond_loopback_without_tls_is_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    srv = ThreadedServer(SecurityHeaders(app, csp="default-src 'none'"), f"0.0.0.0:{OPEN_PORT}",
                         name="console")  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="riskwatch.webserver"):
        srv.start()
    try:
        assert [r.getMessage() for r in caplog.records] == [
            f"console listens on 0.0.0.0:{OPEN_PORT} over plain HTTP: log-ins, tokens and "
            "alerts cross the network in clear; set tls: {cert_file, key_file} or listen on "
            "127.0.0.1 behind a TLS proxy"
        ]
        assert httpx.get(f"http://127.0.0.1:{OPEN_PORT}/").status_code == 204
    finally:
        srv.stop()
    caplog.clear()
    quiet = ThreadedServer(app, "127.0.0.1:0", name="console")
    with caplog.at_level(logging.WARNING, logger="riskwatch.webserver"):
        quiet.start()
    quiet.stop()
    assert caplog.records == []
