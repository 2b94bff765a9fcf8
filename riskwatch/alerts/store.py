"""Durable alert store: every alert, every transition, the notification outbox and the
silences, through SQLAlchemy Core, so one code path serves SQLite (default, WAL mode,
``synchronous=FULL``) and PostgreSQL (``postgresql://`` URLs, for sites that run several
engine instances on one database).

Why an outbox: a transition and the notifications it causes are written in the same
transaction, *before* anything is sent. A notifier marks its row delivered after sending;
on restart the sink re-queues exactly the rows not yet delivered, so a crash neither
loses a notification nor re-sends one that went out (up to the few rows sent in the
instant between send and mark; each message carries ``event`` so consumers can drop
those).

>>> import tempfile, os
>>> st = AlertStore(os.path.join(tempfile.mkdtemp(), "a.sqlite"))
>>> st.dialect, st.journal_mode()
('sqlite', 'wal')
>>> st.load_open()
[]
>>> st.close()
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from riskwatch.alerts.state import Alert, AlertState, Transition
from riskwatch.errors import AlertStoreError

__all__ = ["AlertStore", "Delivery", "Silence", "alert_row"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One notification waiting in the outbox for one notifier."""

    id: str
    alert_id: str
    notifier: str
    payload: bytes
    enterprise: str
    site: str
    created_ns: int


@dataclass(frozen=True, slots=True)
class Silence:
    """Mute notifications of alerts matching ``matchers`` between ``starts_ns`` and
    ``ends_ns``; transitions are still recorded."""

    id: str
    matchers: dict[str, list[str]]
    starts_ns: int
    ends_ns: int
    author: str
    reason: str
    created_ns: int

    def active(self, now_ns: int) -> bool:
        return self.starts_ns <= now_ns < self.ends_ns

    def as_json(self, now_ns: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "matchers": self.matchers,
            "starts": self.starts_ns // 1_000_000,
            "ends": self.ends_ns // 1_000_000,
            "author": self.author,
            "reason": self.reason,
            "created": self.created_ns // 1_000_000,
            "active": self.active(now_ns),
            "expired": now_ns >= self.ends_ns,
        }


_ALERT_COLS = (  # noqa: SIM905
    "id key rule enterprise site sensor grp kind source state active acked level max_level "
    "value threshold message since_ns ts_ns updated_ns fired_ns acked_ns acked_by tier "
    "last_notified_ns shelved_until_ns reason flapping undelivered closed_ns note seq extra"
).split()


_TRANSITION_COLS = (
    "id", "alert_id", "seq", "at_ns", "ts_ns", "who", "action", "from_state", "to_state",
    "level", "value", "note", "muted", "reason",
)  # fmt: skip
_OUTBOX_COLS = ("id", "alert_id", "notifier", "payload", "enterprise", "site", "created_ns",
                "status")  # fmt: skip


