"""A store written by an older riskwatch (without the ``owner`` columns) opens and works."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from riskwatch.alerts.store import AlertStore


def test_older_store_gets_missing_columns(tmp_path: Path) -> None:
    db = tmp_path / "alerts.sqlite"
    AlertStore(db, owner="a").close()
    con = sqlite3.connect(db)
    for table in ("rw_alerts", "rw_outbox"):
        cols = [r[1] for r in con.execute(f"PRAGMA table_info({table})") if r[1] != "owner"]
        con.execute(f"CREATE TABLE old AS SELECT {', '.join(cols)} FROM {table}")
        con.execute(f"DROP TABLE {table}")
        con.execute(f"ALTER TABLE old RENAME TO {table}")
    con.commit()
    assert "owner" not in [r[1] for r in con.execute("PRAGMA table_info(rw_alerts)")]
    con.close()
    store = AlertStore(db, owner="engine-1")
    assert store.load_open() == []
    con = sqlite3.connect(db)
    assert "owner" in [r[1] for r in con.execute("PRAGMA table_info(rw_alerts)")]
    assert "owner" in [r[1] for r in con.execute("PRAGMA table_info(rw_outbox)")]
    con.close()
    store.close()
