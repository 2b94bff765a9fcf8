"""The lifecycle through the real Mosquitto with both real stores (a SQLite file in WAL
mode and the PostgreSQL on 127.0.0.1:5432): what an operator console subscribed to the
alert topic sees, what the store keeps, and that a second sink restores it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from riskwatch.alerts.sink import AlertSink
from riskwatch.alerts.state import AlertState
from riskwatch.alerts.store import AlertStore
from riskwatch.catalog import SensorRegistry
from riskwatch.clock import ManualClock
from riskwatch.config.alerts import AlertsConfig, NotifierConfig
from riskwatch.model import Level, Signal
from riskwatch.pipeline import StageContext
from tests.integration.alerts_helpers import PahoPublisher
from tests.integration.spine_helpers import Collector, unique, wait_for

pytestmark = pytest.mark.integration

PG = os.environ.get("RW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
T0 = 1_795_880_000 * 10**9


@pytest.fixture(params=["sqlite", "postgresql"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    prefix = unique("t_") + "_"
    target = str(tmp_path / "alerts.sqlite") if request.param == "sqlite" else PG
    stores: list[AlertStore] = []

    def make() -> AlertStore:
        st = AlertStore(target, prefix=prefix)
        stores.append(st)
        return st

    yield make
    if request.param == "postgresql":
        eng = sa.create_engine(PG.replace("postgresql://", "postgresql+psycopg://"))
        with eng.begin() as c:
            for t in ("alerts", "transitions", "outbox", "silences"):
                c.exec_driver_sql(f'DROP TABLE IF EXISTS "{prefix}{t}"')
        eng.dispose()


def test_lifecycle_over_mqtt_and_restore(store_factory, mqtt_addr: tuple[str, int]) -> None:  # type: ignore[no-untyped-def]
    root = unique("rwa")
    reg = SensorRegistry()
    sid = int(reg.intern("m1", "face1", ["CH4-01"])[0])
    clock = ManualClock(T0)
    cfg = AlertsConfig(
        notify=[NotifierConfig(kind="mqtt", topic=f"{root}/{{enterprise}}",
                               summary_topic=f"{root}-sum/{{enterprise}}/{{site}}")],
        escalate_after_s={"red": 60.0},
    )  # fmt: skip
    col = Collector(*mqtt_addr, f"{root}/#")
    pub = PahoPublisher(*mqtt_addr)
    sink = AlertSink(cfg, reg, pub, CollectorRegistry(), clock, store=store_factory())
    sink.start()

    def sig(state: str, level: Level | None, value: float) -> None:
        s = Signal("ch4_face", sid, clock.now_ns(), state, level, value, 1.0, f"CH4 {value}")
        sink.handle([s], StageContext(clock.now_ns(), reg))

    try:
        sig("firing", Level.ORANGE, 1.1)
        clock.advance(5)
        sig("firing", Level.RED, 1.6)
        clock.advance(60)
        sink.tick(StageContext(clock.now_ns(), reg))  # 60 s unacknowledged at red
        (a,) = sink.open_alerts()
        sink.ack(a.id, "op-li", "evacuating face 1")
        wait_for(lambda: len(col.messages) >= 4, timeout=10, what="4 alert messages")
        sink.stop()

        # a second sink on the same store restores the acknowledged alert
        sink = AlertSink(cfg, reg, pub, CollectorRegistry(), clock, store=store_factory())
        sink.start()
        (b,) = sink.open_alerts()
        assert (b.id, b.state, b.acked_by, b.tier, b.level) == (
            a.id, AlertState.ACKNOWLEDGED, "op-li", 1, 1)  # fmt: skip
        clock.advance(30)
        sig("resolved", None, 0.9)
        sink.close(a.id, "op-li", "face ventilated, power restored")
        wait_for(lambda: len(col.messages) >= 6, timeout=10, what="6 alert messages")
        msgs = [orjson.loads(p) for _, p in col.messages]
        assert [(m["action"], m["state"], m["level"], m["tier"]) for m in msgs] == [
            ("firing", "firing", "orange", 0),
            ("level", "firing", "red", 0),
            ("escalate", "firing", "red", 1),
            ("ack", "acknowledged", "red", 1),
            ("resolved", "resolved", None, 1),
            ("close", "closed", "red", 1),
        ]
        assert {t for t, _ in col.messages} == {f"{root}/m1"}
        assert len({m["event"] for m in msgs}) == 6
        hist = sink.store.transitions(a.id)
        assert [t.who for t in hist] == ["engine", "engine", "engine", "op-li", "engine", "op-li"]
        assert sink.wait_idle()  # delivered marks are written in groups, every 100 ms
        assert sink.store.delivery_counts() == {("mqtt", "delivered"): 6}
        total, rows = sink.store.query(states=["closed"])
        assert total == 1 and rows[0].note == "face ventilated, power restored"
        # a console connecting late gets the retained summary: nothing open on face1
        late = Collector(*mqtt_addr, f"{root}-sum/#")
        wait_for(lambda: late.messages != [], timeout=10, what="retained summary")
        assert orjson.loads(late.messages[-1][1])["open"] == 0
        late.close()
    finally:
        sink.stop()
        pub.close()
        col.close()


def test_two_engine_instances_share_one_postgresql(mqtt_addr: tuple[str, int]) -> None:
    """Each instance restores and notifies only its own alerts; the other's open alerts are
    visible but refused for actions (409 in the API)."""
    from riskwatch.errors import NotOwned

    prefix = unique("t2_") + "_"
    reg = SensorRegistry()
    reg.intern("m1", "face1", ["S0"])
    reg.intern("m2", "pit", ["S0"])
    clock = ManualClock(T0)
    cfg = AlertsConfig(notify=[NotifierConfig(kind="log")])
    sinks = {
        name: AlertSink(cfg, reg, None, CollectorRegistry(), clock,
                        store=AlertStore(PG, prefix=prefix, owner=name))
        for name in ("engine-a", "engine-b")
    }  # fmt: skip
    for sk in sinks.values():
        sk.start()
    try:
        for name, sid in (("engine-a", 0), ("engine-b", 1)):
            s = Signal("ch4", sid, clock.now_ns(), "firing", Level.RED, 2.0, 1.5, "high")
            sinks[name].handle([s], StageContext(clock.now_ns(), reg))
            assert sinks[name].wait_idle()
        b_alert = sinks["engine-b"].open_alerts()[0]
        for sk in sinks.values():
            sk.stop()
        a2 = AlertSink(cfg, reg, None, CollectorRegistry(), clock,
                       store=AlertStore(PG, prefix=prefix, owner="engine-a"))  # fmt: skip
        assert [x.enterprise for x in a2.open_alerts()] == ["m1"]
        assert a2.get(b_alert.id).enterprise == "m2"  # visible
        with pytest.raises(NotOwned, match="open in engine instance 'engine-b'"):
            a2.ack(b_alert.id, "li")
        total, _ = a2.store.query(open_only=True)
        assert total == 2
        a2.stop()
    finally:
        eng = sa.create_engine(PG.replace("postgresql://", "postgresql+psycopg://"))
        with eng.begin() as c:
            for t in ("alerts", "transitions", "outbox", "silences"):
                c.exec_driver_sql(f'DROP TABLE IF EXISTS "{prefix}{t}"')
        eng.dispose()
