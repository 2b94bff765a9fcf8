"""The operator web console: a live alert board, sensor charts, overview and search, served
by the engine on ``console.listen`` (FastAPI + uvicorn in a daemon thread).

The page is plain HTML/CSS/JS shipped in ``riskwatch/console/static`` (no build step, no
CDN). Open alerts reach the browser by server-sent events (``/api/events``): a snapshot
on connect, then every stored change (the alert sink's transition listener), filtered by the
user's enterprise scope. Log-in is by user name and password (``riskwatch users``); the
session is an HttpOnly SameSite=Strict cookie that expires after ``console.session_ttl_s``;
every POST needs the session's CSRF token in the ``X-CSRF-Token`` header.

==========  =====================================  =========================================
method      path                                   what (role needed)
==========  =====================================  =========================================
POST        /api/login, /api/logout                session cookie
GET         /api/me                                user, role, scope, CSRF token (viewer)
GET         /api/events                            SSE: open alerts, then changes (viewer)
GET         /api/alerts[.csv]                      search: enterprise, site, kind, level,
                                                   state, rule, sensor, since, until (viewer)
GET         /api/alerts/{id}[/history.csv]         one alert with history (viewer)
POST        /api/alerts/{id}/ack|shelve|close      operator actions (operator)
GET         /api/sensors/{ent}/{site}/{sensor}     recent series, thresholds, alerts (viewer)
GET         /api/overview                          per site: worst level, counts, health
==========  =====================================  =========================================
"""

# no ``from __future__ import annotations``: FastAPI reads the endpoint annotations
import asyncio
import csv
import io
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from riskwatch.alerts.api import add_lifecycle_error_handlers, alert_out, transition_out
from riskwatch.alerts.state import Alert
from riskwatch.config.alerts import LEVEL_NAMES
from riskwatch.config.engine import ConsoleConfig
from riskwatch.console.users import ROLES, User, UserStore
from riskwatch.console.window import SeriesWindow
from riskwatch.webserver import ThreadedServer

__all__ = ["ConsoleServer", "create_app"]

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
COOKIE = "rw_session"
LEVEL_RANK = {n: i for i, n in enumerate(LEVEL_NAMES)}  # red 0 ... blue 3


@dataclass
class Session:
    user: str
    csrf: str
    expires: float


class LoginIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1000)


class AckIn(BaseModel):
    note: str | None = Field(default=None, max_length=2000)


class ShelveIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)
    duration_s: float = Field(gt=0, le=7 * 24 * 3600)


class CloseIn(BaseModel):
    note: str = Field(min_length=1, max_length=4000)


class SilenceIn(BaseModel):
    enterprise: str = Field(min_length=1, max_length=200)
    site: str | None = Field(default=None, max_length=200)
    rule: str | None = Field(default=None, max_length=200)
    duration_s: float = Field(gt=0, le=7 * 24 * 3600)
    reason: str = Field(min_length=1, max_length=2000)


class Hub:
    """Fan-out of alert changes to the SSE connections (called from the sink's writer
    thread; each connection has an asyncio queue on the server's loop)."""

    def __init__(self) -> None:
        self._clients: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Queue[Any], User]] = {}
        self._lock = threading.Lock()
        self._n = 0

    def join(self, user: User) -> tuple[int, asyncio.Queue[Any]]:
        q: asyncio.Queue[Any] = asyncio.Queue()
        with self._lock:
            self._n += 1
            self._clients[self._n] = (asyncio.get_running_loop(), q, user)
            return self._n, q

    def leave(self, cid: int) -> None:
        with self._lock:
            self._clients.pop(cid, None)

    def close_all(self) -> None:
        with self._lock:
            for loop, q, _ in self._clients.values():
                loop.call_soon_threadsafe(q.put_nowait, None)

    def publish(self, pairs: list[tuple[Alert, Any]]) -> None:
        last: dict[str, Alert] = {}
        for a, _ in pairs:
            last[a.id] = a  # the newest snapshot of each alert in this batch
        if not last:
            return
        outs = [(a.enterprise, alert_out(a)) for a in last.values()]
        with self._lock:
            clients = list(self._clients.values())
        for loop, q, user in clients:
            items = [o for ent, o in outs if user.sees(ent)]
            if items:
                try:
                    loop.call_soon_threadsafe(q.put_nowait, items)
                except RuntimeError:  # loop closed
                    pass


