"""The engine connects with username/password (secret from the environment) and over TLS."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from riskwatch.config.engine import load_engine_config
from riskwatch.engine import Engine
from tests.conftest import free_port, wait_tcp
from tests.integration.spine_helpers import engine_yaml, influx_count, now_ms, unique, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def secure_broker() -> Iterator[tuple[int, int, Path]]:
    """Mosquitto with a password file on one port and TLS (self-signed CA) on another."""
    wd = Path(tempfile.mkdtemp(prefix="rw-mosq-sec-"))
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(wd / "pw"), "gw", "s3cret"], check=True)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(wd / "ca.key"), "-out", str(wd / "ca.crt"), "-subj", "/CN=rw-test-ca"],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(wd / "srv.key"),
         "-out", str(wd / "srv.csr"), "-subj", "/CN=127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    (wd / "ext").write_text("subjectAltName=IP:127.0.0.1\n")
    subprocess.run(
        ["openssl", "x509", "-req", "-in", str(wd / "srv.csr"), "-CA", str(wd / "ca.crt"),
         "-CAkey", str(wd / "ca.key"), "-CAcreateserial", "-out", str(wd / "srv.crt"),
         "-days", "2", "-extfile", str(wd / "ext")],
        check=True, capture_output=True,
    )  # fmt: skip
    plain, tls = free_port(), free_port()
    (wd / "m.conf").write_text(
        f"user root\nper_listener_settings true\nlistener {plain} 127.0.0.1\nallow_anonymous false\n"
        f"password_file {wd}/pw\n"
        f"listener {tls} 127.0.0.1\nallow_anonymous true\ncafile {wd}/ca.crt\n"
        f"certfile {wd}/srv.crt\nkeyfile {wd}/srv.key\n"
    )
    proc = subprocess.Popen(["mosquitto", "-c", str(wd / "m.conf")], stderr=open(wd / "log", "wb"))
    wait_tcp("127.0.0.1", plain)
    wait_tcp("127.0.0.1", tls)
    yield plain, tls, wd
    proc.terminate()
    proc.wait(10)
    shutil.rmtree(wd, ignore_errors=True)


def publish(port: int, topic: str, payload: bytes, **tls: str) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("p-"))
    if tls:
        c.tls_set(ca_certs=tls["ca"])
    else:
        c.username_pw_set("gw", "s3cret")
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.publish(topic, payload, qos=1).wait_for_publish(10)
    c.disconnect()
    c.loop_stop()


def run_engine(cfg: Path) -> Engine:
    eng = Engine(load_engine_config(cfg))
    eng.start()
    return eng


def test_username_password_from_env(
    tmp_path: Path,
    secure_broker: tuple[int, int, Path],
    influx_v1_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plain, _, _ = secure_broker
    root, db = unique("rwa"), unique("t_")
    cfg = engine_yaml(
        tmp_path, mqtt_port=plain, root=root, influx=f"{{url: '{influx_v1_url}', database: {db}}}"
    )
    cfg.write_text(
        cfg.read_text().replace(
            "mqtt:\n", "mqtt:\n  username: gw\n  password_env: RW_TEST_MQTT_PW\n"
        )
    )
    monkeypatch.setenv("RW_TEST_MQTT_PW", "s3cret")
    eng = run_engine(cfg)
    try:
        assert eng.mqtt is not None and eng.mqtt.wait_connected(10)
        publish(plain, f"{root}/e/s/gw", b'{"sensor":"A","ts":%d,"value":1.5}' % now_ms())
        wait_for(lambda: influx_count(influx_v1_url, db) == 1, what="reading stored")
    finally:
        eng.stop()


def test_wrong_password_is_refused_and_logged(
    tmp_path: Path,
    secure_broker: tuple[int, int, Path],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plain, _, _ = secure_broker
    cfg = engine_yaml(tmp_path, mqtt_port=plain, root=unique("rwa"), influx=None)
    cfg.write_text(
        cfg.read_text().replace(
            "mqtt:\n", "mqtt:\n  username: gw\n  password_env: RW_TEST_MQTT_PW\n"
        )
        + "ingest_x: 0\n".replace("ingest_x: 0\n", "")
    )
    cfg.write_text(cfg.read_text().replace("ingest:\n", "ingest:\n  receiver: thread\n"))
    monkeypatch.setenv("RW_TEST_MQTT_PW", "wrong")
    eng = run_engine(cfg)
    try:
        assert eng.mqtt is not None and not eng.mqtt.wait_connected(2)
        assert any("refused" in r.getMessage() for r in caplog.records)
    finally:
        eng.stop()


def test_tls_with_private_ca(
    tmp_path: Path, secure_broker: tuple[int, int, Path], influx_v1_url: str
) -> None:
    _, tls, wd = secure_broker
    root, db = unique("rws"), unique("t_")
    cfg = engine_yaml(
        tmp_path, mqtt_port=tls, root=root, influx=f"{{url: '{influx_v1_url}', database: {db}}}"
    )
    cfg.write_text(
        cfg.read_text()
        .replace(f"url: mqtt://127.0.0.1:{tls}", f"url: mqtts://127.0.0.1:{tls}")
        .replace("mqtt:\n", f"mqtt:\n  tls: {{ca_file: {wd}/ca.crt}}\n")
    )
    eng = run_engine(cfg)
    try:
        assert eng.mqtt is not None and eng.mqtt.wait_connected(10)
        publish(
            tls,
            f"{root}/e/s/gw",
            b'{"sensor":"A","ts":%d,"value":2.5}' % now_ms(),
            ca=str(wd / "ca.crt"),
        )
        wait_for(lambda: influx_count(influx_v1_url, db) == 1, what="reading stored over TLS")
    finally:
        eng.stop()
