"""Readings published through real Mosquitto land in real InfluxDB 1.x / VictoriaMetrics."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from riskwatch.config.engine import load_engine_config
from riskwatch.engine import Engine
from tests.integration.spine_helpers import (
    Collector,
    Publisher,
    engine_yaml,
    influx_count,
    influx_query,
    now_ms,
    unique,
    wait_for,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def publisher(mqtt_addr: tuple[str, int]) -> Iterator[Publisher]:
    p = Publisher(*mqtt_addr)
    yield p
    p.close()


def start_engine(cfg_path: Path) -> Engine:
    eng = Engine(load_engine_config(cfg_path))
    eng.start()
    assert eng.mqtt is not None and eng.mqtt.wait_connected(10)
    return eng


def test_four_payload_forms_arrive_exactly_once(
    tmp_path: Path, mqtt_addr: tuple[str, int], influx_v1_url: str, publisher: Publisher
) -> None:
    root, db = unique("rwt"), unique("t_")
    eng = start_engine(
        engine_yaml(tmp_path, mqtt_port=mqtt_addr[1], root=root,
                    influx=f"{{url: '{influx_v1_url}', database: {db}}}")
    )  # fmt: skip
    try:
        t = now_ms() - 60_000
        publisher.send(f"{root}/mine1/face1/GW-1", {"sensor": "CH4-01", "ts": t, "value": 0.42})
        publisher.send(
            f"{root}/mine1/face1/GW-1",
            [
                {"sensor": "CH4-02", "ts": t + 1, "value": 0.5},
                {"sensor": "CO-01", "ts": t + 2, "value": 12, "kind": "co"},
            ],
        )
        publisher.send(
            f"{root}/chem1/tankfarm/GW-2",
            {
                "gateway": "GW-2",
                "ts": t + 3,
                "readings": [
                    {"sensor": "LT-1", "value": 71.5},
                    {"sensor": "LT-2", "value": 65.25, "ts": t + 4},
                ],
            },
        )
        publisher.send(
            f"{root}/grid/ent9/meter",
            {
                "ts": [t + 5, t + 6, t + 7],
                "sensor": ["P1", "P1", "P2"],
                "value": [100.5, 101.5, 7.0],
                "kind": "load_kw",
            },
        )
        wait_for(lambda: influx_count(influx_v1_url, db) >= 8, what="8 readings in InfluxDB")
        assert eng.wait_idle(10)
        rows = influx_query(influx_v1_url, db, "SELECT * FROM reading")
        got = sorted(
            (r["time"], r["enterprise"], r["site"], r["sensor"], r["kind"], r["value"], r["flags"])
            for r in rows
        )
        ns = 1_000_000
        assert got == [
            (t * ns, "mine1", "face1", "CH4-01", None, 0.42, 0),
            ((t + 1) * ns, "mine1", "face1", "CH4-02", None, 0.5, 0),
            ((t + 2) * ns, "mine1", "face1", "CO-01", "co", 12.0, 0),
            ((t + 3) * ns, "chem1", "tankfarm", "LT-1", None, 71.5, 0),
            ((t + 4) * ns, "chem1", "tankfarm", "LT-2", None, 65.25, 0),
            ((t + 5) * ns, "grid", "ent9", "P1", "load_kw", 100.5, 0),
            ((t + 6) * ns, "grid", "ent9", "P1", "load_kw", 101.5, 0),
            ((t + 7) * ns, "grid", "ent9", "P2", "load_kw", 7.0, 0),
        ]
    finally:
        eng.stop()


def test_v2_write_path_into_victoriametrics(
    tmp_path: Path, mqtt_addr: tuple[str, int], vm_url: str, publisher: Publisher
) -> None:
    root, ent = unique("rwt"), unique("ent")
    eng = start_engine(
        engine_yaml(tmp_path, mqtt_port=mqtt_addr[1], root=root,
                    influx=f"{{url: '{vm_url}', api: v2, org: o, bucket: b}}")
    )  # fmt: skip
    try:
        t = now_ms() - 30_000
        publisher.send(
            f"{root}/{ent}/s1/gw",
            {"ts": [t, t + 1000, t + 2000], "sensor": ["A", "A", "B"], "value": [1.5, 2.5, 3.5]},
        )
        assert eng.wait_idle(10)

        def exported() -> list[dict]:
            q = urllib.parse.urlencode(
                {"match[]": f'{{__name__="reading_value",enterprise="{ent}"}}'}
            )
            with urllib.request.urlopen(f"{vm_url}/api/v1/export?{q}", timeout=5) as r:
                return [json.loads(line) for line in r.read().splitlines() if line.strip()]

        wait_for(
            lambda: sum(len(s["values"]) for s in exported()) == 3,
            what="3 points in VictoriaMetrics",
        )
        series = {
            s["metric"]["sensor"]: list(zip(s["timestamps"], s["values"], strict=True))
            for s in exported()
        }
        assert series == {"A": [(t, 1.5), (t + 1000, 2.5)], "B": [(t + 2000, 3.5)]}
        assert {s["metric"]["site"] for s in exported()} == {"s1"}
    finally:
        eng.stop()


def test_influx_outage_spools_and_replays(
    tmp_path: Path, mqtt_addr: tuple[str, int], private_influxd, publisher: Publisher
) -> None:
    influx = private_influxd()
    url = f"http://127.0.0.1:{influx.port}"
    root = unique("rwt")
    eng = start_engine(
        engine_yaml(
            tmp_path, mqtt_port=mqtt_addr[1], root=root, influx=f"{{url: '{url}', database: out}}"
        )
    )
    try:
        t0 = now_ms() - 100_000

        def send(start: int, n: int) -> None:
            for k in range(start, start + n, 50):
                publisher.send(
                    f"{root}/e/s/gw",
                    {"ts": [t0 + i for i in range(k, k + 50)], "sensor": [f"S{i % 7}" for i in range(k, k + 50)],
                     "value": [float(i) for i in range(k, k + 50)]},
                )  # fmt: skip

        send(0, 500)
        wait_for(lambda: influx_count(url, "out") == 500, what="first 500 stored")
        influx.stop()
        send(500, 500)
        # 20 messages published in all: wait until all reached the engine and were acked
        assert eng.wait_idle(20, received=20), "messages must be acknowledged once spooled"
        assert eng.storage is not None and eng.storage.spool is not None
        assert len(eng.storage.spool) > 0
        influx.start()
        wait_for(lambda: len(eng.storage.spool) == 0, timeout=40, what="spool drained")
        assert influx_count(url, "out") == 1000
        vals = sorted(r["value"] for r in influx_query(url, "out", "SELECT value FROM reading"))
        assert vals == [float(i) for i in range(1000)]
    finally:
        eng.stop()


def test_malformed_input_dead_lettered_engine_keeps_going(
    tmp_path: Path, mqtt_addr: tuple[str, int], influx_v1_url: str, publisher: Publisher
) -> None:
    root, db = unique("rwt"), unique("t_")
    cfg = engine_yaml(tmp_path, mqtt_port=mqtt_addr[1], root=root,
                      influx=f"{{url: '{influx_v1_url}', database: {db}}}",
                      extra="ingest_extra: 1\n")  # fmt: skip
    cfg.write_text(cfg.read_text().replace("ingest_extra: 1\n", "").replace(
        "ingest:\n", "ingest:\n  strict: true\n  max_future_s: 60\n"))  # fmt: skip
    cat = tmp_path / "cat.csv"
    cat.write_text(
        "enterprise,site,sensor,kind\n" + "".join(f"e,s,{x},ch4\n" for x in ("G1", "G2", "G3", "X"))
    )
    cfg.write_text(cfg.read_text() + f"catalog: [{cat}]\n")
    dl = Collector(*mqtt_addr, f"{root}-dl")
    eng = start_engine(cfg)
    try:
        t = now_ms() - 1000
        topic = f"{root}/e/s/gw"
        good = {"sensor": "G1", "ts": t, "value": 1.0}
        publisher.send(topic, [good, {"sensor": "X", "ts": t}])  # missing value
        publisher.send(
            topic,
            [{"sensor": "G2", "ts": t, "value": 2.0}, {"sensor": "X", "ts": t, "value": "high"}],
        )
        publisher.send(
            topic,
            b'[{"sensor":"G3","ts":%d,"value":3.0},{"sensor":"X","ts":%d,"value":NaN}]' % (t, t),
        )
        publisher.send(
            topic,
            [
                {"sensor": "G1", "ts": t + 1, "value": 4.0},
                {"sensor": "X", "ts": "noon", "value": 1},
            ],
        )
        publisher.send(
            topic,
            [
                {"sensor": "G2", "ts": t + 1, "value": 5.0},
                {"sensor": "X", "ts": t + 86_400_000, "value": 1},
            ],
        )
        publisher.send(
            topic,
            [{"sensor": "G3", "ts": t + 1, "value": 6.0}, {"sensor": "NOPE", "ts": t, "value": 1}],
        )
        publisher.send(f"{root}/e/s", good)  # topic mismatch
        publisher.send(topic, b"\x00not json")
        publisher.send(topic, b"[" + b" " * 1_100_000 + b"]")  # over max_payload_bytes
        publisher.send(topic, {"sensor": "G1", "ts": t + 2, "value": 7.0})  # still running
        wait_for(lambda: influx_count(influx_v1_url, db) >= 7, what="7 good readings")
        assert eng.wait_idle(10)
        assert sorted(r["value"] for r in influx_query(influx_v1_url, db, "SELECT value FROM reading")) == [
            1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0,
        ]  # fmt: skip
        expected = [
            "missing_value", "non_numeric_value", "non_finite_value", "bad_timestamp",
            "absurd_timestamp", "unknown_sensor", "topic_mismatch", "invalid_json", "too_large",
        ]  # fmt: skip
        records = [json.loads(x) for x in (tmp_path / "deadletter.jsonl").read_text().splitlines()]
        assert [r["reason"] for r in records] == expected
        assert records[0]["field"] == "value" and records[0]["index"] == 1
        assert records[0]["reading"] == {"sensor": "X", "ts": t}
        wait_for(lambda: len(dl.messages) == len(expected), what="dead letters on MQTT")
        assert [m["reason"] for m in dl.json()] == expected
        metrics = urllib.request.urlopen(eng.metrics_url, timeout=5).read().decode()
        assert 'riskwatch_deadletters_total{reason="too_large"} 1.0' in metrics
        assert "riskwatch_readings_received_total 7.0" in metrics
    finally:
        dl.close()
        eng.stop()
