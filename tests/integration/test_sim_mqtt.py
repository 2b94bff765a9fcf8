"""The simulator against the real Mosquitto: what a subscriber receives lines up with the
ground-truth labels, and the load generator reports whether it reached the asked rate."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from riskwatch.catalog import SensorRegistry
from riskwatch.cli import main
from riskwatch.ingest.decode import Decoder
from riskwatch.ingest.topics import TopicTemplate
from riskwatch.sensors_sim.labels import read_labels

pytestmark = pytest.mark.integration

SCENARIO = """
name: simit
seed: 3
duration: 20m
form: {form}
plants:
  - {{type: coal_mine, enterprise: {ent}}}
events:
  - {{type: ch4_buildup, at: 2m, duration: 5m, peak: 1.8, target: {{sensor: CH4-F1-T1}}}}
  - {{type: dropout, at: 3m, duration: 4m, target: {{sensor: CO-H1}}}}
  - {{type: gateway_dropout, at: 8m, duration: 3m, target: {{site: main}}}}
  - {{type: duplicate, at: 12m, duration: 2m, target: {{sensor: O2-F1}}}}
  - {{type: late, at: 14m, duration: 2m, delay: 3m, target: {{sensor: T-F2}}}}
  - {{type: malformed, at: 15m, duration: 3m, p: 0.5, target: {{site: heading1}}}}
  - {{type: stuck, at: 1m, duration: 10m, target: {{sensor: CH4-F2-T0}}}}
