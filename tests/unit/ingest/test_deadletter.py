"""The dead-letter sink: bounded files, summary counts in metrics, publish failures counted."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from riskwatch.errors import DeadLetterReason as R
from riskwatch.ingest.deadletter import DeadLetter, DeadLetterSink
from riskwatch.metrics import IngestMetrics


class _DownBroker:
    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        raise ConnectionError("not connected")


def test_rotation_happens_before_a_write_would_pass_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "dl.jsonl"
    sink = DeadLetterSink(path, None, None, IngestMetrics(CollectorRegistry()), max_file_bytes=1000)
    for i in range(40):
        sink.write([DeadLetter(R.BAD_SHAPE, "x" * 50, f"t/{i}")], 0)
    sink.close()
    rotated = path.with_suffix(".jsonl.1")
    assert 0 < path.stat().st_size <= 1000 and 0 < rotated.stat().st_size <= 1000


def test_summary_records_count_every_reading_and_publish_failures_are_counted(
    tmp_path: Path,
) -> None:
    reg = CollectorRegistry()
    sink = DeadLetterSink(tmp_path / "dl.jsonl", "dl", _DownBroker(), IngestMetrics(reg))
    for _ in range(5):
        sink.write([DeadLetter(R.BAD_SHAPE, "one", "t"), DeadLetter(R.BAD_SHAPE, "rest", "t",
                                                                   count=999)], 0)  # fmt: skip
    assert reg.get_sample_value("riskwatch_deadletters_total", {"reason": "bad_shape"}) == 5000
    assert reg.get_sample_value("riskwatch_deadletter_publish_failures_total") == 10
    assert sink.publish_failures == 10
