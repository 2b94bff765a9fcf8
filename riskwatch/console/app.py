"""The operator web console's routes: a live alert board, sensor charts, overview and
search (FastAPI). :class:`~riskwatch.console.server.ConsoleServer` serves them on
``console.listen``.

The page is plain HTML/CSS/JS shipped in ``riskwatch/console/static`` (no build step, no
CDN). Open alerts reach the browser by server-sent events (``/api/events``): a snapshot
on connect, then every stored change (the alert sink's transition listener, through
:class:`~riskwatch.console.hub.Hub`), filtered by the user's enterprise scope. Log-in is
by user name and password (``riskwatch users``; sessions in
:mod:`riskwatch.console.auth`, wrong passwords throttled per client and per user). Every
route but the page shell, its static files and ``/api/login`` needs a session; the
event stream re-checks it before every push (:mod:`riskwatch.console.hub`). Anything of
an enterprise out of the user's scope answers as an unknown id (404, same body).

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
GET/POST    /api/silences                          site silences (viewer / engineer)
POST        /api/reload                            reload rules, detectors, catalogue (engineer
                                                   who sees every enterprise: a reload is global)
GET         /api/sensors/{ent}/{site}/{sensor}     recent series, thresholds, alerts (viewer);
                                                   ``sensor`` may hold ``/`` (sent as ``%2F``)
GET         /api/overview                          per site: worst level, counts, health
==========  =====================================  =========================================
"""

# no ``from __future__ import annotations``: FastAPI reads the endpoint annotations
import asyncio
import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from riskwatch.alerts.api import add_lifecycle_error_handlers, alert_out, transition_out
from riskwatch.alerts.state import Alert
from riskwatch.catalog import SensorRegistry
from riskwatch.clock import Clock
from riskwatch.config.alerts import LEVEL_NAMES
from riskwatch.console.auth import COOKIE, Session, Sessions, me
from riskwatch.console.export import ALERT_COLUMNS, HISTORY_COLUMNS, csv_response
from riskwatch.console.hub import Hub
from riskwatch.console.sources import AlertBoard, StoredSeries
from riskwatch.console.users import User
from riskwatch.console.window import SeriesWindow

__all__ = ["CONSOLE_CSP", "create_app", "gateway_offline"]

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
LEVEL_RANK = {n: i for i, n in enumerate(LEVEL_NAMES)}  # red 0 ... blue 3
#: the page is its own static JS and CSS (no inline script or style, no CDN); charts are
#: inline SVG; nothing may frame it
CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


class LoginIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1000)


class AckIn(BaseModel):
    note: str | None = Field(default=None, max_length=2000)


class ShelveIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)
    duration_s: float = Field(gt=0, le=7 * 24 * 3600, allow_inf_nan=False)


class CloseIn(BaseModel):
    note: str = Field(min_length=1, max_length=4000)


class SilenceIn(BaseModel):
    enterprise: str = Field(min_length=1, max_length=200)
    site: str | None = Field(default=None, max_length=200)
    rule: str | None = Field(default=None, max_length=200)
    duration_s: float = Field(gt=0, le=7 * 24 * 3600, allow_inf_nan=False)
    reason: str = Field(min_length=1, max_length=2000)


def gateway_offline(rule: str, group: str | None, active: bool) -> bool:
    """An open, active no-data alert grouped per gateway (``enterprise/site/gateway``, from a
    rule named like ``*gateway*``, e.g. the coal pack's ``coal_gateway_silent``).

    >>> gateway_offline("coal_gateway_silent", "mine1/w1/GW1", True)
    True
    >>> gateway_offline("feed_anomaly_face", "mine1/w1/CH4-T1", True)
    False
    """
    return active and "gateway" in rule and group is not None and group.count("/") == 2


