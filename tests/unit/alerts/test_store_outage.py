"""The store refuses writes (its outbox table is gone): transitions stay in memory, nothing
is notified before it is stored, and everything goes out in order once the store is back."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from riskwatch.errors import AlertStoreError
from tests.unit.alerts.helpers import Rig


def test_nothing_notified_before_stored_then_catch_up(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    r.sig("firing", sensor=0)
    db = sqlite3.connect(tmp_path / "alerts.sqlite")
    db.execute("ALTER TABLE rw_outbox RENAME TO rw_outbox_away")
    db.commit()
    r.sink.handle([], r.ctx())  # nothing queued: no write
    from riskwatch.model import Level, Signal

    for sensor in (1, 2):
        s = Signal("ch4", sensor, r.clock.now_ns(), "firing", Level.RED, 2.0, 1.5, "high")
        r.sink.handle([s], r.ctx())
    assert not r.sink.flush()  # the writer keeps failing: kept in memory
    assert len(r.pub.alerts()) == 1  # only what was stored before the outage
    a = next(x for x in r.sink.open_alerts() if x.sensor == "CO-01")
    with pytest.raises(AlertStoreError, match="not writable"):
        r.sink.ack(a.id, "li")
    db.execute("ALTER TABLE rw_outbox_away RENAME TO rw_outbox")
    db.commit()
    db.close()
    assert r.sink.flush()
    assert r.sink.wait_idle()
    got = [(m["sensor"], m["action"]) for m in r.pub.alerts()]
    assert got == [("CH4-01", "firing"), ("CH4-02", "firing"), ("CO-01", "firing"),
                   ("CO-01", "ack")]  # fmt: skip
    assert [t.action for t in r.sink.store.transitions(a.id)] == ["firing", "ack"]
    r.sink.stop()


def test_an_alert_opened_and_closed_while_queued_is_stored_as_it_ended(tmp_path: Path) -> None:
    """Several queued groups merge into one write: an alert opened in the first and closed
    in a later one is inserted once, closed, with every transition in order."""
    r = Rig(tmp_path)
    db = sqlite3.connect(tmp_path / "alerts.sqlite")
    db.execute("ALTER TABLE rw_outbox RENAME TO rw_outbox_away")
    db.commit()
    r.sig_nowait("pending", sensor=0)
    r.clock.advance(5)
    r.sig_nowait("resolved", sensor=0)
    r.sig_nowait("firing", sensor=1)
    r.clock.advance(5)
    r.sig_nowait("resolved", sensor=1)
    assert not r.sink.flush()
    db.execute("ALTER TABLE rw_outbox_away RENAME TO rw_outbox")
    db.commit()
    db.close()
    assert r.sink.flush()
    assert r.sink.wait_idle()
    total, rows = r.sink.store.query()
    assert total == 2
    got = {a.sensor: (a.state.value, a.active, a.seq) for a in rows}
    assert got == {"CH4-01": ("closed", False, 2), "CH4-02": ("resolved", False, 2)}
    closed = next(a for a in rows if a.sensor == "CH4-01")
    assert [t.action for t in r.sink.store.transitions(closed.id)] == ["pending", "resolved"]
    assert [(m["sensor"], m["action"]) for m in r.pub.alerts()] == [
        ("CH4-01", "pending"),
        ("CH4-01", "resolved"),
        ("CH4-02", "firing"),
        ("CH4-02", "resolved"),
    ]
    r.sink.stop()