"""


class Collector:
    def __init__(self, addr: tuple[str, int], topic: str) -> None:
        self.msgs: list[tuple[str, bytes, int]] = []
        self.ready = threading.Event()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        c.on_connect = lambda cl, u, f, rc, p: cl.subscribe(topic, qos=1)
        c.on_subscribe = lambda cl, u, mid, rcs, p: self.ready.set()
        c.on_message = lambda cl, u, m: self.msgs.append((m.topic, m.payload, time.time_ns()))
        c.connect(addr[0], addr[1])
        c.loop_start()
        assert self.ready.wait(10)
        self.client = c

    def settle(self, expect_at_least: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        last = -1
        while time.monotonic() < deadline:
            n = len(self.msgs)
            if n >= expect_at_least and n == last:
                return
            last = n
            time.sleep(0.3)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.parametrize("form", ["envelope", "columns", "single"])
def test_published_stream_lines_up_with_labels(
    private_mosquitto: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], form: str
) -> None:
    # a broker of our own with unbounded queues: the shared one drops QoS 1 messages
    # beyond max_queued_messages when a subscriber lags behind a burst
    mqtt_addr = ("127.0.0.1", private_mosquitto().port)
    ent = f"simit{os.getpid()}{form}"
    sc = tmp_path / "s.yaml"
    sc.write_text(SCENARIO.format(ent=ent, form=form))
    labels = tmp_path / "labels.jsonl"
    col = Collector(mqtt_addr, f"rw/{ent}/#")
    try:
        rc = main([
            "simulate", str(sc), "--mqtt", f"mqtt://{mqtt_addr[0]}:{mqtt_addr[1]}",
            "--speed", "max", "--labels", str(labels), "--qos", "1",
        ])  # fmt: skip
        out = capsys.readouterr().out
        assert rc == 0, out
        n_msgs = int(out.split(" readings in ")[1].split(" messages")[0])
        col.settle(n_msgs)
    finally:
        col.close()
    assert len(col.msgs) == n_msgs
    reg = SensorRegistry()
    dec = Decoder(reg, TopicTemplate("rw/{enterprise}/{site}/{gateway}"), late_after_s=120)
    res = dec.decode_many([(t, p, r) for t, p, r in col.msgs])
    b = res.batch
    names = np.array([reg.key(i).rsplit("/", 1)[1] for i in b.sensor], dtype=object)
    sites = np.array([reg.key(i).split("/")[1] for i in b.sensor], dtype=object)
    ts = b.time // 1_000_000
    labs = {(x["type"], x["sensor"] or x["gateway"]): x for x in read_labels(labels)}
    assert set(labs) == {
        ("ch4_buildup", "CH4-F1-T1"), ("dropout", "CO-H1"), ("gateway_dropout", "GW-main"),
        ("duplicate", "O2-F1"), ("late", "T-F2"), ("stuck", "CH4-F2-T0"),
        *[("malformed", s) for s in ("CH4-H1-T1", "CH4-H1-T2", "CO-H1", "O2-H1", "T-H1", "WS-H1", "FEED-H1")],
    }  # fmt: skip

    def window(key: tuple[str, str], col_: np.ndarray, value: str) -> tuple[np.ndarray, np.ndarray]:
        lb = labs[key]
        m = col_ == value
        return m & (ts >= lb["start"]) & (ts < lb["end"]), m & (
            (ts < lb["start"]) | (ts >= lb["end"])
        )

    inside, outside = window(("ch4_buildup", "CH4-F1-T1"), names, "CH4-F1-T1")
    assert b.value[inside].max() >= 1.7 and b.value[outside].max() < 1.0
    inside, outside = window(("dropout", "CO-H1"), names, "CO-H1")
    assert inside.sum() == 0 and outside.sum() > 0
    inside, outside = window(("gateway_dropout", "GW-main"), sites, "main")
    assert inside.sum() == 0 and outside.sum() > 0
    inside, outside = window(("duplicate", "O2-F1"), names, "O2-F1")
    _, cnt = np.unique(ts[inside], return_counts=True)
    assert cnt.tolist() == [2] * 12
    assert np.unique(ts[outside], return_counts=True)[1].max() == 1
    # late: the window's readings arrived after readings 3 min newer (received order)
    inside, outside = window(("late", "T-F2"), names, "T-F2")
    order = np.argsort(b.received[names == "T-F2"], kind="stable")
    seq = ts[names == "T-F2"][order]
    newest = np.maximum.accumulate(seq)
    lb = labs[("late", "T-F2")]
    lag = (newest - seq)[(seq >= lb["start"]) & (seq < lb["end"])]
    assert len(lag) == 12 and (lag >= 2 * 60_000).all()
    inside, outside = window(("stuck", "CH4-F2-T0"), names, "CH4-F2-T0")
    # frozen inside, moving outside; how much it moves depends on the plant time of day
    # (the run ends "now"): 5-16 distinct values over 480 start times, so ask for 3
    assert len(set(b.value[inside].tolist())) == 1 and len(set(b.value[outside].tolist())) >= 3
    # malformed readings were dead-lettered; all of them in the window, on heading1
    lb = labs[("malformed", "CO-H1")]
    assert len(res.deadletters) > 5
    for d in res.deadletters:
        assert d.topic == f"rw/{ent}/heading1/GW-heading1"
    inside, _ = window(("malformed", "CO-H1"), sites, "heading1")
    assert inside.sum() < 7 * 18  # some of the window's readings are missing (dead letters)
    del lb


def test_rate_reached_or_says_it_could_not(
    mqtt_addr: tuple[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"mqtt://{mqtt_addr[0]}:{mqtt_addr[1]}"
    rc = main(["simulate", "hazchem", "--mqtt", url, "--rate", "3000", "--duration", "2",
               "--form", "columns", "--qos", "1"])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "rate reached: " in out and "of 3000 asked" in out
    rc = main(["simulate", "hazchem", "--mqtt", url, "--rate", "50000000", "--duration", "1",
               "--form", "single", "--qos", "1"])  # fmt: skip
    cap = capsys.readouterr()
    out = cap.out
    assert rc == 3, cap.err
    assert "COULD NOT reach the asked rate" in out and "of 50000000 asked" in out


def test_unreachable_broker_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import free_port

    rc = main(["simulate", "tailings", "--mqtt", f"mqtt://127.0.0.1:{free_port()}",
               "--speed", "max", "--labels", os.devnull])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 1
    assert "cannot reach the MQTT broker at mqtt://127.0.0.1:" in err
