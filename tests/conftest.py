"""Shared fixtures: real services on loopback (started by .ci/run / .ci/services.sh).

Integration tests read service addresses from the environment that
``source .ci/services.sh`` exports (with the same defaults), and can start private
Mosquitto / InfluxDB instances of their own when they need to stop or burst them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_tcp(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{host}:{port} did not open")


def wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except Exception:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer")


@pytest.fixture(scope="session")
def mqtt_addr() -> tuple[str, int]:
    host, _, port = os.environ.get("RW_TEST_MQTT", "127.0.0.1:1883").rpartition(":")
    try:
        wait_tcp(host, int(port), timeout=3)
    except TimeoutError:
        pytest.fail(f"Mosquitto is not running on {host}:{port}; run: source .ci/services.sh")
    return host, int(port)


@pytest.fixture(scope="session")
def influx_v1_url() -> str:
    url = os.environ.get("RW_TEST_INFLUX_V1", "http://127.0.0.1:18086")
    try:
        wait_http(url + "/ping", timeout=3)
    except TimeoutError:
        pytest.fail(f"InfluxDB is not running at {url}; run: source .ci/services.sh")
    return url


@pytest.fixture(scope="session")
def vm_url() -> str:
    url = os.environ.get("RW_TEST_VM", "http://127.0.0.1:18428")
    try:
        wait_http(url + "/health", timeout=3)
    except TimeoutError:
        pytest.fail(f"VictoriaMetrics is not running at {url}; run: source .ci/services.sh")
    return url


@dataclass
class Proc:
    proc: subprocess.Popen[bytes]
    port: int
    workdir: Path
    start: Callable[[], None]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def private_mosquitto() -> Iterator[Callable[..., Proc]]:
    """Start a Mosquitto of the test's own with queues sized for bursts."""
    procs: list[Proc] = []

    def start(max_queued: int = 0) -> Proc:
        port = free_port()
        wd = Path(tempfile.mkdtemp(prefix="rw-mosq-"))
        conf = wd / "mosquitto.conf"
        conf.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {wd}/\nmax_queued_messages {max_queued}\n"
            "max_inflight_messages 0\nmax_queued_bytes 0\n"
        )

        def launch() -> None:
            p.proc = subprocess.Popen(
                ["mosquitto", "-c", str(conf)],
                stdout=subprocess.DEVNULL,
                stderr=open(wd / "log", "ab"),
            )
            wait_tcp("127.0.0.1", port)

        p = Proc(None, port, wd, launch)  # type: ignore[arg-type]
        launch()
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.stop()
        shutil.rmtree(p.workdir, ignore_errors=True)


@pytest.fixture
def private_influxd() -> Iterator[Callable[[], Proc]]:
    """Start an InfluxDB 1.x of the test's own (so the test may stop and restart it)."""
    procs: list[Proc] = []

    def start() -> Proc:
        port = free_port()
        wd = Path(tempfile.mkdtemp(prefix="rw-influx-"))
        conf = wd / "influxdb.conf"
        conf.write_text(
            f'reporting-disabled = true\nbind-address = "127.0.0.1:{free_port()}"\n'
            f'[meta]\n  dir = "{wd}/meta"\n[data]\n  dir = "{wd}/data"\n  wal-dir = "{wd}/wal"\n'
            '  query-log-enabled = false\n  index-version = "inmem"\n'
            f'[http]\n  enabled = true\n  bind-address = "127.0.0.1:{port}"\n'
            "  log-enabled = false\n  max-body-size = 0\n"
            '[monitor]\n  store-enabled = false\n[logging]\n  level = "warn"\n'
        )

        def launch() -> None:
            p.proc = subprocess.Popen(
                ["influxd", "-config", str(conf)],
                stdout=subprocess.DEVNULL,
                stderr=open(wd / "log", "ab"),
            )
            wait_http(f"http://127.0.0.1:{port}/ping")

        p = Proc(None, port, wd, launch)  # type: ignore[arg-type]
        launch()
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.stop()
        shutil.rmtree(p.workdir, ignore_errors=True)


@pytest.fixture
def output_dir(request: pytest.FixtureRequest) -> Path:
    """A per-test folder under test-output/ for screenshots and artefacts."""
    d = Path("test-output") / request.node.name
    d.mkdir(parents=True, exist_ok=True)
    return d
