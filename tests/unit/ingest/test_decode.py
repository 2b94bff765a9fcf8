"""Decoding of the four payload forms and every dead-letter case."""

from __future__ import annotations

import orjson
import pytest

from riskwatch.catalog import SensorRegistry
from riskwatch.errors import DeadLetterReason as R
from riskwatch.ingest.decode import Decoder
from riskwatch.ingest.topics import TopicTemplate
from riskwatch.model import Flags

NOW_NS = 1_795_880_000_500_000_000
MS = 1_795_880_000_000
TOPIC = "rw/mine1/face1/GW-7"


@pytest.fixture
def reg() -> SensorRegistry:
    return SensorRegistry()


@pytest.fixture
def dec(reg: SensorRegistry) -> Decoder:
    return Decoder(reg, TopicTemplate("rw/{enterprise}/{site}/{gateway}"), max_payload_bytes=4096)


def j(x: object) -> bytes:
    return orjson.dumps(x)


def test_single_reading(dec: Decoder, reg: SensorRegistry) -> None:
    m = dec.decode(TOPIC, j({"sensor": "CH4-0101", "ts": MS + 123, "value": 0.42}), NOW_NS)
    assert m.deadletters == []
    assert m.batch.time.tolist() == [(MS + 123) * 1_000_000]
    assert m.batch.value.tolist() == [0.42]
    assert reg.key(int(m.batch.sensor[0])) == "mine1/face1/CH4-0101"
    assert m.batch.received.tolist() == [NOW_NS]


def test_list_form(dec: Decoder) -> None:
    m = dec.decode(
        TOPIC,
        j([{"sensor": "A", "ts": MS, "value": 1}, {"sensor": "B", "ts": MS, "value": 2.5}]),
        NOW_NS,
    )
    assert m.batch.value.tolist() == [1.0, 2.5]
    assert m.n_readings == 2


def test_envelope_takes_envelope_ts_and_gateway(dec: Decoder, reg: SensorRegistry) -> None:
    payload = {
        "gateway": "GW-9",
        "ts": MS,
        "readings": [{"sensor": "A", "value": 1}, {"sensor": "B", "value": 2, "ts": MS + 5}],
    }
    m = dec.decode("rw/mine1/face1/GW-9", j(payload), NOW_NS)
    assert m.batch.time.tolist() == [MS * 1_000_000, (MS + 5) * 1_000_000]
    assert reg.meta(int(m.batch.sensor[0]))["gateway"] == "GW-9"


def test_envelope_gateway_contradicting_the_topic_is_refused(reg: SensorRegistry) -> None:
    payload = j({"gateway": "GW-9", "ts": MS, "readings": [{"sensor": "A", "value": 1}]})
    m = Decoder(reg, TopicTemplate("rw/{enterprise}/{site}/{gateway}")).decode(
        "rw/mine1/face1/GW-7", payload, NOW_NS)  # fmt: skip
    assert len(m.batch) == 0
    assert [(d.reason, d.field) for d in m.deadletters] == [(R.TOPIC_MISMATCH, "gateway")]
    # a topic without a gateway level: the payload names it
    m = Decoder(reg, TopicTemplate("rw/{enterprise}/{site}")).decode("rw/m/f", payload, NOW_NS)
    assert m.deadletters == [] and reg.meta(int(m.batch.sensor[0]))["gateway"] == "GW-9"


def test_column_form_with_scalar_ts_and_kind(dec: Decoder, reg: SensorRegistry) -> None:
    payload = {"ts": MS, "sensor": ["A", "B", "C"], "value": [0.1, 0.2, 0.3], "kind": "ch4"}
    m = dec.decode(TOPIC, j(payload), NOW_NS)
    assert m.batch.value.tolist() == [0.1, 0.2, 0.3]
    assert set(reg.column("kind").tolist()) == {"ch4"}


def test_rfc3339_timestamps(dec: Decoder) -> None:
    m = dec.decode(
        TOPIC, j([{"sensor": "A", "ts": "2026-11-28T10:00:00.250+08:00", "value": 1}]), NOW_NS
    )
    assert m.batch.time.tolist() == [1_795_831_200_250_000_000]


