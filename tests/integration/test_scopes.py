"""Identities and scopes on every path of a real engine (``riskwatch run`` over the real
Mosquitto), probed with httpx as an attacker would: every route of the alert API and of
the console is listed here with what it must answer, so a new route without a scope
check fails this test until someone decides what it shows.

- without a token or session every route but the documented public ones answers 401;
- with a token or user scoped to entA, an entB alert, silence, sensor or enterprise
  answers exactly as an unknown one does (status and body), lists and summaries hold
  nothing of entB (no counts, no keys, no ids), and nothing changes in entB;
- the webhook's secret (its URL's query string) shows in no answer and no log line;
- every answer carries the security headers;
- the console's event stream ends at logout, when the user is removed and when their
  scope changes, without pushing what the old session would have seen;
- bad query values answer 4xx, never 500; alert ids are random.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.routing import Mount

from riskwatch.alerts.api import API_CSP, DOCS_CSP
from riskwatch.alerts.api import create_app as api_app
from riskwatch.alerts.service import AlertService
from riskwatch.cli import main as cli_main
from riskwatch.config.alerts import AlertsApiConfig
from riskwatch.console.app import CONSOLE_CSP
from riskwatch.console.app import create_app as console_app
from riskwatch.console.users import UserStore
from tests.integration.spine_helpers import Publisher, now_ms, unique, wait_for

pytestmark = pytest.mark.integration

API_PORT, CONSOLE_PORT, HOOK_PORT = 25101, 25102, 25103
SECRET = "T16HOOKSECRET"  # in the webhook URL's query string, as DingTalk and WeCom do
TOKENS = {"T16_ADMIN": "t16-admin", "T16_A_OPS": "t16-a-ops", "T16_A_READ": "t16-a-read"}
PW = "pw-t16-scope"
UNKNOWN_ID = "0" * 32
RULES = """
rules:
  - name: ch4_now
    match: {kind: ch4}
    levels:
      - {level: orange, above: 1.0}
      - {level: red, above: 1.5}