def gateway_offline(rule: str, group: str | None, active: bool) -> bool:
    """An open, active no-data alert grouped per gateway (``enterprise/site/gateway``, from a
    rule named like ``*gateway*``, e.g. the coal pack's ``coal_gateway_silent``).

    >>> gateway_offline("coal_gateway_silent", "mine1/w1/GW1", True)
    True
    >>> gateway_offline("feed_anomaly_face", "mine1/w1/CH4-T1", True)
    False
    """
    return active and "gateway" in rule and group is not None and group.count("/") == 2


def _csv(rows: list[dict[str, Any]], cols: list[str], name: str) -> Response:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: _csv_cell(k, r.get(k)) for k in cols})
    return Response(
        "\ufeff" + buf.getvalue(),  # BOM: Excel opens Chinese text as UTF-8
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _csv_cell(k: str, v: Any) -> Any:
    if v is not None and k in {"since", "ts", "updated", "acked_at", "closed", "at"}:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(v / 1000))
    return "" if v is None else v


ALERT_COLS = ["id", "level", "state", "enterprise", "site", "sensor", "kind", "rule", "value",
              "threshold", "since", "ts", "acked_by", "acked_at", "reason", "closed", "note",
              "message"]  # fmt: skip
HIST_COLS = ["seq", "at", "ts", "who", "action", "from_state", "to_state", "level", "value",
             "note"]  # fmt: skip