def test_quality_flags(dec: Decoder) -> None:
    rs = [
        {"sensor": "A", "ts": MS, "value": 1, "quality": "calibrating"},
        {"sensor": "B", "ts": MS, "value": 1, "quality": "fault"},
        {"sensor": "C", "ts": MS, "value": 1, "quality": "ok"},
    ]
    m = dec.decode(TOPIC, j(rs), NOW_NS)
    assert m.batch.flags.tolist() == [Flags.CALIBRATING, Flags.FAULT, 0]


def test_late_reading_is_flagged_not_rejected(dec: Decoder) -> None:
    m = dec.decode(TOPIC, j({"sensor": "A", "ts": MS - 3_600_000, "value": 1}), NOW_NS)
    assert m.batch.flags.tolist() == [Flags.LATE]


def test_booleans_are_status_values(dec: Decoder) -> None:
    m = dec.decode(TOPIC, j([{"sensor": "FEED", "ts": MS, "value": True}]), NOW_NS)
    assert m.batch.value.tolist() == [1.0]


BAD_READINGS = [
    ({"sensor": "X", "ts": MS}, R.MISSING_VALUE, "value"),
    ({"sensor": "X", "ts": MS, "value": None}, R.MISSING_VALUE, "value"),
    ({"sensor": "X", "ts": MS, "value": "0.42"}, R.NON_NUMERIC_VALUE, "value"),
    ({"sensor": "X", "ts": MS, "value": [1]}, R.NON_NUMERIC_VALUE, "value"),
    ({"ts": MS, "value": 1}, R.MISSING_SENSOR, "sensor"),
    ({"sensor": "", "ts": MS, "value": 1}, R.MISSING_SENSOR, "sensor"),
    ({"sensor": "X", "ts": "yesterday", "value": 1}, R.BAD_TIMESTAMP, "ts"),
    ({"sensor": "X", "ts": "2026-11-28T10:00:00", "value": 1}, R.BAD_TIMESTAMP, "ts"),
    ({"sensor": "X", "value": 1}, R.BAD_TIMESTAMP, "ts"),
    ({"sensor": "X", "ts": 5, "value": 1}, R.ABSURD_TIMESTAMP, "ts"),
    ({"sensor": "X", "ts": MS + 86_400_000, "value": 1}, R.ABSURD_TIMESTAMP, "ts"),
    ({"sensor": "X", "ts": MS, "value": 1, "quality": "weird"}, R.BAD_QUALITY, "quality"),
]


@pytest.mark.parametrize(
    ("reading", "reason", "field"),
    BAD_READINGS,
    ids=[str(b[1]) + "-" + str(i) for i, b in enumerate(BAD_READINGS)],
)
def test_bad_reading_dead_lettered_good_ones_pass(
    dec: Decoder, reading: dict, reason: R, field: str
) -> None:
    good = {"sensor": "GOOD", "ts": MS, "value": 7.0}
    m = dec.decode(TOPIC, j([good, reading, good]), NOW_NS)
    assert m.batch.value.tolist() == [7.0, 7.0]
    assert [(d.reason, d.index, d.field) for d in m.deadletters] == [(reason, 1, field)]
    assert m.deadletters[0].reading == reading


def test_non_finite_values_from_lenient_json(dec: Decoder) -> None:
    payload = (
        b'[{"sensor":"A","ts":%d,"value":NaN},{"sensor":"B","ts":%d,"value":1.5},{"sensor":"C","ts":%d,"value":Infinity}]'
        % (MS, MS, MS)
    )
    m = dec.decode(TOPIC, payload, NOW_NS)
    assert m.batch.value.tolist() == [1.5]
    assert [d.reason for d in m.deadletters] == [R.NON_FINITE_VALUE, R.NON_FINITE_VALUE]