"""
SENSORS = {"entA": ["CH4-A1", "CH4-A2", "CH4-A3"], "entB": ["CH4-B1", "CH4/B2"]}


@dataclass
class Eng:
    proc: subprocess.Popen[bytes]
    log: Path
    users: Path
    root: str
    pub: Publisher
    api: str = f"http://127.0.0.1:{API_PORT}"
    console: str = f"http://127.0.0.1:{CONSOLE_PORT}"
    ts: list[int] = field(default_factory=lambda: [0])

    def send(self, ent: str, sensor: str, value: float) -> None:
        self.ts[0] = max(now_ms(), self.ts[0] + 1)
        self.pub.send(f"{self.root}/{ent}/face1/GW-1",
                      {"sensor": sensor, "ts": self.ts[0], "value": value})  # fmt: skip

    def token(self, env: str) -> httpx.Client:
        return httpx.Client(base_url=self.api, timeout=10,
                            headers={"Authorization": f"Bearer {TOKENS[env]}"})  # fmt: skip

    def session(self, name: str) -> tuple[httpx.Client, str]:
        """A logged-in console client and its CSRF token."""
        c = httpx.Client(base_url=self.console, timeout=10)
        r = c.post("/api/login", json={"name": name, "password": PW})
        assert r.status_code == 200, r.text
        return c, r.json()["csrf"]

    def open_alert(self, ent: str, sensor: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = []

        def seen() -> bool:
            items = self.token("T16_ADMIN").get("/api/v1/alerts", params={
                "enterprise": ent, "sensor": sensor, "open": "true"}).json()["items"]  # fmt: skip
            found[:] = items
            return len(items) == 1

        wait_for(seen, timeout=20, what=f"an alert on {ent}/{sensor}")
        return found[0]


@pytest.fixture(scope="module")
def eng(tmp_path_factory: pytest.TempPathFactory, mqtt_addr: tuple[str, int]) -> Iterator[Eng]:
    tmp = tmp_path_factory.mktemp("t16scope")
    root = unique("t16scope")
    (tmp / "rules.yaml").write_text(RULES)
    rows = [f"{e},face1,{s},ch4,%,working_face,GW-1,3600,0,4" for e, ss in SENSORS.items()
            for s in ss]  # fmt: skip
    (tmp / "catalog.csv").write_text(
        "enterprise,site,sensor,kind,unit,location,gateway,period_s,range_low,range_high\n"
        + "\n".join(rows) + "\n"
    )  # fmt: skip
    users = UserStore(tmp / "users.json")
    for name, role, ents in (("admin", "admin", ["*"]), ("opA", "operator", ["entA"]),
                             ("engA", "engineer", ["entA"]), ("viewA", "viewer", ["entA"]),
                             ("opA2", "operator", ["entA"])):  # fmt: skip
        users.add(name, PW, role, ents)
    (tmp / "engine.yaml").write_text(
        f"mqtt: {{url: 'mqtt://127.0.0.1:{mqtt_addr[1]}', client_id: {root},"
        f" topics: ['{root}/#'], topic_template: '{root}/{{enterprise}}/{{site}}/{{gateway}}'}}\n"
        f"storage: {{influx: null, spool_dir: '{tmp}/spool'}}\n"
        f"ingest: {{batch_max_wait_ms: 50, deadletter: {{file: '{tmp}/dl.jsonl', topic: null}}}}\n"
        "metrics: {listen: null}\n"
        f"catalog: ['{tmp}/catalog.csv']\nrules: ['{tmp}/rules.yaml']\n"
        "alerts:\n"
        f"  store: '{tmp}/alerts.sqlite'\n"
        "  notify:\n"
        f"    - {{kind: mqtt, topic: '{root}-al/{{enterprise}}', summary_topic: null}}\n"
        f"    - {{kind: webhook, name: hook, url: 'http://127.0.0.1:{HOOK_PORT}/robot/send?"
        f"access_token={SECRET}', retry_initial_s: 0.2, retry_max_s: 0.5}}\n"
        f"  api:\n    listen: '127.0.0.1:{API_PORT}'\n    tokens:\n"
        "      - {name: admin, token_env: T16_ADMIN, role: admin}\n"
        "      - {name: a-ops, token_env: T16_A_OPS, enterprises: [entA]}\n"
        "      - {name: a-read, token_env: T16_A_READ, enterprises: [entA], role: read}\n"
        f"console: {{listen: '127.0.0.1:{CONSOLE_PORT}', users: '{tmp}/users.json'}}\n"
    )
    log = tmp / "engine.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "riskwatch.cli", "run", "-c", str(tmp / "engine.yaml")],
        stdout=subprocess.DEVNULL, stderr=open(log, "ab"), start_new_session=True,
        env={**os.environ, **TOKENS},
    )  # fmt: skip
    pub = Publisher(*mqtt_addr)
    e = Eng(proc, log, tmp / "users.json", root, pub)
    try:

        def up() -> bool:
            try:
                return httpx.get(f"{e.api}/healthz", timeout=2).json() == {"status": "ok"}
            except (httpx.HTTPError, ValueError):
                return False

        wait_for(up, timeout=30, what="engine API")
        wait_for(lambda: httpx.get(f"{e.console}/board", timeout=2).status_code == 200,
                 timeout=10, what="console")  # fmt: skip
        yield e
    finally:
        pub.close()
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def routes(app: Any) -> set[tuple[str, str]]:
    out = set()
    for r in app.routes:
        if isinstance(r, APIRoute):
            out |= {(m, r.path) for m in r.methods}
        elif isinstance(r, Mount):
            out.add(("MOUNT", r.path))
    return out


def headers_ok(r: httpx.Response, csp: str) -> None:
    h = r.headers
    where = f"{r.request.method} {r.request.url.path} -> {r.status_code}"
    assert h.get("content-security-policy") == csp, where
    assert h.get("x-content-type-options") == "nosniff", where
    assert h.get("x-frame-options") == "DENY", where
    assert h.get("referrer-policy") == "no-referrer", where


def leak_free(text: str, *secrets: str) -> None:
    for s in ("entB", "CH4-B1", "CH4/B2", SECRET, *secrets):
        assert s not in text, (s, text[:400])


# ------------------------------------------------------------------ the alert API
#: every route of the API: (method, path) -> (kind, JSON body). Kinds: "public" (no
#: token), "id" (an entB alert must answer as an unknown id), "silence" (an entB silence
#: likewise), "list" (nothing of entB in the answer), "refuse" (an entB write is refused).
API_ROUTES: dict[tuple[str, str], tuple[str, Any]] = {
    ("GET", "/healthz"): ("public", None),
    ("GET", "/openapi.json"): ("list", None),
    ("GET", "/docs"): ("list", None),
    ("GET", "/api/v1/alerts"): ("list", None),
    ("GET", "/api/v1/alerts/{alert_id}"): ("id", None),
    ("POST", "/api/v1/alerts/{alert_id}/ack"): ("id", {}),
    ("POST", "/api/v1/alerts/{alert_id}/shelve"): ("id", {"reason": "x", "duration_s": 60}),
    ("POST", "/api/v1/alerts/{alert_id}/unshelve"): ("id", {}),
    ("POST", "/api/v1/alerts/{alert_id}/out-of-service"): ("id", {"reason": "x"}),
    ("POST", "/api/v1/alerts/{alert_id}/return-to-service"): ("id", {}),
    ("POST", "/api/v1/alerts/{alert_id}/close"): ("id", {"note": "x"}),
    ("GET", "/api/v1/silences"): ("list", None),
    ("POST", "/api/v1/silences"): (
        "refuse",
        {"matchers": {"enterprise": ["entB"]}, "duration_s": 60, "reason": "x"},
    ),
    ("DELETE", "/api/v1/silences/{silence_id}"): ("silence", None),
    ("GET", "/api/v1/health"): ("list", None),
}


def test_every_api_route_holds_its_scope(eng: Eng) -> None:
    app = api_app(cast(AlertService, None), AlertsApiConfig())
    assert routes(app) == set(API_ROUTES), "a new API route: say in API_ROUTES what it shows"
    eng.send("entA", "CH4-A1", 1.7)
    eng.send("entB", "CH4-B1", 1.7)
    a, b = eng.open_alert("entA", "CH4-A1"), eng.open_alert("entB", "CH4-B1")
    assert re.fullmatch(r"[0-9a-f]{32}", a["id"]) and re.fullmatch(r"[0-9a-f]{32}", b["id"])
    admin = eng.token("T16_ADMIN")
    r = admin.post("/api/v1/silences", json={"matchers": {"enterprise": ["entB"], "rule": ["x"]},
                                             "duration_s": 600, "reason": "entB work"})  # fmt: skip
    assert r.status_code == 201
    sil_b = r.json()["id"]
    anon = httpx.Client(base_url=eng.api, timeout=10)
    for tok in ("T16_A_OPS", "T16_A_READ"):
        scoped = eng.token(tok)
        for (method, path), (kind, body) in sorted(API_ROUTES.items()):
            url = path.replace("{alert_id}", b["id"]).replace("{silence_id}", sil_b)
            r = anon.request(method, url, json=body)
            headers_ok(r, DOCS_CSP if path == "/docs" else API_CSP)
            if kind == "public":
                assert r.status_code == 200 and r.json() == {"status": "ok"}
                continue
            assert (r.status_code, r.json()) == (401, {"detail": "missing bearer token"}), url
            r = scoped.request(method, url, json=body)
            headers_ok(r, DOCS_CSP if path == "/docs" else API_CSP)
            assert r.status_code < 500, (url, r.text)
            leak_free(r.text, *((b["id"], sil_b) if kind == "list" else ()))  # 404s echo the id
            if kind in ("id", "silence"):
                unknown = path.replace("{alert_id}", UNKNOWN_ID).replace("{silence_id}", UNKNOWN_ID)
                u = scoped.request(method, unknown, json=body)
                same = r.text.replace(b["id"], "ID").replace(sil_b, "ID")
                assert (r.status_code, same) == (u.status_code, u.text.replace(UNKNOWN_ID, "ID")), (
                    url
                )
                assert r.status_code in (403, 404)  # 403 only for the read token's missing role
            elif kind == "refuse":
                assert r.status_code == 403, url
            else:
                assert r.status_code == 200, (url, r.text)
    # nothing changed in entB; the scoped health is entA's only
    after = admin.get(f"/api/v1/alerts/{b['id']}").json()
    assert (after["state"], after["acked"]) == ("firing", False)
    assert any(s["id"] == sil_b for s in admin.get("/api/v1/silences").json())
    h = eng.token("T16_A_READ").get("/api/v1/health").json()
    assert set(h) == {"sites", "open_alerts"} and set(h["sites"]) == {"entA/face1"}
    n_open_a = admin.get("/api/v1/alerts", params={"open": "true", "enterprise": "entA"}).json()
    assert h["open_alerts"] == n_open_a["total"]
    full = admin.get("/api/v1/health").json()
    assert {"entA/face1", "entB/face1"} <= set(full["sites"]) and "hook" in full["notifiers"]
    # bad values: 4xx with the reason, never 500
    for params in ({"limit": "nan"}, {"limit": "1e999"}, {"offset": "-1"}, {"level": "purple"}):
        assert admin.get("/api/v1/alerts", params=params).status_code == 422, params
    r = admin.post(f"/api/v1/alerts/{a['id']}/shelve", content=b'{"reason": "x", "duration_s": Infinity}',
                   headers={"Content-Type": "application/json"})  # fmt: skip
    assert r.status_code == 422


def test_the_webhook_secret_shows_nowhere(eng: Eng) -> None:
    """The webhook's receiver is down: its errors reach the health answer and the WARNING
    log, each naming the URL without its query string."""
    eng.send("entA", "CH4-A3", 1.2)
    eng.open_alert("entA", "CH4-A3")
    admin = eng.token("T16_ADMIN")

    def failed() -> bool:
        return bool(admin.get("/api/v1/health").json()["notifiers"]["hook"]["last_error"])

    wait_for(failed, timeout=20, what="a failed webhook delivery")
    h = admin.get("/api/v1/health").text
    assert SECRET not in h
    err = admin.get("/api/v1/health").json()["notifiers"]["hook"]["last_error"]
    assert f"webhook http://127.0.0.1:{HOOK_PORT}/robot/send?…" in err
    wait_for(lambda: "notifier hook" in eng.log.read_text(), timeout=10, what="the WARNING")
    log = eng.log.read_text()
    assert "WARNING" in log and SECRET not in log


# ------------------------------------------------------------------ the console
#: every route of the console: (method, path) -> (kind, JSON body). Kinds as above, and
#: "page" (the page shell, the same static HTML for anyone), "sensor" (an entB sensor
#: answers as an unknown one), "stream" (the event stream: its snapshot holds no entB).
CONSOLE_ROUTES: dict[tuple[str, str], tuple[str, Any]] = {
    **{
        ("GET", p): ("page", None)
        for p in (
            "/",
            "/board",
            "/overview",
            "/search",
            "/login",
            "/alert/{alert_id}",
            "/sensor/{ent}/{site}/{sensor:path}",
        )
    },
    ("MOUNT", "/static"): ("page", None),
    ("MOUNT", "/i18n"): ("page", None),
    ("POST", "/api/login"): ("public", None),
    ("POST", "/api/logout"): ("public", None),
    ("GET", "/api/me"): ("list", None),
    ("GET", "/api/events"): ("stream", None),
    ("GET", "/api/alerts"): ("list", None),
    ("GET", "/api/alerts.csv"): ("list", None),
    ("GET", "/api/alerts/{alert_id}"): ("id", None),
    ("GET", "/api/alerts/{alert_id}/history.csv"): ("id", None),
    ("POST", "/api/alerts/{alert_id}/ack"): ("id", {}),
    ("POST", "/api/alerts/{alert_id}/shelve"): ("id", {"reason": "x", "duration_s": 60}),
    ("POST", "/api/alerts/{alert_id}/unshelve"): ("id", {}),
    ("POST", "/api/alerts/{alert_id}/close"): ("id", {"note": "x"}),
    ("GET", "/api/silences"): ("list", None),
    ("POST", "/api/silences"): (
        "enterprise",
        {"enterprise": "entB", "duration_s": 60, "reason": "x"},
    ),
    ("POST", "/api/reload"): ("refuse", None),
    ("GET", "/api/sensors/{ent}/{site}/{sensor:path}"): ("sensor", None),
    ("GET", "/api/overview"): ("list", None),
}


def _console_app_routes() -> set[tuple[str, str]]:
    app = console_app(
        sink=cast(Any, None), registry=cast(Any, None), sessions=cast(Any, None),
        hub=cast(Any, None), window=cast(Any, None), stored=None, request_reload=lambda: None,
        clock=cast(Any, None), stopping=threading.Event(),
    )  # fmt: skip
    return routes(app)


def _fill(path: str, alert_id: str, sensor: str) -> str:
    return (path.replace("{alert_id}", alert_id).replace("{ent}/{site}/{sensor:path}", sensor)
            .replace("{alert_id}", alert_id))  # fmt: skip


def test_every_console_route_holds_its_scope(eng: Eng) -> None:
    assert _console_app_routes() == set(CONSOLE_ROUTES), (
        "a new console route: say in CONSOLE_ROUTES what it shows"
    )
    eng.send("entA", "CH4-A1", 1.7)
    eng.send("entB", "CH4/B2", 1.7)  # a sensor id with a '/'
    eng.open_alert("entA", "CH4-A1")
    b = eng.open_alert("entB", "CH4/B2")
    for name in ("engA", "viewA"):
        c, csrf = eng.session(name)
        anon = httpx.Client(base_url=eng.console, timeout=10)
        for (method, path), (kind, body) in sorted(CONSOLE_ROUTES.items()):
            if method == "MOUNT":
                method, path = (
                    "GET",
                    f"{path}/console.js" if path == "/static" else f"{path}/en.json",
                )
            url = _fill(path, b["id"], "entB/face1/CH4%2FB2")
            if kind == "stream":
                assert anon.get(url).status_code == 401
                with c.stream("GET", url, timeout=10) as r:
                    headers_ok(r, CONSOLE_CSP)
                    first = ""
                    for line in r.iter_lines():
                        if line.startswith("data:"):
                            first = line
                            break
                leak_free(first, b["id"])
                assert json.loads(first[5:]) != []  # entA's open alerts
                continue
            r = anon.request(method, url, json=body)
            headers_ok(r, CONSOLE_CSP)
            if kind in ("page", "public"):
                assert r.status_code in (200, 401, 422), url  # log-in with no body: 422
                leak_free(r.text, b["id"])
                continue
            assert r.status_code == 401, url
            hdr = {"X-CSRF-Token": csrf} if method == "POST" else {}
            r = c.request(method, url, json=body, headers=hdr)
            headers_ok(r, CONSOLE_CSP)
            assert r.status_code < 500, (url, r.text)
            if kind == "list":
                leak_free(r.text, b["id"])
            if kind in ("id", "sensor", "enterprise"):
                other = {"id": _fill(path, UNKNOWN_ID, "entB/face1/NOPE"),
                         "sensor": _fill(path, b["id"], "entB/face1/NOPE"),
                         "enterprise": url}[kind]  # fmt: skip
                obody = {**body, "enterprise": "entZ"} if kind == "enterprise" else body
                u = c.request(method, other, json=obody, headers=hdr)

                def norm(t: str) -> str:
                    for x in (b["id"], UNKNOWN_ID, "CH4/B2", "NOPE", "entB", "entZ"):
                        t = t.replace(x, "X")
                    return t

                assert (r.status_code, norm(r.text)) == (u.status_code, norm(u.text)), url
                assert r.status_code in (403, 404), url  # 403: the viewer's missing role
            elif kind == "refuse":
                assert r.status_code == 403, url
            else:
                assert r.status_code == 200, (url, r.text)
    after = eng.token("T16_ADMIN").get(f"/api/v1/alerts/{b['id']}").json()
    assert (after["state"], after["acked"]) == ("firing", False)
    # the sensor with a '/' opens for someone who may see it (page and API)
    c, _ = eng.session("admin")
    r = c.get("/api/sensors/entB/face1/CH4%2FB2")
    assert r.status_code == 200 and r.json()["key"] == "entB/face1/CH4/B2"
    assert c.get("/sensor/entB/face1/CH4%2FB2").status_code == 200
    for bad in ("nan", "inf", "-5", "x", "1e999"):
        r = c.get("/api/sensors/entB/face1/CH4-B1", params={"minutes": bad})
        assert r.status_code == 422, (bad, r.text)
    assert c.get("/api/alerts", params={"limit": "-1"}).status_code == 422
    assert c.get("/api/alerts", params={"since": "9" * 5000}).status_code == 422


def test_the_login_cookie_and_throttle(eng: Eng) -> None:
    c = httpx.Client(base_url=eng.console, timeout=10)
    r = c.post("/api/login", json={"name": "opA", "password": PW})
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
    codes = [c.post("/api/login", json={"name": "intruder", "password": "x"}).status_code
             for _ in range(5)]  # fmt: skip
    assert codes == [401, 401, 401, 429, 429]
    # opA, who logged in from this address, is not held up by the intruder's failures
    assert c.post("/api/login", json={"name": "opA", "password": PW}).status_code == 200


# ------------------------------------------------------------------ the event stream
class Stream:
    """One console event stream read in a thread: its events, and whether it ended."""

    def __init__(self, client: httpx.Client) -> None:
        self.events: list[tuple[str, Any]] = []
        self.ended = threading.Event()
        self.ready = threading.Event()
        self._t = threading.Thread(target=self._run, args=(client,), daemon=True)
        self._t.start()
        assert self.ready.wait(10)

    def _run(self, client: httpx.Client) -> None:
        try:
            with client.stream("GET", "/api/events", timeout=60) as r:
                ev = ""
                for line in r.iter_lines():
                    if line.startswith("event: "):
                        ev = line[7:]
                    elif line.startswith("data: "):
                        self.events.append((ev, json.loads(line[6:])))
                        self.ready.set()
        except httpx.HTTPError:
            pass
        finally:
            self.ready.set()
            self.ended.set()

    def updates(self) -> list[Any]:
        return [d for e, d in self.events if e == "update"]


def _users(eng: Eng, *args: str) -> None:
    assert cli_main(["users", "--file", str(eng.users), *args]) == 0


def test_the_event_stream_ends_at_logout_removal_and_scope_change(eng: Eng) -> None:
    c1, csrf1 = eng.session("opA")
    c2, _ = eng.session("opA2")
    c3, _ = eng.session("viewA")
    c4, _ = eng.session("viewA")  # a second session of viewA, kept to the end
    s1, s2, s3 = Stream(c1), Stream(c2), Stream(c3)
    # logout: the stream ends at once, no push needed
    t0 = time.monotonic()
    assert c1.post("/api/logout", headers={"X-CSRF-Token": csrf1}).status_code == 200
    assert s1.ended.wait(3), "the stream outlived its logout"
    print(f"\nscopes: stream ended {time.monotonic() - t0:.2f} s after logout")
    assert c1.get("/api/me").status_code == 401
    # opA2's scope changes to entB, viewA is removed: the next entA push reaches neither
    _users(eng, "scope", "opA2", "--enterprise", "entB")
    _users(eng, "remove", "viewA")
    before2, before3 = len(s2.updates()), len(s3.updates())
    eng.send("entA", "CH4-A2", 1.2)
    eng.open_alert("entA", "CH4-A2")
    assert s2.ended.wait(8) and s3.ended.wait(8), "a stream outlived its user's change"
    assert len(s2.updates()) == before2 and len(s3.updates()) == before3
    assert c3.get("/api/me").status_code == 401 and c4.get("/api/me").status_code == 401
    r = c2.get("/api/me")  # opA2's session goes on with the new scope ...
    assert r.status_code == 200 and r.json()["enterprises"] == ["entB"]
    s2b = Stream(c2)  # ... and a new stream starts from what entB holds
    snap = next(d for e, d in s2b.events if e == "snapshot")
    assert {a["enterprise"] for a in snap} <= {"entB"}
    _users(eng, "remove", "opA2")
    assert s2b.ended.wait(8), "an idle stream outlived its user's removal"
