"""The gateway clock stage: per-gateway skew metrics and the gateway_clock_skew signal."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from riskwatch.catalog import SensorRegistry
from riskwatch.gateway_clock import RULE, GatewayClockStage
from riskwatch.model import Batch, Flags, Level
from riskwatch.pipeline import StageContext
from riskwatch.quality import QualityStage

S = 10**9
K = int(Flags.CLOCK_SKEW)


def rig():
    reg = SensorRegistry()
    reg.intern("m1", "f2", ["CH4-T0", "CH4-T1"], gateway="gw1")
    reg.intern("m1", "f2", ["CO-1"], gateway="gw2")
    reg.intern("m1", "f3", ["T-1"])  # no gateway: counts under its site
    metrics = CollectorRegistry()
    return reg, metrics, GatewayClockStage(2.0, metrics)


def sample(metrics, name, gateway):
    return metrics.get_sample_value(name, {"gateway": gateway})


def test_raised_while_skewed_resolved_once_not() -> None:
    reg, metrics, st = rig()
    ctx = StageContext(now_ns=0, registry=reg)
    b = Batch.from_arrays([300 * S, 10 * S, 10 * S], [0, 1, 2], [0.3, 0.3, 1.0], [K, 0, 0],
                          received=[10 * S, 10 * S, 10 * S])  # fmt: skip
    sig = st.process(b, ctx)
    assert [(s.rule, s.group, s.state, s.level, s.sensor, s.time) for s in sig] == [
        (RULE, "m1/f2/gw1", "firing", Level.YELLOW, -1, 10 * S)
    ]
    assert (sig[0].value, sig[0].threshold) == (290.0, 2.0)
    assert sig[0].extra == {"enterprise": "m1", "site": "f2"}
    assert sample(metrics, "riskwatch_clock_skew_readings_total", "m1/f2/gw1") == 1
    # the gauge follows the latest arrival of each gateway (here both at 10 s: the last row)
    assert sample(metrics, "riskwatch_gateway_clock_skew_seconds", "m1/f2/gw1") == 0.0
    assert sample(metrics, "riskwatch_gateway_clock_skew_seconds", "m1/f2/gw2") == 0.0
    # still skewed: no repeat
    b = Batch.from_arrays([301 * S], [1], [0.3], [K], received=[11 * S])
    assert st.process(b, ctx) == []
    assert sample(metrics, "riskwatch_gateway_clock_skew_seconds", "m1/f2/gw1") == 290.0
    assert sample(metrics, "riskwatch_clock_skew_readings_total", "m1/f2/gw1") == 2
    # another gateway's readings do not resolve it; its own good readings do
    assert st.process(Batch.from_arrays([12 * S], [2], [1.0], received=[12 * S]), ctx) == []
    b = Batch.from_arrays([12 * S], [0], [0.3], received=[12 * S + S // 10])
    sig = st.process(b, ctx)
    assert [(s.group, s.state, s.level) for s in sig] == [("m1/f2/gw1", "resolved", None)]
    assert sig[0].message == (
        "m1/f2/gw1: gateway clock back within 2 s (latest -0.1 s) [gateway_clock_skew, resolved]"
    )


def test_sensors_without_a_gateway_count_under_their_site() -> None:
    reg, _metrics, st = rig()
    ctx = StageContext(now_ns=0, registry=reg)
    b = Batch.from_arrays([100 * S], [3], [20.0], [K], received=[10 * S])
    assert [s.group for s in st.process(b, ctx)] == ["m1/f3"]


def test_a_new_sensor_keeps_the_gateways_state() -> None:
    reg, _metrics, st = rig()
    ctx = StageContext(now_ns=0, registry=reg)
    st.process(Batch.from_arrays([100 * S], [0], [0.3], [K], received=[10 * S]), ctx)
    new = int(reg.intern("m1", "f2", ["CH4-T9"], gateway="gw1")[0])
    b = Batch.from_arrays([100 * S], [new], [0.3], [K], received=[11 * S])
    assert st.process(b, ctx) == []  # same gateway, still skewed: nothing new


def test_behind_the_quality_stage() -> None:
    reg, _metrics, st = rig()
    ctx = StageContext(now_ns=0, registry=reg)
    q = QualityStage(2.0)
    b = q.process(Batch.from_arrays([13 * S], [0], [0.3], received=[10 * S]), ctx)
    assert [s.state for s in st.process(b, ctx)] == ["firing"]
