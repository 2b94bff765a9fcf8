"""Sparkplug host session rules and KJ parsing, on a manual clock, without services."""

from __future__ import annotations

import pytest

from riskwatch.catalog import SensorRegistry
from riskwatch.config.adapters import KjConfig
from riskwatch.ingest.decode import Decoder
from riskwatch.ingest.health import AdapterSignals
from riskwatch.ingest.kj import KjDecoder, split_records
from riskwatch.ingest.sparkplug.host import SparkplugDecoder
from riskwatch.ingest.sparkplug.payloads import Payload
from riskwatch.ingest.topics import TopicTemplate
from riskwatch.model import SignalState

T0 = 1_795_880_000_000  # ms
S = 1_000_000_000


class Pub:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        self.sent.append(topic)


def _host() -> tuple[SparkplugDecoder, AdapterSignals, Pub, SensorRegistry]:
    reg, sig, pub = SensorRegistry(), AdapterSignals(), Pub()
    dec = Decoder(reg, TopicTemplate("rw/{enterprise}/{site}/{gateway}"))
    return SparkplugDecoder(dec, sig, pub, rebirth_min_interval_s=0.0), sig, pub, reg


def _birth(bd: int, seq: int = 0) -> bytes:
    p = Payload(timestamp=T0, seq=seq)
    p.metrics.add(name="bdSeq", datatype=8, long_value=bd)
    p.metrics.add(name="A", alias=7, datatype=10, double_value=1.0)
    return p.SerializeToString()


def _death(bd: int) -> bytes:
    p = Payload(timestamp=T0 + 5)
    p.metrics.add(name="bdSeq", datatype=8, long_value=bd)
    return p.SerializeToString()


def test_stale_ndeath_of_an_older_session_is_ignored_and_live_one_fires() -> None:
    h, sig, _, _ = _host()
    h.decode("spBv1.0/g/NBIRTH/n", _birth(bd=3), T0 * 10**6)
    h.decode("spBv1.0/g/NDEATH/n", _death(bd=2), T0 * 10**6 + S)
    assert sig.drain() == []
    h.decode("spBv1.0/g/NDEATH/n", _death(bd=3), T0 * 10**6 + 2 * S)
    [s] = sig.drain()
    assert (s.rule, s.group, s.state) == ("sparkplug_offline", "g/n", SignalState.FIRING)
    h.decode("spBv1.0/g/NDEATH/n", _death(bd=3), T0 * 10**6 + 3 * S)
    assert sig.drain() == []  # already offline: no second firing
    h.decode("spBv1.0/g/NBIRTH/n", _birth(bd=4), T0 * 10**6 + 4 * S)
    assert [s.state for s in sig.drain()] == [SignalState.RESOLVED]


@pytest.mark.parametrize(
    "seqs, rebirths",
    [([1, 2, 3], 0), ([1, 3], 1), ([255], 1), ([1, 2, 2], 1)],
    ids=["in-order", "skip-one", "jump", "repeat"],
)
def test_seq_gap_requests_a_rebirth(seqs: list[int], rebirths: int) -> None:
    h, _, pub, _ = _host()
    h.decode("spBv1.0/g/NBIRTH/n", _birth(bd=0, seq=0), T0 * 10**6)
    for i, q in enumerate(seqs):
        p = Payload(timestamp=T0 + 1 + i, seq=q)
        p.metrics.add(alias=7, datatype=10, double_value=2.0)
        out = h.decode("spBv1.0/g/NDATA/n", p.SerializeToString(), (T0 + 1 + i) * 10**6)
        assert out.batch.value.tolist() == [2.0]  # the data is still used
    assert pub.sent == ["spBv1.0/g/NCMD/n"] * rebirths


def test_seq_wraps_255_to_0() -> None:
    h, _, pub, _ = _host()
    h.decode("spBv1.0/g/NBIRTH/n", _birth(bd=0, seq=254), T0 * 10**6)
    for i, q in enumerate([255, 0, 1]):
        p = Payload(timestamp=T0 + 1 + i, seq=q)
        p.metrics.add(alias=7, datatype=10, double_value=2.0)
        h.decode("spBv1.0/g/NDATA/n", p.SerializeToString(), (T0 + 1 + i) * 10**6)
    assert pub.sent == []