def create_app(server: "ConsoleServer") -> FastAPI:
    """The console over one engine (its alert sink, registry and the reading window)."""
    sink, users, hub = server.sink, server.users, server.hub
    sessions: dict[str, Session] = {}
    ttl = server.cfg.session_ttl_s
    app = FastAPI(title="riskwatch console", docs_url=None, redoc_url=None, openapi_url=None)

    def current(request: Request) -> User:
        sid = request.cookies.get(COOKIE)
        s = sessions.get(sid or "")
        if s is None or s.expires < time.time():
            sessions.pop(sid or "", None)
            raise HTTPException(401, "not logged in (or the session expired)")
        u = users.get(s.user)
        if u is None:
            raise HTTPException(401, f"user {s.user!r} no longer exists")
        request.state.session = s
        return u

    Who = Annotated[User, Depends(current)]

    def acting(request: Request, u: Who) -> User:
        s: Session = request.state.session
        if not secrets.compare_digest(request.headers.get("x-csrf-token", ""), s.csrf):
            raise HTTPException(403, "missing or wrong CSRF token (X-CSRF-Token header)")
        if u.level < ROLES["operator"]:
            raise HTTPException(403, f"user {u.name!r} is a {u.role}: operators act on alerts")
        return u

    Actor = Annotated[User, Depends(acting)]

    def engineering(u: Actor) -> User:
        if u.level < ROLES["engineer"]:
            raise HTTPException(403, f"user {u.name!r} is a {u.role}: engineers do this")
        return u

    Engineer = Annotated[User, Depends(engineering)]

    def visible(u: User, alert_id: str) -> Alert:
        a = sink.get(alert_id)
        if not u.sees(a.enterprise):
            # the same answer as for an unknown id: scope does not leak existence
            raise HTTPException(404, f"no alert with id {alert_id!r}")
        return a

    add_lifecycle_error_handlers(app)

    # ------------------------------------------------------------------ pages
    index = HERE / "static" / "index.html"

    def page() -> FileResponse:
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    for path in ("/", "/board", "/overview", "/search", "/login", "/alert/{alert_id}",
                 "/sensor/{ent}/{site}/{sensor}"):  # fmt: skip
        app.add_api_route(path, page, methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.mount("/i18n", StaticFiles(directory=HERE / "i18n"), name="i18n")

    # ------------------------------------------------------------------ session
    failures: dict[str, list[float]] = {}

    @app.post("/api/login")
    def login(body: LoginIn, response: Response) -> dict[str, Any]:
        now = time.time()
        recent = [x for x in failures.get(body.name, []) if x > now - 300]
        if len(recent) >= 5:  # 5 wrong passwords in 5 min: that name waits
            raise HTTPException(429, "too many wrong passwords; try again in a few minutes")
        u = users.check(body.name, body.password)
        if u is None:
            failures[body.name] = [*recent, now]
            raise HTTPException(401, "wrong user name or password")
        failures.pop(body.name, None)
        now = time.time()
        for k in [k for k, s in sessions.items() if s.expires < now]:
            sessions.pop(k, None)
        sid = secrets.token_urlsafe(32)
        s = sessions[sid] = Session(u.name, secrets.token_urlsafe(24), now + ttl)
        response.set_cookie(COOKIE, sid, max_age=int(ttl), httponly=True, samesite="strict",
                            path="/")  # fmt: skip
        return _me(u, s)

    @app.post("/api/logout")
    def logout(request: Request, response: Response) -> dict[str, str]:
        sessions.pop(request.cookies.get(COOKIE, ""), None)
        response.delete_cookie(COOKIE, path="/")
        return {"status": "logged out"}

    def _me(u: User, s: Session) -> dict[str, Any]:
        return {"name": u.name, "role": u.role, "enterprises": list(u.enterprises),
                "csrf": s.csrf, "expires": int(s.expires * 1000),
                "can_act": u.level >= ROLES["operator"],
                "can_engineer": u.level >= ROLES["engineer"]}  # fmt: skip

    @app.get("/api/me")
    def me(request: Request, u: Who) -> dict[str, Any]:
        return _me(u, request.state.session)

    # ------------------------------------------------------------------ live board
    @app.get("/api/events")
    async def events(request: Request, u: Who) -> StreamingResponse:
        cid, q = hub.join(u)
        snap = [alert_out(a) for a in sink.open_alerts() if u.sees(a.enterprise)]

        async def gen() -> Any:
            try:
                yield "retry: 2000\n"
                yield f"event: snapshot\ndata: {json.dumps(snap)}\n\n"
                while not server.stopping.is_set():
                    try:
                        items = await asyncio.wait_for(q.get(), 15)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    if items is None:
                        return
                    yield f"event: update\ndata: {json.dumps(items)}\n\n"
            finally:
                hub.leave(cid)

        return StreamingResponse(
            gen(), media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )  # fmt: skip

    # ------------------------------------------------------------------ search
    def search(
        u: User, enterprise: str | None, site: str | None, kind: str | None,
        level: list[str], state: list[str], rule: str | None, sensor: str | None,
        since: int | None, until: int | None, open_only: bool, limit: int,
    ) -> list[dict[str, Any]]:  # fmt: skip
        if enterprise:
            if not u.sees(enterprise):
                return []
            ents: list[str] | None = [enterprise]
        else:
            ents = u.scope()
        bad = [x for x in level if x not in LEVEL_RANK]
        if bad:
            raise HTTPException(422, f"level: unknown {bad}; expected {', '.join(LEVEL_NAMES)}")
        _, rows = sink.store.query(
            enterprises=ents, states=state, site=site or None, rule=rule or None,
            sensor=sensor or None, levels=[LEVEL_RANK[x] + 1 for x in level],
            open_only=open_only, limit=1000,
        )  # fmt: skip
        live = sink.by_id
        out = []
        for a in rows:
            a = live.get(a.id, a)
            if kind and a.kind != kind:
                continue
            if since is not None and a.since_ns // 1_000_000 < since:
                continue
            if until is not None and a.since_ns // 1_000_000 > until:
                continue
            out.append(alert_out(a))
            if len(out) >= limit:
                break
        return out

    def _q(request: Request, u: User) -> list[dict[str, Any]]:
        qp = request.query_params

        def i(k: str) -> int | None:
            v = qp.get(k)
            try:
                return int(v) if v else None
            except ValueError:
                raise HTTPException(422, f"{k}: expected epoch milliseconds, got {v!r}") from None

        return search(
            u, qp.get("enterprise"), qp.get("site"), qp.get("kind"), qp.getlist("level"),
            qp.getlist("state"), qp.get("rule"), qp.get("sensor"), i("since"), i("until"),
            qp.get("open") in ("1", "true"), min(i("limit") or 500, 1000),
        )  # fmt: skip

    @app.get("/api/alerts")
    def list_alerts(request: Request, u: Who) -> dict[str, Any]:
        items = _q(request, u)
        return {"total": len(items), "items": items}

    @app.get("/api/alerts.csv")
    def list_csv(request: Request, u: Who) -> Response:
        return _csv(_q(request, u), ALERT_COLS, "alerts.csv")

    @app.get("/api/alerts/{alert_id}")
    def show(alert_id: str, u: Who) -> dict[str, Any]:
        a = visible(u, alert_id)
        return {**alert_out(a), "history": [transition_out(t) for t in
                                            sink.store.transitions(a.id)]}  # fmt: skip

    @app.get("/api/alerts/{alert_id}/history.csv")
    def history_csv(alert_id: str, u: Who) -> Response:
        a = visible(u, alert_id)
        rows = [transition_out(t) for t in sink.store.transitions(a.id)]
        return _csv(rows, HIST_COLS, f"alert-{a.id}.csv")

    # ------------------------------------------------------------------ actions
    @app.post("/api/alerts/{alert_id}/ack")
    def ack(alert_id: str, body: AckIn, u: Actor) -> dict[str, Any]:
        visible(u, alert_id)
        return alert_out(sink.ack(alert_id, u.name, body.note))

    @app.post("/api/alerts/{alert_id}/shelve")
    def shelve(alert_id: str, body: ShelveIn, u: Actor) -> dict[str, Any]:
        visible(u, alert_id)
        return alert_out(sink.shelve(alert_id, u.name, body.reason, body.duration_s))

    @app.post("/api/alerts/{alert_id}/unshelve")
    def unshelve(alert_id: str, body: AckIn, u: Actor) -> dict[str, Any]:
        visible(u, alert_id)
        return alert_out(sink.unshelve(alert_id, u.name, body.note))

    @app.post("/api/alerts/{alert_id}/close")
    def close(alert_id: str, body: CloseIn, u: Actor) -> dict[str, Any]:
        visible(u, alert_id)
        return alert_out(sink.close(alert_id, u.name, body.note))

    # ------------------------------------------------------------------ engineering
    @app.get("/api/silences")
    def silences(u: Who) -> list[dict[str, Any]]:
        now = sink.clock.now_ns()
        return [
            s.as_json(now) for s in sink.silences()
            if s.ends_ns > now and (ents := s.matchers.get("enterprise"))
            and all(u.sees(e) for e in ents)
        ]  # fmt: skip

    @app.post("/api/silences", status_code=201)
    def add_silence(body: SilenceIn, u: Engineer) -> dict[str, Any]:
        if not u.sees(body.enterprise):
            raise HTTPException(404, f"no enterprise {body.enterprise!r}")
        m = {"enterprise": [body.enterprise]}
        if body.site:
            m["site"] = [body.site]
        if body.rule:
            m["rule"] = [body.rule]
        now = sink.clock.now_ns()
        s = sink.add_silence(m, u.name, body.reason, now + int(body.duration_s * 1e9))
        return s.as_json(now)

    @app.post("/api/reload", status_code=202)
    def reload(u: Engineer) -> dict[str, str]:
        server.request_reload()
        log.info("console: %s asked for a rules reload", u.name)
        return {"status": "reload requested"}

    # ------------------------------------------------------------------ sensor view
    @app.get("/api/sensors/{ent}/{site}/{sensor}")
    def sensor_view(ent: str, site: str, sensor: str, u: Who, minutes: float = 60) -> dict:
        if not u.sees(ent):
            raise HTTPException(404, f"no sensor {ent}/{site}/{sensor}")
        reg = server.registry
        sid = reg.id_of(f"{ent}/{site}/{sensor}")
        if sid is None:
            raise HTTPException(404, f"no sensor {ent}/{site}/{sensor}")
        meta = reg.meta(sid)
        now = sink.clock.now_ns()
        since = now - int(minutes * 60e9)
        t, v = server.window.series(sid, since_ns=since)
        source = "memory"
        stored = server.influx_series(ent, site, sensor, since)
        if stored is not None:  # InfluxDB, then the window's readings not yet written there
            st, sv = stored
            newer = t > (st[-1] if len(st) else since - 1)
            t, v = np.concatenate([st, t[newer]]), np.concatenate([sv, v[newer]])
            source = "influx"
        _, rows = sink.store.query(enterprises=[ent], site=site, sensor=sensor, limit=50)
        alerts = [_with_span(alert_out(sink.by_id.get(a.id, a))) for a in rows]
        thresholds: dict[str, float] = {
            k: float(x) for k, x in meta.get("setpoints", {}).items() if x == x
        }
        for a in alerts:  # a rule's own threshold when the catalogue has no setpoint for it
            if a["threshold"] is not None and a["threshold"] not in thresholds.values():
                thresholds.setdefault(f"{a['rule']}", a["threshold"])
        return {
            "key": f"{ent}/{site}/{sensor}", "meta": {k: (None if isinstance(x, float) and x != x
                                                           else x) for k, x in meta.items()},
            "now": now // 1_000_000, "source": source, "t": (t // 1_000_000).tolist(),
            "v": [None if x != x else float(x) for x in v.tolist()],
            "thresholds": [{"name": k, "value": x} for k, x in sorted(thresholds.items())],
            "alerts": alerts,
        }  # fmt: skip

    def _with_span(a: dict[str, Any]) -> dict[str, Any]:
        """The alert's span in reading time: from the first transition's reading time to
        the reading that resolved it (None while the condition is present)."""
        hist = sink.store.transitions(a["id"])
        start = min((t.ts_ns for t in hist), default=a["since"] * 1_000_000) // 1_000_000
        end = None
        if not a["active"]:
            ends = [t.ts_ns for t in hist if t.action == "resolved"]
            end = (ends[-1] // 1_000_000) if ends else a["ts"]
        return {**a, "span": [start, end]}

    # ------------------------------------------------------------------ overview
    @app.get("/api/overview")
    def overview(u: Who) -> dict[str, Any]:
        sites: dict[str, dict[str, Any]] = {}
        for a in sink.open_alerts():
            if not u.sees(a.enterprise):
                continue
            s = sites.setdefault(f"{a.enterprise}/{a.site}", _site(a.enterprise, a.site))
            lv = alert_out(a)["level"]
            if lv:
                s["counts"][lv] += 1
                if s["worst"] is None or LEVEL_RANK[lv] < LEVEL_RANK[s["worst"]]:
                    s["worst"] = lv
            s["unacked"] += 0 if a.acked else 1
            if gateway_offline(a.rule, a.group, a.active):
                s["gateways_offline"] += 1
        health = sink.health_snapshot().get("sites", {})
        for key, h in health.items():
            ent, _, site = key.partition("/")
            if not u.sees(ent):
                continue
            s = sites.setdefault(key, _site(ent, site))
            s["health"] = {k: h.get(k) for k in ("alarms_10min", "flood", "chattering_count",
                                                   "stale_count")}  # fmt: skip
        return {"sites": sorted(sites.values(), key=lambda s: (s["enterprise"], s["site"]))}

    def _site(ent: str, site: str) -> dict[str, Any]:
        return {"enterprise": ent, "site": site, "worst": None, "unacked": 0,
                "counts": dict.fromkeys(LEVEL_NAMES, 0), "health": None,
                "gateways_offline": 0}  # fmt: skip

    return app


class ConsoleServer:
    """The console of one engine, served by uvicorn in a daemon thread on ``cfg.listen``."""

    def __init__(self, engine: Any, cfg: ConsoleConfig) -> None:
        assert cfg.listen
        self.cfg = cfg
        self.sink = engine.sink
        self.request_reload: Any = getattr(engine, "request_reload", lambda: None)
        self.registry = engine.registry
        self.users = UserStore(engine.cfg.path(cfg.users))
        self.window = SeriesWindow(cfg.window_readings)
        self.influx = engine.cfg.storage.influx  # chart history from here when configured
        self.hub = Hub()
        self.stopping = threading.Event()
        self.sink.add_listener(self.hub.publish)
        self.app = create_app(self)
        self._server = ThreadedServer(self.app, cfg.listen, name="console", graceful_s=2)
        self.url: str | None = None

    def influx_series(
        self, ent: str, site: str, sensor: str, since_ns: int, limit: int = 5000
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """One sensor's ``reading`` points from InfluxDB 1.x (ns times, values), or None when
        no InfluxDB 1.x is configured or it does not answer (the chart then uses the
        in-memory window and says so)."""
        ic = self.influx
        if ic is None or ic.api != "v1":
            return None
        import httpx

        def lit(x: str) -> str:
            return "'" + x.replace("\\", "\\\\").replace("'", "\\'") + "'"

        q = (
            f'SELECT "value" FROM "reading" WHERE "enterprise" = {lit(ent)} AND '
            f'"site" = {lit(site)} AND "sensor" = {lit(sensor)} AND time >= {since_ns} '
            f"ORDER BY time DESC LIMIT {limit}"
        )
        params = {"db": ic.database, "q": q, "epoch": "ns"}
        if ic.username:
            params |= {"u": ic.username, "p": ic.password() or ""}
        try:
            r = httpx.get(f"{ic.url.rstrip('/')}/query", params=params, timeout=ic.timeout_s,
                          verify=ic.verify_tls)  # fmt: skip
            r.raise_for_status()
            series = r.json()["results"][0].get("series") or []
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as exc:
            log.warning("console: InfluxDB query failed (%s); chart from memory", exc)
            return None
        vals = series[0]["values"][::-1] if series else []
        t = np.fromiter((row[0] for row in vals), dtype=np.int64, count=len(vals))
        v = np.array([np.nan if row[1] is None else row[1] for row in vals], dtype=np.float64)
        return t, v

    def start(self, timeout: float = 10.0) -> None:
        self.url = self._server.start(timeout)
        if not self.users.all():
            log.warning("console: no users in %s; add one with 'riskwatch users add'",
                        self.users.path)  # fmt: skip

    def stop(self) -> None:
        self.stopping.set()
        self.hub.close_all()
        self._server.stop()
