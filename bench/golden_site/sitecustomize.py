"""Records every alert transition written to an alert store, for ``bench/golden.py
compare-tests``: on ``PYTHONPATH`` with ``RW_GOLDEN_DIR`` set, every Python process
(pytest and the engines its tests start) appends the transitions it stores to
``$RW_GOLDEN_DIR/<pid>.jsonl``, each tagged with the test running (``PYTEST_CURRENT_TEST``).
"""

from __future__ import annotations

import os

if os.environ.get("RW_GOLDEN_DIR"):
    import json
    import threading

    _dir = os.environ["RW_GOLDEN_DIR"]
    _lock = threading.Lock()

    def _install() -> None:
        try:
            from riskwatch.alerts import store
        except Exception:
            return
        orig = store.AlertStore.write_rows

        def write_rows(self, new, changed, transitions, deliveries):  # type: ignore[no-untyped-def]
            orig(self, new, changed, transitions, deliveries)
            keys = getattr(self, "_golden_keys", None)
            if keys is None:
                keys = self._golden_keys = {}
            for row in list(new) + list(changed):
                keys[row[0]] = row[1]
            test = os.environ.get("PYTEST_CURRENT_TEST", "")
            recs = []
            for t in transitions:
                key = keys.get(t.alert_id)
                if key is None:
                    got = self.get(t.alert_id) if hasattr(self, "get") else None
                    key = getattr(got, "key", None)
                recs.append(json.dumps({
                    "test": test, "key": key, "action": str(t.action),
                    "from": None if t.from_state is None else str(t.from_state),
                    "to": str(t.to_state), "level": t.level,
                    "muted": str(t.muted or "").split(":")[0],
                }))
            if recs:
                with _lock, open(os.path.join(_dir, f"{os.getpid()}.jsonl"), "a") as f:
                    f.write("\n".join(recs) + "\n")

        store.AlertStore.write_rows = write_rows

    _install()