def test_signed_int_metrics_are_two_complement() -> None:
    h, _, _, _ = _host()
    p = Payload(timestamp=T0, seq=0)
    p.metrics.add(name="i8", alias=1, datatype=1, int_value=0xFF)
    p.metrics.add(name="i64", alias=2, datatype=4, long_value=(1 << 64) - 2)
    p.metrics.add(name="u32", alias=3, datatype=7, int_value=0xFFFFFFFF)
    out = h.decode("spBv1.0/g/NBIRTH/n", p.SerializeToString(), T0 * 10**6)
    assert out.batch.value.tolist() == [-1.0, -2.0, 4294967295.0]


def test_kj_records_span_lines_and_keep_their_line_numbers() -> None:
    recs = split_records("\n\na;b~c;\nd~\n\ne~\n‖")
    assert [(r.fields, r.line, r.number) for r in recs] == [
        (["a", "b"], 3, 1), (["c", "d"], 3, 2), (["e"], 6, 3)]


def test_kj_o2_low_limit_below_the_cap_is_capped_and_state_bits_become_quality() -> None:
    reg = SensorRegistry()
    dec = Decoder(reg, TopicTemplate("rw/{enterprise}/{site}/{gateway}"))
    kj = KjDecoder(KjConfig(drop_dir="."), dec, AdapterSignals())
    kj.decode("kj/M_CDDY_20261204100000.txt",
              "O2-1;氧气;进风巷;%;0;25;;18.5;;;;~".encode("gb18030"), T0 * 10**6)
    assert reg.meta(0)["setpoints"]["low"] == 20.0
    now_ns = 1_796_378_460_000_000_000  # 2026-12-04 10:01:00 +08:00
    out = kj.decode("kj/M_CDSS_20261204100000.txt",
                    "O2-1;氧气;进风巷;20.5;%;0x4;2026-12-04 10:00:00~"
                    "O2-1;氧气;进风巷;20.6;%;8;2026-12-04 10:00:10~".encode(), now_ns)
    assert [f & 3 for f in out.batch.flags.tolist()] == [2, 1]  # FAULT, CALIBRATING


@pytest.mark.parametrize(
    "records, states",
    [
        ([("1.6", "0")], ["firing"]),  # no power-off bit at 1.6 >= 1.5
        ([("1.6", "2")], []),  # the mine cut power: agrees
        ([("1.6", "4")], []),  # a faulty reading proves nothing
        ([("1.6", "0"), ("1.7", "2")], ["firing", "resolved"]),  # cut later in the file
        ([("1.6", "0"), ("1.4", "0")], ["firing", "resolved"]),  # back below the limit
        ([("1.4", "0"), ("1.6", "0"), ("1.7", "0")], ["firing"]),  # fires once
    ],
    ids=["no-cut", "cut", "fault", "cut-later", "below-again", "once"],
)
def test_kj_power_off_mismatch(records: list[tuple[str, str]], states: list[str]) -> None:
    reg, sig = SensorRegistry(), AdapterSignals()
    dec = Decoder(reg, TopicTemplate("rw/{enterprise}/{site}/{gateway}"))
    kj = KjDecoder(KjConfig(drop_dir="."), dec, sig)
    kj.decode("kj/M_CDDY_20261204100000.txt", "C1;甲烷;工作面;%;0;4;1.0;;;;1.5;1.0~".encode(),
              T0 * 10**6)
    body = "".join(f"C1;甲烷;工作面;{v};%;{st};2026-12-04 10:00:{i:02d}~"
                   for i, (v, st) in enumerate(records))
    kj.decode("kj/M_CDSS_20261204100000.txt", body.encode(), 1_796_378_460_000_000_000)
    got = sig.drain()
    assert [s.state.value for s in got] == states
    assert all(s.rule == "kj_power_off_mismatch" and s.sensor == 0 for s in got)