def test_non_object_in_list(dec: Decoder) -> None:
    m = dec.decode(TOPIC, j([{"sensor": "A", "ts": MS, "value": 1}, 5]), NOW_NS)
    assert len(m.batch) == 1
    assert [(d.reason, d.index) for d in m.deadletters] == [(R.BAD_SHAPE, 1)]


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("rw/mine1/face1", j({"sensor": "A", "ts": MS, "value": 1}), R.TOPIC_MISMATCH),
        ("other/mine1/face1/gw", j({"sensor": "A", "ts": MS, "value": 1}), R.TOPIC_MISMATCH),
        (TOPIC, b"{not json", R.INVALID_JSON),
        (TOPIC, b"\xff\xfe", R.INVALID_JSON),
        (TOPIC, b"42", R.BAD_SHAPE),
        (TOPIC, j({"readings": 5}), R.BAD_SHAPE),
        (TOPIC, j({"ts": [MS, MS], "sensor": ["A"], "value": [1, 2]}), R.BAD_SHAPE),
        (TOPIC, b"[" + b'{"sensor":"A","ts":1,"value":1},' * 200 + b"1]", R.TOO_LARGE),
    ],
)
def test_whole_message_rejected(dec: Decoder, topic: str, payload: bytes, reason: R) -> None:
    m = dec.decode(topic, payload, NOW_NS)
    assert len(m.batch) == 0
    assert [d.reason for d in m.deadletters] == [reason]
    assert m.deadletters[0].topic == topic


def test_column_form_partial_bad(dec: Decoder) -> None:
    payload = {"ts": [MS, MS, "bad"], "sensor": ["A", "B", "C"], "value": [1.0, None, 3.0]}
    m = dec.decode(TOPIC, j(payload), NOW_NS)
    assert m.batch.value.tolist() == [1.0]
    assert [(d.reason, d.index) for d in m.deadletters] == [
        (R.MISSING_VALUE, 1),
        (R.BAD_TIMESTAMP, 2),
    ]
    assert m.deadletters[1].reading == {"ts": "bad", "sensor": "C", "value": 3.0}


def test_strict_registry_rejects_unknown_sensors() -> None:
    reg = SensorRegistry(strict=True)
    from riskwatch.catalog import CatalogEntry

    reg.apply_catalog([CatalogEntry("mine1", "face1", "KNOWN", "ch4")])
    d = Decoder(reg, TopicTemplate("rw/{enterprise}/{site}/{gateway}"))
    m = d.decode(
        TOPIC,
        j([{"sensor": "KNOWN", "ts": MS, "value": 1}, {"sensor": "NEW", "ts": MS, "value": 2}]),
        NOW_NS,
    )
    assert m.batch.value.tolist() == [1.0]
    assert [(x.reason, x.index) for x in m.deadletters] == [(R.UNKNOWN_SENSOR, 1)]
    assert len(reg) == 1


def test_envelope_shapes_take_the_same_paths_as_mixed_ones(
    dec: Decoder, reg: SensorRegistry
) -> None:
    """Envelopes whose readings all have the same keys take a shortcut (key counts tell
    the shape); a reading with an explicit null ts or an extra field must not."""
    all_inherit = {"ts": MS, "readings": [{"sensor": "A", "value": 1}, {"sensor": "B", "value": 2}]}
    all_own = {"ts": MS, "readings": [{"sensor": "A", "value": 1, "ts": MS + 1}]}
    null_ts = {
        "ts": MS,
        "readings": [{"sensor": "A", "value": 1, "ts": None}, {"sensor": "B", "value": 2}],
    }
    kind_no_ts = {"ts": MS, "readings": [{"sensor": "K", "value": 1, "kind": "ch4"}]}
    m = dec.decode_many(
        [(TOPIC, j(p), NOW_NS) for p in (all_inherit, all_own, null_ts, kind_no_ts)]
    )
    assert (
        m.batch.time.tolist()
        == [MS * 1_000_000] * 2 + [(MS + 1) * 1_000_000] + [MS * 1_000_000] * 2
    )
    assert [(d.reason, d.index) for d in m.deadletters] == [(R.BAD_TIMESTAMP, 0)]
    assert reg.meta(int(m.batch.sensor[-1]))["kind"] == "ch4"


def test_sensor_ids_are_per_site_and_stable_across_calls(dec: Decoder, reg: SensorRegistry) -> None:
    body = j({"ts": MS, "readings": [{"sensor": f"S{i}", "value": i} for i in range(10)]})
    topics = ["rw/mine1/face1/GW", "rw/mine1/face2/GW"]
    first = dec.decode_many([(t, body, NOW_NS) for t in topics]).batch.sensor.tolist()
    again = dec.decode_many([(t, body, NOW_NS) for t in reversed(topics)]).batch.sensor.tolist()
    assert len(set(first)) == 20
    assert again == first[10:] + first[:10]
    assert [reg.key(i) for i in first[:2]] == ["mine1/face1/S0", "mine1/face1/S1"]


