"""HTTP JSON API for operators and integrators (FastAPI; OpenAPI at ``/openapi.json``,
interactive docs at ``/docs``, both behind a token too).

Every call but the probe ``/healthz`` (which answers ``{"status": "ok"}`` or, with 503,
``{"status": "not ok"}``, and nothing else) needs ``Authorization: Bearer <token>``.
Tokens are named in ``alerts.api.tokens`` with their secret in an environment variable
or file, the enterprises they may see (``["*"]`` for all) and a role: ``read`` (list, show, health),
``operate`` (also acknowledge, shelve, out-of-service, close, silences) or ``admin``.
A scoped token sees nothing of other enterprises: an alert or silence out of its scope
answers exactly as an unknown id does (404, same body), lists and the health answer
hold only its enterprises. Errors are JSON ``{"detail": "..."}``: 401 no or unknown
token, 403 role missing, 404 unknown (or out-of-scope) id, 409 a move the state machine
refuses (the text says why), 422 bad input (which field, what was wrong), 503 store
unavailable. Every answer carries the browser security headers
(:class:`riskwatch.webserver.SecurityHeaders`).

==========  =======================================  ==========================================
method      path                                     what
==========  =======================================  ==========================================
GET         /api/v1/alerts                           list/filter (state, enterprise, site, rule,
                                                     sensor, level, open, limit, offset)
GET         /api/v1/alerts/{id}                      one alert with its transition history
POST        /api/v1/alerts/{id}/ack                  acknowledge (optional note, by)
POST        /api/v1/alerts/{id}/shelve               hide for duration_s with a reason
POST        /api/v1/alerts/{id}/unshelve
POST        /api/v1/alerts/{id}/out-of-service       sensor under maintenance (reason)
POST        /api/v1/alerts/{id}/return-to-service
POST        /api/v1/alerts/{id}/close                close a resolved alert with a note
GET/POST    /api/v1/silences                         list / create (matchers, duration, reason)
DELETE      /api/v1/silences/{id}                    expire now
GET         /api/v1/health                           alarm-system health (ISA-18.2 / EEMUA 191)
GET         /healthz                                 probe, no token: ok / not ok, nothing else
GET         /openapi.json, /docs                     the API's description (token)
==========  =======================================  ==========================================
"""

# no ``from __future__ import annotations`` here: FastAPI resolves the endpoint
# annotations (``Annotated[..., Depends(...)]`` defined inside create_app) at run time
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from riskwatch.alerts.service import AlertService
from riskwatch.alerts.state import Alert, AlertState, IllegalTransition, Transition
from riskwatch.alerts.store import Silence
from riskwatch.config.alerts import LEVEL_NAMES, AlertsApiConfig, ApiToken
from riskwatch.errors import AlertNotFound, AlertStoreError, NotOwned
from riskwatch.model import Level
from riskwatch.webserver import SecurityHeaders, ThreadedServer

__all__ = ["API_CSP", "DOCS_CSP", "ApiServer", "Principal", "create_app", "scoped_health"]

log = logging.getLogger(__name__)
ROLES = {"read": 0, "operate": 1, "admin": 2}
#: JSON answers load nothing; the Swagger page (``/docs``) loads FastAPI's Swagger UI
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_CSP = (
    "default-src 'none'; script-src https://cdn.jsdelivr.net 'unsafe-inline'; "
    "style-src https://cdn.jsdelivr.net; img-src https://fastapi.tiangolo.com data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)


# ---------------------------------------------------------------------- schemas
class AlertOut(BaseModel):
    """An alert. Times are epoch milliseconds; ``level`` is the current colour."""

    id: str
    rule: str
    state: AlertState
    level: str | None
    max_level: str | None = Field(description="most severe level reached")
    active: bool = Field(description="the process condition is present")
    acked: bool
    enterprise: str
    site: str
    sensor: str
    group: str | None
    kind: str
    value: float | None
    threshold: float | None
    message: str
    since: int = Field(description="when the alert opened (epoch ms)")
    ts: int = Field(description="reading time of the last transition (epoch ms)")
    updated: int
    acked_at: int | None
    acked_by: str | None
    tier: int = Field(description="escalation tier reached while unacknowledged")
    shelved_until: int | None
    reason: str | None = Field(description="shelve or out-of-service reason")
    flapping: bool
    closed: int | None
    note: str | None = Field(description="disposition note when closed")


class TransitionOut(BaseModel):
    seq: int
    at: int
    ts: int
    who: str
    action: str
    from_state: str | None
    to_state: str
    level: str | None
    value: float | None
    note: str | None
    muted: str = Field(description="why no notification went out, or empty")
    reason: str = Field(
        default="",
        description="why a resolved transition ended the alert without a reading "
        "(rule_removed, unwatched), or empty",
    )


class AlertDetail(AlertOut):
    history: list[TransitionOut]


class AlertList(BaseModel):
    total: int
    items: list[AlertOut]


class AckIn(BaseModel):
    note: str | None = Field(default=None, max_length=2000)
    by: str | None = Field(default=None, max_length=200, description="operator at the console")


class ShelveIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)
    duration_s: float = Field(gt=0, allow_inf_nan=False, description="how long to hide it")
    by: str | None = Field(default=None, max_length=200)


class OutOfServiceIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)
    duration_s: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    by: str | None = Field(default=None, max_length=200)


class NoteIn(BaseModel):
    note: str | None = Field(default=None, max_length=2000)
    by: str | None = Field(default=None, max_length=200)


class CloseIn(BaseModel):
    note: str = Field(min_length=1, max_length=4000, description="what was done")
    by: str | None = Field(default=None, max_length=200)


class SilenceIn(BaseModel):
    matchers: dict[str, list[str]] = Field(
        description="label -> accepted values; '~' starts a regular expression",
        examples=[{"enterprise": ["mine1"], "site": ["face1"], "rule": ["~ch4_.*"]}],
    )
    duration_s: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    ends: int | None = Field(default=None, description="epoch ms (instead of duration_s)")
    starts: int | None = Field(default=None, description="epoch ms; default now")
    reason: str = Field(min_length=1, max_length=2000)
    author: str | None = Field(default=None, max_length=200)


class SilenceOut(BaseModel):
    id: str
    matchers: dict[str, list[str]]
    starts: int
    ends: int
    author: str
    reason: str
    created: int
    active: bool
    expired: bool


# ---------------------------------------------------------------------- conversion
def _ms(ns: int | None) -> int | None:
    return ns // 1_000_000 if ns is not None else None


def _colour(level: int | None) -> str | None:
    return Level(level).colour if level else None


def _num(v: float) -> float | None:
    return v if v == v and abs(v) != float("inf") else None


