"""Fuzzing the decoder (hypothesis): no payload makes it raise, and every reading of a
message is either in the batch or accounted for by a dead letter, in the four forms."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from riskwatch.catalog import SensorRegistry
from riskwatch.ingest.decode import Decoder
from riskwatch.ingest.topics import TopicTemplate

NOW_NS = 1_795_880_000_500_000_000
MS = 1_795_880_000_000
TOPIC = "rw/e/s/gw"

junk_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**500), max_value=10**500),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
    st.sampled_from(["\ud800", "X\udfff", "9999-12-31T23:59:59+00:00", "noon", ""]),
)
json_any = st.recursive(
    junk_scalar,
    lambda kids: st.one_of(st.lists(kids, max_size=4),
                           st.dictionaries(st.text(max_size=6), kids, max_size=4)),
    max_leaves=20,
)
good_reading = st.builds(
    lambda i, v, dt: {"sensor": f"G{i}", "ts": MS + dt, "value": v},
    st.integers(0, 20), st.floats(-1e6, 1e6, allow_nan=False), st.integers(-60_000, 60_000),
)
bad_reading = st.one_of(
    st.builds(lambda v: {"sensor": "B", "ts": MS, "value": v},
              st.one_of(st.text(max_size=4), st.none(), st.just(10**400),
                        st.just(math.inf))),
    st.builds(lambda s: {"sensor": s, "ts": MS, "value": 1}, st.one_of(st.just(""), st.none(),
                                                                       st.integers())),
    st.builds(lambda t: {"sensor": "B", "ts": t, "value": 1},
              st.one_of(st.just("9999-12-31T23:59:59+00:00"), st.just(10**30), st.just("x"),
                        st.just(-(10**20)))),
    json_any.filter(lambda x: not isinstance(x, dict)),
)


def _dumps(x: Any) -> bytes:
    """JSON text the way a sloppy gateway writes it: NaN/Infinity and huge integers allowed,
    lone surrogates escaped."""
    return json.dumps(x, allow_nan=True).encode()


def _decoder() -> Decoder:
    return Decoder(SensorRegistry(), TopicTemplate("rw/{enterprise}/{site}/{gateway}"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.binary(max_size=64), json_any.map(_dumps)), min_size=1, max_size=6))
def test_no_payload_makes_the_decoder_raise(payloads: list[bytes]) -> None:
    m = _decoder().decode_many([(TOPIC, p, NOW_NS) for p in payloads])
    assert len(m.batch) <= m.n_readings
    assert sum(d.count for d in m.deadletters) + len(m.batch) >= m.n_readings


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.sampled_from(["one", "list", "envelope", "columns"]),
                       st.lists(st.tuples(st.booleans(), good_reading, bad_reading),
                                min_size=1, max_size=6)), min_size=1, max_size=5),
)
def test_every_good_reading_passes_and_every_bad_one_is_dead_lettered(
    messages: list[tuple[str, list[tuple[bool, dict[str, Any], Any]]]],
) -> None:
    payloads: list[bytes] = []
    n_good = n_bad = 0
    for form, rows in messages:
        readings = [g if ok else b for ok, g, b in rows]
        if form == "one" and type(readings[0]) is not dict:
            form = "list"  # a lone non-object is another form, not a reading
        if form == "one":
            readings, rows = readings[:1], rows[:1]
        elif form == "columns":  # columns of good readings only (a bad one breaks the shape)
            readings = [g for _, g, _ in rows]
        good = sum(1 for r, (ok, _, _) in zip(readings, rows, strict=False)
                   if ok or form == "columns")
        n_good += good
        n_bad += len(readings) - good
        if form == "one":
            payloads.append(_dumps(readings[0]))
        elif form == "list":
            payloads.append(_dumps(readings))
        elif form == "envelope":
            payloads.append(_dumps({"gateway": "gw", "readings": readings}))
        else:
            payloads.append(orjson.dumps({k: [r[k] for r in readings]
                                          for k in ("sensor", "ts", "value")}))
    m = _decoder().decode_many([(TOPIC, p, NOW_NS) for p in payloads])
    assert len(m.batch) == n_good
    assert sum(d.count for d in m.deadletters) == n_bad