# ---------------------------------------------------------------- hostile input
GOOD = b'{"sensor":"A","ts":1795880000000,"value":0.4}'


@pytest.mark.parametrize(
    ("payload", "reason", "field"),
    [
        (b"[" * 10_000 + b"]" * 10_000, R.TOO_DEEP, None),  # orjson's depth limit
        (b'{"readings":' + b"[" * 1100 + b"]" * 1100 + b"}", R.TOO_DEEP, None),
        (b'{"sensor":"A","ts":1795880000000,"value":' + b"9" * 400 + b"}",
         R.NUMBER_OUT_OF_RANGE, "value"),
        (b'{"sensor":"A","ts":"9999-12-31T23:59:59+00:00","value":1}', R.ABSURD_TIMESTAMP, "ts"),
        (b'{"sensor":"A","ts":"1600-01-01T00:00:00+00:00","value":1}', R.ABSURD_TIMESTAMP, "ts"),
        (b'{"sensor":"A","ts":99999999999999999999,"value":1}', R.ABSURD_TIMESTAMP, "ts"),
        (b'{"sensor":"A","ts":1e300,"value":1}', R.ABSURD_TIMESTAMP, "ts"),
        (b'{"sensor":"X\\ud800","ts":1795880000000,"value":1}', R.BAD_TEXT, "sensor"),
        (b'[{"sensor":"A","ts":1795880000000,"value":NaN,"unit":"\\udc00"}]', R.BAD_TEXT, "unit"),
        (b'{"gateway":"gw\\udc00","readings":[{"sensor":"A","value":1}]}', R.BAD_TEXT, "gateway"),
    ],
)  # fmt: skip
def test_poison_is_dead_lettered_with_its_reason_and_the_next_message_passes(
    reg: SensorRegistry, payload: bytes, reason: R, field: str | None
) -> None:
    dec = Decoder(reg, TopicTemplate("rw/{enterprise}/{site}/{gateway}"))
    m = dec.decode_many([("rw/m1/f1/gw", payload, NOW_NS), ("rw/m1/f1/gw", GOOD, NOW_NS)])
    assert m.batch.value.tolist() == [0.4]
    assert [(d.reason, d.field) for d in m.deadletters] == [(reason, field)]


def test_a_surrogate_pair_is_good_text(dec: Decoder, reg: SensorRegistry) -> None:
    m = dec.decode("rw/m1/f1/gw", b'{"sensor":"A\\ud83d\\ude00","ts":1795880000000,"value":1}',
                   NOW_NS)  # fmt: skip
    assert m.deadletters == [] and reg.key(int(m.batch.sensor[0])).endswith("A\U0001f600")