def test_http_answers_503_when_the_batch_is_not_durable_in_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from riskwatch.clock import ManualClock
    from riskwatch.config.adapters import HttpIngestConfig, HttpKey
    from riskwatch.ingest.channels import HTTP_CHANNEL, LocalChannel
    from riskwatch.ingest.http import HttpIngest

    monkeypatch.setenv("T21FMT_UNIT_KEY", "k")
    key = HttpKey(name="a", enterprise="e", key_env="T21FMT_UNIT_KEY")
    http = HttpIngest(HttpIngestConfig(keys=[key], durable_timeout_s=0.05),
                      TopicTemplate("rw/{enterprise}/{site}/{gateway}"), ManualClock(0))
    ch = LocalChannel(HTTP_CHANNEL, "http", on_acked=http.acked, on_arrival=lambda n: None)
    http.channel = ch  # nobody takes the message: storage never acknowledges it
    r = http.handle(key, "e", "s", "", b'{"sensor": "A", "ts": 1795880000000, "value": 1}')
    assert r.status_code == 503
    [msg] = ch.take()
    assert msg[0] == "rw/e/s/http" and msg[4] == HTTP_CHANNEL
    http.acked([msg[3]])  # a late acknowledgement finds no waiting request: harmless


def test_sparkplug_device_birth_data_death() -> None:
    h, sig, _, reg = _host()
    h.decode("spBv1.0/g/NBIRTH/n", _birth(bd=0, seq=0), T0 * 10**6)
    p = Payload(timestamp=T0 + 1, seq=1)
    p.metrics.add(name="CO", alias=20, datatype=10, double_value=12.0)
    out = h.decode("spBv1.0/g/DBIRTH/n/dev1", p.SerializeToString(), (T0 + 1) * 10**6)
    assert reg.key(int(out.batch.sensor[0])) == "g/n/dev1/CO"
    d = Payload(timestamp=T0 + 2, seq=2)
    d.metrics.add(alias=20, datatype=10, double_value=30.0)
    out = h.decode("spBv1.0/g/DDATA/n/dev1", d.SerializeToString(), (T0 + 2) * 10**6)
    assert out.batch.value.tolist() == [30.0] and out.batch.sensor.tolist() == [1]
    h.decode("spBv1.0/g/DDEATH/n/dev1", Payload(timestamp=T0 + 3, seq=3).SerializeToString(),
             (T0 + 3) * 10**6)
    p.seq = 4
    h.decode("spBv1.0/g/DBIRTH/n/dev1", p.SerializeToString(), (T0 + 4) * 10**6)
    got = [(s.group, s.state.value) for s in sig.drain()]
    assert got == [("g/n/dev1", "firing"), ("g/n/dev1", "resolved")]


def test_kj_watcher_takes_only_settled_complete_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from riskwatch.clock import ManualClock
    from riskwatch.ingest.channels import KJ_CHANNEL, LocalChannel
    from riskwatch.ingest.kj_watch import KjWatcher

    now = [0.0]
    dead: list[str] = []
    drop = tmp_path / "drop"
    w = KjWatcher(KjConfig(drop_dir=str(drop), settle_s=2.0), drop, drop / "archive",
                  drop / "rejected", ManualClock(0),
                  lambda dls, t: dead.extend(d.reason.value for d in dls),
                  monotonic=lambda: now[0])  # fmt: skip
    ch = LocalChannel(KJ_CHANNEL, "kj", on_acked=w.acked, on_arrival=lambda n: None)
    drop.mkdir()
    w.channel = ch
    (drop / "processing").mkdir()
    f = drop / "M1_CDSS_20261204100000.txt"
    f.write_text("a;b~")
    (drop / "M1_CDSS_20261204100010.txt.part").write_text("partial")
    (drop / "junk.txt").write_text("x")
    assert w.scan() == 0  # first sight
    now[0] = 1.0
    f.write_text("a;b~c;d~")  # still being written
    assert w.scan() == 0
    now[0] = 2.5
    assert w.scan() == 1  # junk.txt settled (and is rejected); the KJ file changed at 1.0
    assert dead == ["bad_file_name"] and (drop / "rejected" / "junk.txt").exists()
    assert ch.take() == []
    now[0] = 3.1
    assert w.scan() == 1
    [msg] = ch.take()
    assert msg[0] == "kj/M1_CDSS_20261204100000.txt" and msg[1] == b"a;b~c;d~"
    assert not f.exists() and (drop / "processing" / f.name).exists()
    assert (drop / "M1_CDSS_20261204100010.txt.part").exists()  # never taken
    w.acked([msg[3]])
    assert (drop / "archive" / "20261204" / f.name).exists()