def _tables(md: sa.MetaData, p: str) -> dict[str, sa.Table]:
    S, B, I, F, T, Bo = sa.String, sa.BigInteger, sa.Integer, sa.Float, sa.Text, sa.Boolean  # noqa: E741
    alerts = sa.Table(
        f"{p}alerts", md,
        sa.Column("id", S(40), primary_key=True), sa.Column("key", T, nullable=False),
        sa.Column("rule", T), sa.Column("enterprise", T), sa.Column("site", T),
        sa.Column("sensor", T), sa.Column("grp", T), sa.Column("kind", T), sa.Column("source", T),
        sa.Column("state", S(20), nullable=False), sa.Column("active", Bo), sa.Column("acked", Bo),
        sa.Column("level", I), sa.Column("max_level", I), sa.Column("value", F),
        sa.Column("threshold", F), sa.Column("message", T), sa.Column("since_ns", B),
        sa.Column("ts_ns", B), sa.Column("updated_ns", B), sa.Column("fired_ns", B),
        sa.Column("acked_ns", B), sa.Column("acked_by", T), sa.Column("tier", I),
        sa.Column("last_notified_ns", B), sa.Column("shelved_until_ns", B),
        sa.Column("reason", T), sa.Column("flapping", Bo), sa.Column("undelivered", Bo),
        sa.Column("closed_ns", B), sa.Column("note", T), sa.Column("seq", I),
        sa.Column("extra", T), sa.Column("owner", T),
        sa.Index(f"{p}alerts_state", "state"), sa.Index(f"{p}alerts_ent", "enterprise", "site"),
    )  # fmt: skip
    transitions = sa.Table(
        f"{p}transitions", md,
        sa.Column("n", B().with_variant(I, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("id", S(64), nullable=False, unique=True),
        sa.Column("alert_id", S(40), nullable=False), sa.Column("seq", I),
        sa.Column("at_ns", B), sa.Column("ts_ns", B), sa.Column("who", T),
        sa.Column("action", S(32)), sa.Column("from_state", S(20)), sa.Column("to_state", S(20)),
        sa.Column("level", I), sa.Column("value", F), sa.Column("note", T), sa.Column("muted", T),
        sa.Column("reason", S(32)),
        sa.Index(f"{p}transitions_alert", "alert_id", "seq"),
    )  # fmt: skip
    outbox = sa.Table(
        f"{p}outbox", md,
        sa.Column("n", B().with_variant(I, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("id", S(128), nullable=False, unique=True),
        sa.Column("alert_id", S(40), nullable=False), sa.Column("notifier", S(64)),
        sa.Column("payload", sa.LargeBinary), sa.Column("enterprise", T), sa.Column("site", T),
        sa.Column("created_ns", B), sa.Column("status", S(12)), sa.Column("done_ns", B),
        sa.Column("error", T), sa.Column("owner", T),
        sa.Index(f"{p}outbox_pending", "notifier", "status", "n"),
    )  # fmt: skip
    silences = sa.Table(
        f"{p}silences", md,
        sa.Column("id", S(40), primary_key=True), sa.Column("matchers", T),
        sa.Column("starts_ns", B), sa.Column("ends_ns", B), sa.Column("author", T),
        sa.Column("reason", T), sa.Column("created_ns", B),
    )  # fmt: skip
    return {"alerts": alerts, "transitions": transitions, "outbox": outbox, "silences": silences}


def _url(target: str) -> str:
    if "://" in target:
        if target.startswith("postgresql://") or target.startswith("postgres://"):
            return "postgresql+psycopg://" + target.split("://", 1)[1]
        return target
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite+pysqlite:///{target}"


class AlertStore:
    """SQLite file path or ``postgresql://`` URL. ``prefix`` names the tables (tests use a
    unique one per test on the shared PostgreSQL). Thread-safe: one lock serialises writes.
    """

    def __init__(self, target: str | Path, *, prefix: str = "rw_", owner: str = "") -> None:
        self.target = str(target)
        # the engine instance whose open alerts and undelivered notifications these are;
        # several instances share one PostgreSQL database, each restoring only its own
        self.owner = owner
        url = _url(self.target)
        self.lock = threading.RLock()
        try:
            if url.startswith("sqlite"):
                self.engine = sa.create_engine(
                    url, connect_args={"check_same_thread": False, "timeout": 30}
                )
                sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            else:
                self.engine = sa.create_engine(url, pool_pre_ping=True, pool_size=4)
            self.md = sa.MetaData()
            self.t = _tables(self.md, prefix)
            self.md.create_all(self.engine)
            self._add_missing_columns()
        except SQLAlchemyError as exc:
            raise AlertStoreError(f"alert store {self.where()}: cannot open: {exc}") from exc
        self.dialect = self.engine.dialect.name
        self._sql = self._prepare_sql()

    def _prepare_sql(self) -> dict[str, str]:
        d = self.engine.dialect
        q = d.identifier_preparer.quote
        ph = "?" if d.paramstyle == "qmark" else "%s"

        def insert(table: str, cols: Sequence[str]) -> str:
            return (
                f"INSERT INTO {q(self.t[table].name)} ({', '.join(q(c) for c in cols)}) "
                f"VALUES ({', '.join([ph] * len(cols))})"
            )

        sets = ", ".join(f"{q(c)} = {ph}" for c in _ALERT_COLS[1:])
        return {
            "alert_insert": insert("alerts", (*_ALERT_COLS, "owner")),
            "alert_update": f"UPDATE {q(self.t['alerts'].name)} SET {sets} WHERE {q('id')} = {ph}",
            "transition_insert": insert("transitions", _TRANSITION_COLS),
            "outbox_insert": insert("outbox", (*_OUTBOX_COLS, "owner")),
        }

    def _add_missing_columns(self) -> None:
        """Upgrade a store written by an older riskwatch: add columns it lacks.

        New columns are always nullable, so ``ALTER TABLE ... ADD COLUMN`` is enough; rows
        without an ``owner`` are adopted by this instance (a single engine upgrading).
        """
        insp = sa.inspect(self.engine)
        q = self.engine.dialect.identifier_preparer.quote
        with self.engine.begin() as c:
            for tb in self.md.sorted_tables:
                have = {col["name"] for col in insp.get_columns(tb.name)}
                for col in tb.columns:
                    if col.name in have:
                        continue
                    ctype = col.type.compile(dialect=self.engine.dialect)
                    c.exec_driver_sql(f"ALTER TABLE {q(tb.name)} ADD COLUMN {q(col.name)} {ctype}")
                    _log.warning(
                        "alert store %s: added column %s.%s", self.where(), tb.name, col.name
                    )
                    if col.name == "owner":
                        c.execute(
                            sa.update(tb).where(tb.c.owner.is_(None)).values(owner=self.owner)
                        )

    def where(self) -> str:
        """The database for messages (a URL without its credentials)."""
        return self.target.split("@")[-1] if "://" in self.target else self.target

    def close(self) -> None:
        self.engine.dispose()

    def journal_mode(self) -> str:
        with self.engine.connect() as c:
            return str(c.exec_driver_sql("PRAGMA journal_mode").scalar())

    # ------------------------------------------------------------------ writes
    def write(
        self,
        new: Sequence[Alert],
        changed: Sequence[Alert],
        transitions: Sequence[Transition],
        deliveries: Sequence[Delivery],
    ) -> None:
        """Everything one batch of signals or one operator action changed, in one transaction."""
        self.write_rows(
            [alert_row(a) for a in new], [alert_row(a) for a in changed], transitions,
            deliveries,
        )  # fmt: skip

    def write_rows(
        self,
        new: Sequence[tuple[Any, ...]],
        changed: Sequence[tuple[Any, ...]],
        transitions: Sequence[Transition],
        deliveries: Sequence[Delivery],
    ) -> None:
        """:meth:`write` with the alert rows already snapshotted (``alert_row``)."""
        if not (new or changed or transitions or deliveries):
            return
        # plain DBAPI executemany with prepared SQL text: SQLAlchemy's per-row parameter
        # processing cost more than the database itself at hundreds of transitions per batch
        sql = self._sql
        try:
            with self.lock, self.engine.begin() as c:
                if new:
                    c.exec_driver_sql(sql["alert_insert"], [(*r, self.owner) for r in new])
                if changed:
                    c.exec_driver_sql(sql["alert_update"], [(*r[1:], r[0]) for r in changed])
                if transitions:
                    c.exec_driver_sql(
                        sql["transition_insert"],
                        [
                            (x.id, x.alert_id, x.seq, x.at_ns, x.ts_ns, x.who, x.action,
                             x.from_state, x.to_state, x.level, _finite(x.value), x.note, x.muted,
                             x.reason or None)
                            for x in transitions
                        ],
                    )  # fmt: skip
                if deliveries:
                    c.exec_driver_sql(
                        sql["outbox_insert"],
                        [
                            (d.id, d.alert_id, d.notifier, d.payload, d.enterprise, d.site,
                             d.created_ns, "pending", self.owner)
                            for d in deliveries
                        ],
                    )  # fmt: skip
        except SQLAlchemyError as exc:
            raise AlertStoreError(f"alert store {self.where()}: write failed: {exc}") from exc

    def mark(self, ids: Iterable[str], status: str, at_ns: int, error: str | None = None) -> None:
        """Mark outbox rows ``delivered`` or ``failed`` (given up)."""
        ids = list(ids)
        if not ids:
            return
        ob = self.t["outbox"]
        try:
            with self.lock, self.engine.connect() as c:
                if self.dialect == "sqlite":
                    # losing a mark to a power cut only means one repeat (same ``event`` id),
                    # so marks skip the fsync that transitions pay for
                    c.exec_driver_sql("PRAGMA synchronous=NORMAL")
                    c.commit()
                try:
                    with c.begin():
                        for i in range(0, len(ids), 500):
                            c.execute(
                                ob.update()
                                .where(ob.c.id.in_(ids[i : i + 500]))
                                .values(status=status, done_ns=at_ns, error=error)
                            )
                finally:
                    if self.dialect == "sqlite":
                        c.exec_driver_sql("PRAGMA synchronous=FULL")
                        c.commit()
        except SQLAlchemyError as exc:
            raise AlertStoreError(f"alert store {self.where()}: marking deliveries: {exc}") from exc

    def purge_closed(self, before_ns: int) -> int:
        """Delete alerts closed before ``before_ns`` with their transitions and outbox rows."""
        t = self.t
        with self.lock, self.engine.begin() as c:
            ids = [
                r[0]
                for r in c.execute(
                    sa.select(t["alerts"].c.id).where(
                        t["alerts"].c.state == AlertState.CLOSED.value,
                        t["alerts"].c.closed_ns < before_ns,
                    )
                )
            ]
            for i in range(0, len(ids), 500):
                part = ids[i : i + 500]
                c.execute(t["transitions"].delete().where(t["transitions"].c.alert_id.in_(part)))
                c.execute(t["outbox"].delete().where(t["outbox"].c.alert_id.in_(part)))
                c.execute(t["alerts"].delete().where(t["alerts"].c.id.in_(part)))
        return len(ids)

    # ------------------------------------------------------------------ reads
    def load_open(self) -> list[Alert]:
        tb = self.t["alerts"]
        with self.engine.connect() as c:
            rows = c.execute(
                sa.select(tb).where(tb.c.state != AlertState.CLOSED.value, tb.c.owner == self.owner)
            )
            return [_row_alert(r._mapping) for r in rows]

    def owner_of(self, alert_id: str) -> str | None:
        tb = self.t["alerts"]
        with self.engine.connect() as c:
            return c.execute(sa.select(tb.c.owner).where(tb.c.id == alert_id)).scalar()

    def get(self, alert_id: str) -> Alert | None:
        tb = self.t["alerts"]
        with self.engine.connect() as c:
            r = c.execute(sa.select(tb).where(tb.c.id == alert_id)).first()
        return _row_alert(r._mapping) if r is not None else None

    def query(
        self,
        *,
        enterprises: Sequence[str] | None = None,
        states: Sequence[str] | None = None,
        site: str | None = None,
        rule: str | None = None,
        sensor: str | None = None,
        levels: Sequence[int] | None = None,
        open_only: bool = False,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[int, list[Alert]]:
        """Filtered alerts, most severe first, then newest first; with the total count."""
        tb = self.t["alerts"]
        conds: list[Any] = []
        if enterprises is not None:
            conds.append(tb.c.enterprise.in_(list(enterprises)))
        if states:
            conds.append(tb.c.state.in_(list(states)))
        if open_only:
            conds.append(tb.c.state != AlertState.CLOSED.value)
        if site:
            conds.append(tb.c.site == site)
        if rule:
            conds.append(tb.c.rule == rule)
        if sensor:
            conds.append(tb.c.sensor == sensor)
        if levels:
            conds.append(tb.c.level.in_(list(levels)))
        sel = sa.select(tb).where(*conds)
        order = [sa.func.coalesce(tb.c.level, 9), tb.c.since_ns.desc(), tb.c.id]
        with self.engine.connect() as c:
            n = c.execute(sa.select(sa.func.count()).select_from(sel.subquery())).scalar()
            total = int(n or 0)
            rows = c.execute(sel.order_by(*order).limit(limit).offset(offset))
            return total, [_row_alert(r._mapping) for r in rows]

    def transitions(self, alert_id: str) -> list[Transition]:
        tt = self.t["transitions"]
        with self.engine.connect() as c:
            rows = c.execute(sa.select(tt).where(tt.c.alert_id == alert_id).order_by(tt.c.seq))
            return [
                Transition(
                    id=r.id, alert_id=r.alert_id, seq=r.seq, at_ns=r.at_ns, ts_ns=r.ts_ns,
                    who=r.who, action=r.action, from_state=r.from_state, to_state=r.to_state,
                    level=r.level, value=r.value if r.value is not None else float("nan"),
                    note=r.note, muted=r.muted or "", reason=r.reason or "",
                )
                for r in rows
            ]  # fmt: skip

    def pending(self, notifier: str | None = None, limit: int = 10_000) -> list[Delivery]:
        """Undelivered outbox rows, oldest first."""
        ob = self.t["outbox"]
        conds = [ob.c.status == "pending", ob.c.owner == self.owner]
        if notifier is not None:
            conds.append(ob.c.notifier == notifier)
        with self.lock, self.engine.connect() as c:
            rows = c.execute(sa.select(ob).where(*conds).order_by(ob.c.n).limit(limit))
            return [
                Delivery(r.id, r.alert_id, r.notifier, bytes(r.payload), r.enterprise or "",
                         r.site or "", r.created_ns)
                for r in rows
            ]  # fmt: skip

    def delivery_counts(self) -> dict[tuple[str, str], int]:
        """(notifier, status) -> rows, for health and tests."""
        ob = self.t["outbox"]
        with self.engine.connect() as c:
            rows = c.execute(
                sa.select(ob.c.notifier, ob.c.status, sa.func.count()).group_by(
                    ob.c.notifier, ob.c.status
                )
            )
            return {(r[0], r[1]): int(r[2]) for r in rows}

    def delivered_payloads(self, notifier: str) -> list[bytes]:
        ob = self.t["outbox"]
        with self.engine.connect() as c:
            rows = c.execute(
                sa.select(ob.c.payload)
                .where(ob.c.notifier == notifier, ob.c.status == "delivered")
                .order_by(ob.c.n)
            )
            return [bytes(r[0]) for r in rows]

    # ------------------------------------------------------------------ silences
    def add_silence(self, s: Silence) -> None:
        with self.lock, self.engine.begin() as c:
            c.execute(
                self.t["silences"].insert(),
                {
                    "id": s.id, "matchers": json.dumps(s.matchers), "starts_ns": s.starts_ns,
                    "ends_ns": s.ends_ns, "author": s.author, "reason": s.reason,
                    "created_ns": s.created_ns,
                },
            )  # fmt: skip

    def expire_silence(self, silence_id: str, at_ns: int) -> None:
        ts = self.t["silences"]
        with self.lock, self.engine.begin() as c:
            c.execute(
                ts.update().where(ts.c.id == silence_id, ts.c.ends_ns > at_ns).values(ends_ns=at_ns)
            )

    def silences(self, since_ns: int = 0) -> list[Silence]:
        """Silences that end after ``since_ns`` (0: all)."""
        ts = self.t["silences"]
        with self.engine.connect() as c:
            rows = c.execute(sa.select(ts).where(ts.c.ends_ns > since_ns).order_by(ts.c.created_ns))
            return [
                Silence(r.id, json.loads(r.matchers), r.starts_ns, r.ends_ns, r.author or "",
                        r.reason or "", r.created_ns)
                for r in rows
            ]  # fmt: skip


def _sqlite_pragmas(dbapi_conn: Any, _rec: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _finite(v: float) -> float | None:
    return v if v == v and v not in (float("inf"), float("-inf")) else None


def alert_row(a: Alert) -> tuple[Any, ...]:
    """The alert's columns in ``_ALERT_COLS`` order (what :meth:`AlertStore.write_rows`
    takes: a snapshot, so the alert may move on while the row waits for its write)."""
    return (
        a.id, a.key, a.rule, a.enterprise, a.site, a.sensor, a.group, a.kind, a.source,
        a.state.value, a.active, a.acked, a.level, a.max_level, _finite(a.value),
        _finite(a.threshold), a.message, a.since_ns, a.ts_ns, a.updated_ns, a.fired_ns,
        a.acked_ns, a.acked_by, a.tier, a.last_notified_ns, a.shelved_until_ns, a.reason,
        a.flapping, a.undelivered, a.closed_ns, a.note, a.seq,
        json.dumps({"flap_times": a.flap_times or []}),
    )  # fmt: skip


def _row_alert(r: Any) -> Alert:
    nan = float("nan")
    extra = json.loads(r["extra"] or "{}")
    return Alert(
        id=r["id"], key=r["key"], rule=r["rule"], enterprise=r["enterprise"] or "",
        site=r["site"] or "", sensor=r["sensor"] or "", group=r["grp"], kind=r["kind"] or "",
        source=r["source"] or "rule", state=AlertState(r["state"]), active=bool(r["active"]),
        acked=bool(r["acked"]), level=r["level"], max_level=r["max_level"],
        value=r["value"] if r["value"] is not None else nan,
        threshold=r["threshold"] if r["threshold"] is not None else nan,
        message=r["message"] or "", since_ns=r["since_ns"], ts_ns=r["ts_ns"],
        updated_ns=r["updated_ns"], fired_ns=r["fired_ns"], acked_ns=r["acked_ns"],
        acked_by=r["acked_by"], tier=r["tier"] or 0, last_notified_ns=r["last_notified_ns"],
        shelved_until_ns=r["shelved_until_ns"], reason=r["reason"],
        flapping=bool(r["flapping"]), flap_times=list(extra.get("flap_times", [])),
        undelivered=bool(r["undelivered"]), closed_ns=r["closed_ns"], note=r["note"],
        seq=r["seq"] or 0,
    )  # fmt: skip