def test_a_decoder_failure_dead_letters_only_its_message(
    dec: Decoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = dec._parse_one

    def parse_one(topic, payload, received, acc):  # type: ignore[no-untyped-def]
        if payload == b"boom":
            raise RuntimeError("a decoder bug")
        return real(topic, payload, received, acc)

    monkeypatch.setattr(dec, "_parse_one", parse_one)
    m = dec.decode_many([("rw/m1/f1/gw", GOOD, NOW_NS), ("rw/m1/f1/gw", b"boom", NOW_NS)])
    assert m.batch.value.tolist() == [0.4]
    assert [d.reason for d in m.deadletters] == [R.DECODE_ERROR]


def test_dead_letters_are_capped_per_message(reg: SensorRegistry) -> None:
    dec = Decoder(reg, TopicTemplate("rw/{enterprise}/{site}/{gateway}"),
                  max_deadletters_per_message=3)  # fmt: skip
    junk = b"[" + b",".join([b"1"] * 10) + b"]"
    m = dec.decode_many([("rw/m1/f1/gw", junk, NOW_NS), ("rw/m1/f1/gw", GOOD, NOW_NS),
                         ("rw/m1/f1/gw", junk, NOW_NS)])  # fmt: skip
    assert m.batch.value.tolist() == [0.4]
    assert [(d.index, d.count) for d in m.deadletters] == [(0, 1), (1, 1), (2, 1), (3, 7)] * 2
    assert "7 more bad readings" in m.deadletters[3].detail
    assert sum(d.count for d in m.deadletters) == 20


def test_new_sensors_over_the_limits_are_dead_lettered_and_not_registered(
    reg: SensorRegistry,
) -> None:
    from riskwatch.ingest.limits import SensorLimits

    dec = Decoder(reg, TopicTemplate("rw/{enterprise}/{site}/{gateway}"),
                  limits=SensorLimits(per_enterprise=5, per_minute=3))  # fmt: skip
    msg = j([{"sensor": f"S{i % 4}", "ts": MS + i, "value": 1} for i in range(8)])
    m = dec.decode_many([("rw/e/s/g", msg, NOW_NS)])
    assert len(reg) == 3 and len(m.batch) == 6  # the bucket held 3 new sensors
    assert [(d.reason, d.index, d.field) for d in m.deadletters] == [
        (R.SENSOR_LIMIT, 3, "sensor"), (R.SENSOR_LIMIT, 7, "sensor")]  # fmt: skip
    m = dec.decode_many([("rw/e/s/g", msg, NOW_NS + 60 * 10**9)])  # a minute later
    assert len(reg) == 4 and len(m.batch) == 8 and m.deadletters == []
    other = j([{"sensor": f"T{i}", "ts": MS, "value": 1} for i in range(3)])
    m = dec.decode_many([("rw/e/s/g", other, NOW_NS + 120 * 10**9)])  # e holds 5 at most
    assert len(m.batch) == 1 and [d.index for d in m.deadletters] == [1, 2]


def test_bad_text_in_one_reading_of_a_list_loses_only_that_reading(reg: SensorRegistry) -> None:
    dec = Decoder(reg, TopicTemplate("rw/{enterprise}/{site}/{gateway}"))
    payload = (b'[{"sensor":"A","ts":1795880000000,"value":1},'
               b'{"sensor":"B\\ud800","ts":1795880000000,"value":2},'
               b'{"sensor":"C","ts":1795880000000,"value":NaN}]')  # fmt: skip
    m = dec.decode("rw/m1/f1/gw", payload, NOW_NS)
    assert m.batch.value.tolist() == [1.0]
    assert [(d.reason, d.index, d.field) for d in m.deadletters] == [
        (R.BAD_TEXT, 1, "sensor"), (R.NON_FINITE_VALUE, 2, "value")]  # fmt: skip


def test_refused_sensors_raise_and_later_resolve_the_sensor_limit_alert(reg: SensorRegistry) -> None:
    from prometheus_client import CollectorRegistry

    from riskwatch.ingest.limits import SensorLimits
    from riskwatch.model import Batch, SignalState
    from riskwatch.pipeline import StageContext
    from riskwatch.sensor_limit_health import SensorLimitStage

    limits = SensorLimits(per_enterprise=2, per_minute=100)
    dec = Decoder(reg, TopicTemplate("rw/{enterprise}/{site}/{gateway}"), limits=limits)
    metrics = CollectorRegistry()
    stage = SensorLimitStage(limits, metrics)
    msg = j([{"sensor": f"S{i}", "ts": MS, "value": 1} for i in range(5)])
    dec.decode_many([("rw/entA/s/g", msg, NOW_NS)])
    [sig] = stage.process(Batch.empty(), StageContext(now_ns=NOW_NS, registry=reg))
    assert (sig.rule, sig.group, sig.state, sig.value) == ("sensor_limit", "entA", SignalState.FIRING, 3.0)
    assert metrics.get_sample_value("riskwatch_sensors_refused_total", {"limit": "per_enterprise"}) == 3
    nine_min = StageContext(now_ns=NOW_NS + 9 * 60 * 10**9, registry=reg)
    assert stage.tick(nine_min) == []  # still within the quiet time
    [end] = stage.tick(StageContext(now_ns=NOW_NS + 10 * 60 * 10**9, registry=reg))
    assert end.state == SignalState.RESOLVED and end.group == "entA"
