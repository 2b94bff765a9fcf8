"""Parts of ``riskwatch demo`` that need no external service: the embedded broker, the
local store, the generated engine config and work folder."""

from __future__ import annotations

import threading
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from riskwatch.catalog import SensorRegistry
from riskwatch.config.engine import load_engine_config
from riskwatch.demo import EmbeddedBroker, LocalStore, engine_yaml, free_port, prepare_workdir
from riskwatch.rules.stage import compile_files
from riskwatch.sensors_sim.publisher import MqttSink
from riskwatch.sensors_sim.scenario import load_scenario
from riskwatch.sensors_sim.simulator import Simulator

T0 = 1_780_000_000_000_000_000


def test_embedded_broker_carries_qos1_messages() -> None:
    broker = EmbeddedBroker(free_port())
    broker.start()
    got: list[bytes] = []
    done = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    subscribed = threading.Event()
    sub.on_connect = lambda c, u, f, rc, p: c.subscribe("rw/#", qos=1)
    sub.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()

    def on_message(c: object, u: object, m: mqtt.MQTTMessage) -> None:
        got.append(m.payload)
        if len(got) == 50:
            done.set()

    sub.on_message = on_message
    try:
        sub.connect("127.0.0.1", broker.port)
        sub.loop_start()
        assert subscribed.wait(10)
        sink = MqttSink(broker.url, qos=1)
        for i in range(50):
            sink.publish("rw/e/s/g", str(i).encode())
        assert sink.flush(10)
        sink.close()
        assert done.wait(10)
        assert sorted(int(x) for x in got) == list(range(50))
    finally:
        sub.disconnect()
        sub.loop_stop()
        broker.stop()


def test_local_store_appends_and_rotates(tmp_path: Path) -> None:
    st = LocalStore(tmp_path / "r.lp", max_bytes=100)
    st.write(b"reading,sensor=a value=1 1\nreading,sensor=b value=2 1", 2)
    st.write(b"reading,sensor=c value=3 2\n", 1)
    st.write(b"x" * 60, 1)  # passes 100 bytes: the old file moves to r.lp.1
    st.close()
    assert st.points == 4
    assert (tmp_path / "r.lp.1").read_bytes().count(b"\n") == 3
    assert (tmp_path / "r.lp").read_bytes() == b"x" * 60 + b"\n"
    assert st.url == f"file://{(tmp_path / 'r.lp').resolve()}"


def test_work_folder_config_loads_and_rules_compile(tmp_path: Path) -> None:
    sim = Simulator(load_scenario("mixed"), start_ns=T0)
    catalog, rules = prepare_workdir(tmp_path, sim, "mixed")
    assert [p.name for p in rules] == [
        "coal_mine.yaml", "hazchem.yaml", "tailings.yaml", "electricity.yaml",
    ]  # fmt: skip
    assert not list((tmp_path / "rules").glob("*_test.yaml"))
    cal = (tmp_path / "rules" / "calendars" / "shutdown_orders.csv").read_text()
    assert "pond1,," in cal and "停产整顿" in cal
    text = engine_yaml(
        mqtt_url="mqtt://127.0.0.1:1883", protocol="3.1.1", influx_url=None,
        influx_db="riskwatch", catalog=catalog, rules=rules, metrics=None,
    )  # fmt: skip
    (tmp_path / "engine.yaml").write_text(text)
    cfg = load_engine_config(tmp_path / "engine.yaml")
    assert cfg.mqtt.protocol == "3.1.1" and cfg.storage.influx is None
    # the demo's own topics: never production's rw/... and rw-alerts/... on a shared broker
    assert (cfg.mqtt.topics, cfg.mqtt.topic_template) == (
        ["rw-demo/#"], "rw-demo/{enterprise}/{site}/{gateway}")  # fmt: skip
    assert cfg.ingest.deadletter.topic == "rw-demo-deadletter"
    (mq,) = cfg.alerts.notifiers()
    assert (mq.topic, mq.summary_topic) == (
        "rw-demo-alerts/{enterprise}", "rw-demo-alerts-summary/{enterprise}/{site}")  # fmt: skip
    assert cfg.path(cfg.catalog[0]) == catalog
    reg = SensorRegistry()
    reg.load_catalog([cfg.path(cfg.catalog[0])])
    rs = compile_files([cfg.path(p) for p in cfg.rules], reg)
    assert {"ch4_face", "lel_gas", "displacement", "shutdown_production"} <= {
        r.name for r in rs.specs
    }


def test_demo_prints_raises_step_downs_and_clears() -> None:
    import argparse
    import io

    from riskwatch.alerts.state import Alert, AlertState, Transition
    from riskwatch.demo import Demo

    out = io.StringIO()
    demo = Demo(argparse.Namespace(), out=out)

    def pair(action: str, to: str, level: int | None, max_level: int) -> tuple[Alert, Transition]:
        a = Alert("a1", "k", "ch4_face", "m1", "f1", "S1", None, "ch4", "rule",
                  AlertState(to), to != "resolved", False, level, max_level, 1.2, 1.0,
                  "m1/f1/S1: ch4 high", 0, 5, 5)  # fmt: skip
        t = Transition("a1:1", "a1", 1, 7, 5, "engine", action, None, to, level, 1.2, None)
        return a, t

    demo._on_transitions([
        pair("firing", "firing", 2, 2), pair("level", "firing", 1, 1),
        pair("level", "firing", 2, 1), pair("resolved", "resolved", None, 1),
        pair("ack", "resolved", None, 1),
    ])  # fmt: skip
    tags = [ln.split()[0:3] for ln in out.getvalue().splitlines()]
    assert tags == [["ALERT", "ORANGE", "ch4_face"], ["LEVEL", "UP", "RED"],
                    ["STEP", "DOWN", "ORANGE"], ["CLEAR", "RED", "ch4_face"]]  # fmt: skip
    assert demo.raised == {"orange": 1}