def create_app(
    *,
    sink: AlertBoard,
    registry: SensorRegistry,
    sessions: Sessions,
    hub: Hub,
    window: SeriesWindow,
    stored: StoredSeries | None,
    request_reload: Callable[[], None],
    clock: Clock,
    stopping: threading.Event,
    secure_cookies: bool = False,
    recheck_s: float = 5.0,
) -> FastAPI:
    """The console's routes over the alert sink, the registry, the reading window and,
    when the readings are stored where they can be read back, the stored series.
    ``secure_cookies``: served over TLS (the session cookie is ``Secure``);
    ``recheck_s``: how often an idle event stream re-checks its session."""
    app = FastAPI(title="riskwatch console", docs_url=None, redoc_url=None, openapi_url=None)

    def current(request: Request) -> User:
        u, s = sessions.user_of(request.cookies.get(COOKIE))
        request.state.session = s
        return u

    Who = Annotated[User, Depends(current)]

    def acting(request: Request, u: Who) -> User:
        sessions.check_csrf(request.state.session, request.headers.get("x-csrf-token", ""))
        sessions.require(u, "operator", "operators act on alerts")
        return u

    Actor = Annotated[User, Depends(acting)]

    def engineering(u: Actor) -> User:
        sessions.require(u, "engineer", "engineers do this")
        return u

    Engineer = Annotated[User, Depends(engineering)]

    def visible(u: User, alert_id: str) -> Alert:
        a = sink.get(alert_id)
        if not u.sees(a.enterprise):
            # the same answer as for an unknown id: scope does not leak existence
            raise HTTPException(404, f"no alert with id {alert_id!r}")
        return a

    add_lifecycle_error_handlers(app)

    @app.exception_handler(ValueError)
    async def _bad(_: Request, exc: ValueError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    # ------------------------------------------------------------------ pages
    index = HERE / "static" / "index.html"

    def page() -> FileResponse:
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    for path in ("/", "/board", "/overview", "/search", "/login", "/alert/{alert_id}",
                 "/sensor/{ent}/{site}/{sensor:path}"):  # fmt: skip
        app.add_api_route(path, page, methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.mount("/i18n", StaticFiles(directory=HERE / "i18n"), name="i18n")

    # ------------------------------------------------------------------ session
    @app.post("/api/login")
    def login(body: LoginIn, request: Request, response: Response) -> dict[str, Any]:
        client = request.client.host if request.client else ""
        sid, s, u = sessions.login(body.name, body.password, client)
        secure = secure_cookies or request.url.scheme == "https"
        response.set_cookie(COOKIE, sid, max_age=int(sessions.ttl_s), httponly=True,
                            samesite="strict", path="/", secure=secure)  # fmt: skip
        return me(u, s)

    @app.post("/api/logout")
    def logout(request: Request, response: Response) -> dict[str, str]:
        sid = request.cookies.get(COOKIE, "")
        sessions.logout(sid)
        hub.end_session(sid)  # its live streams end now, not at their next push
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                               secure=secure_cookies or request.url.scheme == "https")  # fmt: skip
        return {"status": "logged out"}

    @app.get("/api/me")
    def whoami(request: Request, u: Who) -> dict[str, Any]:
        session: Session = request.state.session
        return me(u, session)

    # ------------------------------------------------------------------ live board
    @app.get("/api/events")
    async def events(request: Request, u: Who) -> StreamingResponse:
        sid = request.cookies.get(COOKIE, "")
        cid, q = hub.join(sid, u, lambda: sessions.current(sid))
        snap = [alert_out(a) for a in sink.open_alerts() if u.sees(a.enterprise)]

        async def gen() -> Any:
            try:
                yield "retry: 2000\n"
                yield f"event: snapshot\ndata: {json.dumps(snap)}\n\n"
                while not stopping.is_set():
                    try:
                        items = await asyncio.wait_for(q.get(), recheck_s)
                    except TimeoutError:
                        if sessions.current(sid) != u:  # removed or changed, no push needed
                            return
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
            qp.get("open") in ("1", "true"), _limit(i("limit")),
        )  # fmt: skip

    def _limit(n: int | None) -> int:
        if n is not None and n < 1:
            raise HTTPException(422, f"limit: must be >= 1, got {n}")
        return min(n or 500, 1000)

    @app.get("/api/alerts")
    def list_alerts(request: Request, u: Who) -> dict[str, Any]:
        items = _q(request, u)
        return {"total": len(items), "items": items}

    @app.get("/api/alerts.csv")
    def list_csv(request: Request, u: Who) -> Response:
        return csv_response(_q(request, u), ALERT_COLUMNS, "alerts.csv")

    @app.get("/api/alerts/{alert_id}")
    def show(alert_id: str, u: Who) -> dict[str, Any]:
        a = visible(u, alert_id)
        return {**alert_out(a), "history": [transition_out(t) for t in
                                            sink.store.transitions(a.id)]}  # fmt: skip

    @app.get("/api/alerts/{alert_id}/history.csv")
    def history_csv(alert_id: str, u: Who) -> Response:
        a = visible(u, alert_id)
        rows = [transition_out(t) for t in sink.store.transitions(a.id)]
        return csv_response(rows, HISTORY_COLUMNS, f"alert-{a.id}.csv")

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
        now = clock.now_ns()
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
        now = clock.now_ns()
        s = sink.add_silence(m, u.name, body.reason, now + int(body.duration_s * 1e9))
        return s.as_json(now)

    @app.post("/api/reload", status_code=202)
    def reload(u: Engineer) -> dict[str, str]:
        if u.scope() is not None:  # a reload applies the files of every enterprise
            raise HTTPException(
                403, f"user {u.name!r} is scoped to some enterprises: only an engineer who "
                "sees every enterprise may reload (a reload is global)",
            )  # fmt: skip
        request_reload()
        log.info("console: %s asked for a rules reload", u.name)
        return {"status": "reload requested"}

    # ------------------------------------------------------------------ sensor view
    @app.get("/api/sensors/{ent}/{site}/{sensor:path}")
    def sensor_view(
        ent: str, site: str, sensor: str, u: Who,
        minutes: Annotated[float, Query(gt=0, le=31 * 24 * 60, allow_inf_nan=False)] = 60,
    ) -> dict:  # fmt: skip
        if not u.sees(ent):
            raise HTTPException(404, f"no sensor {ent}/{site}/{sensor}")
        sid = registry.id_of(f"{ent}/{site}/{sensor}")
        if sid is None:
            raise HTTPException(404, f"no sensor {ent}/{site}/{sensor}")
        meta = registry.meta(sid)
        now = clock.now_ns()
        since = now - int(minutes * 60e9)
        t, v = window.series(sid, since_ns=since)
        source = "memory"
        from_store = stored.series(ent, site, sensor, since) if stored is not None else None
        if from_store is not None:  # InfluxDB, then the window's readings not yet written there
            st, sv = from_store
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