def add_lifecycle_error_handlers(app: FastAPI) -> None:
    """HTTP answers for the alert lifecycle's errors, shared by the alert API and the
    console: an illegal transition or an alert owned by someone else is 409, an unknown
    alert 404, an unreachable alert store 503 (the operator can retry)."""

    def answer(status: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
        async def handler(_: Request, exc: Exception) -> JSONResponse:
            return JSONResponse({"detail": str(exc)}, status_code=status)

        return handler

    answers: list[tuple[type[Exception], int]] = [
        (IllegalTransition, 409), (NotOwned, 409), (AlertNotFound, 404), (AlertStoreError, 503),
    ]  # fmt: skip
    for exc_type, status in answers:
        app.add_exception_handler(exc_type, answer(status))


def alert_out(a: Alert) -> dict[str, Any]:
    return {
        "id": a.id, "rule": a.rule, "state": a.state, "level": _colour(a.level),
        "max_level": _colour(a.max_level), "active": a.active, "acked": a.acked,
        "enterprise": a.enterprise, "site": a.site, "sensor": a.sensor, "group": a.group,
        "kind": a.kind, "value": _num(a.value), "threshold": _num(a.threshold),
        "message": a.message, "since": _ms(a.since_ns), "ts": _ms(a.ts_ns),
        "updated": _ms(a.updated_ns), "acked_at": _ms(a.acked_ns), "acked_by": a.acked_by,
        "tier": a.tier, "shelved_until": _ms(a.shelved_until_ns), "reason": a.reason,
        "flapping": a.flapping, "closed": _ms(a.closed_ns), "note": a.note,
    }  # fmt: skip


def transition_out(t: Transition) -> dict[str, Any]:
    return {
        "seq": t.seq, "at": _ms(t.at_ns), "ts": _ms(t.ts_ns), "who": t.who, "action": t.action,
        "from_state": t.from_state, "to_state": t.to_state, "level": _colour(t.level),
        "value": _num(t.value), "note": t.note, "muted": t.muted, "reason": t.reason,
    }  # fmt: skip


# ---------------------------------------------------------------------- auth
@dataclass(frozen=True)
class Principal:
    name: str
    enterprises: frozenset[str] | None  # None: all
    role: int

    def sees(self, enterprise: str) -> bool:
        return self.enterprises is None or enterprise in self.enterprises


def _load_tokens(tokens: list[ApiToken]) -> list[tuple[bytes, Principal]]:
    out = []
    for t in tokens:
        secret = t.token()
        if not secret:
            continue
        ents = None if "*" in t.enterprises else frozenset(t.enterprises)
        out.append((secret.encode(), Principal(t.name, ents, ROLES[t.role])))
    return out


def scoped_health(
    snap: dict[str, Any], enterprises: frozenset[str] | None, open_alerts: list[Alert]
) -> dict[str, Any]:
    """The health answer one scope may see. Unscoped (``None``): everything. Scoped: only
    the sites of its enterprises (their counts, top-10 keys and stale ids are of those
    sites only) and its own open count; the per-console groups (defined over labels, they
    may span enterprises) and the notifier queues (shared by all) are left out.

    >>> snap = {"sites": {"a/s1": {"alarms_10min": 3}, "b/s1": {"alarms_10min": 9}},
    ...         "consoles": {"north": {}}, "notifiers": {"hook": {}}, "open_alerts": 12}
    >>> from types import SimpleNamespace as A
    >>> scoped_health(snap, frozenset({"a"}), [A(enterprise="a"), A(enterprise="b")])
    {'sites': {'a/s1': {'alarms_10min': 3}}, 'open_alerts': 1}
    """
    if enterprises is None:
        return snap
    return {
        "sites": {k: v for k, v in snap.get("sites", {}).items()
                  if k.partition("/")[0] in enterprises},
        "open_alerts": sum(1 for a in open_alerts if a.enterprise in enterprises),
    }  # fmt: skip


def create_app(sink: AlertService, cfg: AlertsApiConfig) -> FastAPI:
    """The API over one alert sink (anything with the :class:`AlertService` surface).
    Token secrets are read once, here."""
    tokens = _load_tokens(cfg.tokens)
    app = FastAPI(
        title="riskwatch alerts",
        version="1",
        description=(__doc__ or "").split("\n\n")[0] + " See docs/alerts.md.",
        docs_url=None, redoc_url=None, openapi_url=None,  # served below, behind a token
    )  # fmt: skip
    bearer = HTTPBearer(auto_error=False)

    def principal(
        cred: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        if cred is None or cred.scheme.lower() != "bearer":
            raise HTTPException(401, "missing bearer token", {"WWW-Authenticate": "Bearer"})
        given = cred.credentials.encode()
        found = None
        for secret, p in tokens:  # every secret compared: the time says nothing of which
            if hmac.compare_digest(secret, given):
                found = p
        if found is None:
            raise HTTPException(401, "unknown token", {"WWW-Authenticate": "Bearer"})
        return found

    Who = Annotated[Principal, Depends(principal)]

    def need(p: Principal, role: str) -> None:
        if p.role < ROLES[role]:
            raise HTTPException(403, f"token {p.name!r} has no {role!r} rights")

    def visible(p: Principal, alert_id: str) -> Alert:
        a = sink.get(alert_id)  # AlertNotFound: 404 "no alert with id ..."
        if not p.sees(a.enterprise):
            # the very answer an unknown id gets: scope does not leak existence
            raise AlertNotFound(f"no alert with id {alert_id!r}")
        return a

    def who(p: Principal, by: str | None) -> str:
        return f"{by} (token {p.name})" if by else p.name

    add_lifecycle_error_handlers(app)

    @app.exception_handler(ValueError)
    async def _bad(_: Request, exc: ValueError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.get("/healthz", tags=["meta"])
    def healthz() -> JSONResponse:
        """The probe for a supervisor or load balancer: no token, and nothing but ``ok``
        (200: the API answers and the engine's MQTT connection, which its notifiers
        publish on, is up) or ``not ok`` (503)."""
        ok = all(n.ready() for n in sink.mqtt_notifiers())
        return JSONResponse({"status": "ok" if ok else "not ok"}, status_code=200 if ok else 503)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(_: Who) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    def docs(_: Who) -> HTMLResponse:
        # the spec inline: the page's own fetch of /openapi.json would carry no token
        return get_swagger_ui_html(openapi_url="/openapi.json", title="riskwatch alerts",
                                   swagger_ui_parameters={"spec": app.openapi()})  # fmt: skip

    @app.get("/api/v1/alerts", response_model=AlertList, tags=["alerts"])
    def list_alerts(
        p: Who,
        state: Annotated[list[AlertState] | None, Query(description="repeatable")] = None,
        enterprise: str | None = None,
        site: str | None = None,
        rule: str | None = None,
        sensor: str | None = None,
        level: Annotated[list[Literal["red", "orange", "yellow", "blue"]] | None, Query()] = None,
        open: Annotated[bool, Query(description="only alerts not closed")] = False,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> dict[str, Any]:
        if enterprise is not None:
            if not p.sees(enterprise):  # as for an enterprise with no alerts
                return {"total": 0, "items": []}
            ents: list[str] | None = [enterprise]
        else:
            ents = None if p.enterprises is None else sorted(p.enterprises)
        total, rows = sink.store.query(
            enterprises=ents, states=[s.value for s in state or []], site=site, rule=rule,
            sensor=sensor, levels=[LEVEL_NAMES.index(x) + 1 for x in level or []],
            open_only=open, limit=limit, offset=offset,
        )  # fmt: skip
        return {"total": total, "items": [alert_out(a) for a in sink.live(rows)]}

    @app.get("/api/v1/alerts/{alert_id}", response_model=AlertDetail, tags=["alerts"])
    def show(alert_id: str, p: Who) -> dict[str, Any]:
        a = visible(p, alert_id)
        return {
            **alert_out(a),
            "history": [transition_out(t) for t in sink.store.transitions(a.id)],
        }

    @app.post("/api/v1/alerts/{alert_id}/ack", response_model=AlertOut, tags=["operator"])
    def ack(alert_id: str, body: AckIn, p: Who) -> dict[str, Any]:
        need(p, "operate")
        visible(p, alert_id)
        return alert_out(sink.ack(alert_id, who(p, body.by), body.note))

    @app.post("/api/v1/alerts/{alert_id}/shelve", response_model=AlertOut, tags=["operator"])
    def shelve(alert_id: str, body: ShelveIn, p: Who) -> dict[str, Any]:
        need(p, "operate")
        visible(p, alert_id)
        return alert_out(sink.shelve(alert_id, who(p, body.by), body.reason, body.duration_s))

    @app.post("/api/v1/alerts/{alert_id}/unshelve", response_model=AlertOut, tags=["operator"])
    def unshelve(alert_id: str, body: NoteIn, p: Who) -> dict[str, Any]:
        need(p, "operate")
        visible(p, alert_id)
        return alert_out(sink.unshelve(alert_id, who(p, body.by), body.note))

    @app.post("/api/v1/alerts/{alert_id}/out-of-service", response_model=AlertOut,
              tags=["operator"])  # fmt: skip
    def oos(alert_id: str, body: OutOfServiceIn, p: Who) -> dict[str, Any]:
        need(p, "operate")
        visible(p, alert_id)
        return alert_out(
            sink.out_of_service(alert_id, who(p, body.by), body.reason, body.duration_s)
        )

    @app.post("/api/v1/alerts/{alert_id}/return-to-service", response_model=AlertOut,
              tags=["operator"])  # fmt: skip
    def rts(alert_id: str, body: NoteIn, p: Who) -> dict[str, Any]:
        need(p, "operate")
        visible(p, alert_id)
        return alert_out(sink.return_to_service(alert_id, who(p, body.by), body.note))

    @app.post("/api/v1/alerts/{alert_id}/close", response_model=AlertOut, tags=["operator"])
    def close(alert_id: str, body: CloseIn, p: Who) -> dict[str, Any]:
        need(p, "operate")
        visible(p, alert_id)
        return alert_out(sink.close(alert_id, who(p, body.by), body.note))

    def silence_visible(p: Principal, s: Silence) -> bool:
        if p.enterprises is None:
            return True
        ents = s.matchers.get("enterprise", [])
        return bool(ents) and all(e in p.enterprises for e in ents)

    @app.get("/api/v1/silences", response_model=list[SilenceOut], tags=["silences"])
    def list_silences(p: Who, expired: bool = False) -> list[dict[str, Any]]:
        now = sink.clock.now_ns()
        return [
            s.as_json(now)
            for s in sink.silences()
            if silence_visible(p, s) and (expired or s.ends_ns > now)
        ]

    @app.post("/api/v1/silences", response_model=SilenceOut, status_code=201, tags=["silences"])
    def add_silence(body: SilenceIn, p: Who) -> dict[str, Any]:
        need(p, "operate")
        if p.enterprises is not None:
            ents = body.matchers.get("enterprise", [])
            if not ents or any(e.startswith("~") or not p.sees(e) for e in ents):
                raise HTTPException(
                    403,
                    f"token {p.name!r} may only silence its enterprises: give matchers."
                    f"enterprise from {sorted(p.enterprises)}",
                )
        now = sink.clock.now_ns()
        starts = body.starts * 1_000_000 if body.starts is not None else None
        if (body.duration_s is None) == (body.ends is None):
            raise HTTPException(422, "give exactly one of duration_s or ends")
        if body.ends is not None:
            ends = body.ends * 1_000_000
        else:
            assert body.duration_s is not None
            ends = (starts or now) + int(body.duration_s * 1e9)
        s = sink.add_silence(body.matchers, body.author or p.name, body.reason, ends, starts)
        return s.as_json(now)

    @app.delete("/api/v1/silences/{silence_id}", response_model=SilenceOut, tags=["silences"])
    def expire_silence(silence_id: str, p: Who) -> dict[str, Any]:
        need(p, "operate")
        hit = next((s for s in sink.silences() if s.id == silence_id), None)
        if hit is None or not silence_visible(p, hit):  # out of scope: as if unknown
            raise HTTPException(404, f"no silence with id {silence_id!r}")
        return sink.expire_silence(silence_id).as_json(sink.clock.now_ns())

    @app.get("/api/v1/health", tags=["health"])
    def health(p: Who) -> dict[str, Any]:
        """Alarm-system health per site and console: alarms per 10 min (flood > 10),
        chattering, stale (> 24 h), time-to-acknowledge percentiles, top-10 alarms. A
        scoped token gets its enterprises' sites and open count only."""
        snap = sink.health_snapshot()
        return scoped_health(snap, p.enterprises, sink.open_alerts() if p.enterprises else [])

    return app


class ApiServer:
    """Serve the API with uvicorn in a daemon thread on ``cfg.listen`` (``host:port``;
    port 0 picks a free one, see :attr:`url`), over HTTPS when ``tls`` gives the
    certificate and key files (``cfg.tls`` resolved against the config file)."""

    def __init__(
        self, sink: AlertService, cfg: AlertsApiConfig, tls: tuple[Path, Path] | None = None
    ) -> None:
        assert cfg.listen
        self.app = create_app(sink, cfg)
        cert, key = tls if tls is not None else (None, None)
        guarded = SecurityHeaders(self.app, csp=API_CSP, csp_for={"/docs": DOCS_CSP},
                                  hsts=tls is not None)  # fmt: skip
        self._server = ThreadedServer(guarded, cfg.listen, name="alerts-api", cert_file=cert,
                                      key_file=key)  # fmt: skip
        self.url: str | None = None

    def start(self, timeout: float = 10.0) -> None:
        self.url = self._server.start(timeout)
        log.info("alerts API at %s (OpenAPI at %s/openapi.json)", self.url, self.url)

    def stop(self) -> None:
        self._server.stop()
