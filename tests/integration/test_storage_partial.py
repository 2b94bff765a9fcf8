"""A batch InfluxDB 1.x accepts only in part: the good points stay written, only the bad
ones are dead-lettered (the error, not the whole batch), and nothing is retried."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from riskwatch.catalog import SensorRegistry
from riskwatch.config.engine import InfluxConfig
from riskwatch.errors import StorageError
from riskwatch.metrics import StorageMetrics
from riskwatch.storage.influx import make_writer
from riskwatch.storage.lineproto import LineEncoder
from riskwatch.storage.runner import StorageRunner
from riskwatch.storage.spool import Spool
from tests.integration.spine_helpers import influx_query, unique

pytestmark = pytest.mark.integration


def test_partial_write_keeps_the_good_points_and_dead_letters_the_bad(
    tmp_path: Path, influx_v1_url: str
) -> None:
    db = unique("t_")
    writer = make_writer(InfluxConfig(url=influx_v1_url, database=db))
    writer.write(b"reading,sensor=a value=1 1", 1)  # value is a float field from now on
    rejected: list[tuple[bytes, StorageError]] = []
    reg = CollectorRegistry()
    runner = StorageRunner(writer, LineEncoder(SensorRegistry()), Spool(tmp_path / "spool", 10**6),
                           StorageMetrics(reg), on_reject=lambda b, e: rejected.append((b, e)))  # fmt: skip
    runner.start()
    acked: list[int] = []
    body = b'reading,sensor=a value=2 2\nreading,sensor=a value="text" 3\nreading,sensor=b value=5 5'
    runner.submit_lines(body, 3, on_durable=lambda: acked.append(1))
    runner.stop()
    rows = influx_query(influx_v1_url, db, "SELECT value FROM reading")
    assert sorted(r["value"] for r in rows) == [1.0, 2.0, 5.0]
    assert acked == [1]  # the batch is settled: nothing to retry
    [(kept, exc)] = rejected
    assert kept == b"" and exc.dropped == 1 and "wrote 2 of 3 points" in str(exc)
    assert reg.get_sample_value("riskwatch_storage_points_written_total") == 2
