from __future__ import annotations

from pathlib import Path

import pytest

from riskwatch.errors import SpoolFullError
from riskwatch.storage.spool import Spool


def test_bounded(tmp_path: Path) -> None:
    sp = Spool(tmp_path, max_bytes=20)
    sp.append(b"x" * 15, 1)
    with pytest.raises(SpoolFullError, match="limit 20"):
        sp.append(b"y" * 10, 1)
    assert sp.bytes == 15


def test_order_and_points_survive_reopen(tmp_path: Path) -> None:
    sp = Spool(tmp_path, 10**6)
    for i in range(12):
        sp.append(f"m v={i} {i}".encode(), i)
    (tmp_path / "junk.tmp").write_bytes(b"partial")
    sp2 = Spool(tmp_path, 10**6)
    segs = sp2.segments()
    assert [Spool.points(s) for s in segs] == list(range(12))
    assert sp2.read(segs[-1]) == b"m v=11 11"
    assert not (tmp_path / "junk.tmp").exists()
    sp2.append(b"m v=12 12", 1)
    assert sp2.read(sp2.segments()[-1]) == b"m v=12 12"
