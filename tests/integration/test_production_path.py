"""The production path end to end: ``config init --production`` writes a config that a real
``riskwatch run`` starts from (over the real Mosquitto and InfluxDB 1.x, console, alert API
and metrics on); the Prometheus rules and the engine-health dashboard name only metrics
that engine exports; every InfluxQL query of the Grafana dashboards (panels, annotations,
template variables) returns rows from the data that engine wrote; the catalogue's unit,
location and gateway are tags; a resolved alert point is ``level=none``.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from riskwatch.config.cli import bundled_root
from tests.conftest import wait_http
from tests.integration.spine_helpers import Publisher, influx_query, now_ms, unique, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

API, CONSOLE, METRICS = 26011, 26012, 26013
ENT, SITE = "t22e", "f1"
CATALOG = (
    "enterprise,site,sensor,kind,unit,location,gateway,name,domain,range_low,range_high,period_s,"
    "alarm,power_off,restore\n"
    f"{ENT},{SITE},CH4-1,ch4,%,upper_corner,GW-1,upper corner T0,coal_mine,0,10,10,1,1.5,1\n"
    f"{ENT},{SITE},T-1,temp,degC,working_face,GW-1,face temperature,coal_mine,0,100,10,,,\n"
)
GRAFANA_VARS = {"enterprise": ENT, "site": SITE, "sensor": "CH4-1", "kind": "ch4",
                "location": "upper_corner", "alarm": "1.0", "power_off": "1.5"}  # fmt: skip


def _production_config(tmp: Path, mqtt_addr: tuple[str, int], influx: str, db: str) -> Path:
    etc = tmp / "etc"
    subprocess.run(
        [sys.executable, "-m", "riskwatch.cli", "config", "init", "--production", str(etc),
         "--state-dir", str(tmp / "state")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    text = (etc / "engine.yaml").read_text()
    # what an operator fills in: broker and database addresses, the catalogue; the test
    # services take no credentials and no TLS, and this test's topics and ports are its own
    edits = [
        (r"url: mqtts://127\.0\.0\.1:8883", f"url: mqtt://{mqtt_addr[0]}:{mqtt_addr[1]}"),
        (r"\n  username: riskwatch\n  password_file: .*\n  tls:\n    ca_file: .*\n", "\n"),
        (r'topics: \["rw/#"\]', 'topics: ["t22prod/#"]'),
        (r'topic_template: "rw/', 'topic_template: "t22prod/'),
        (r"topic: rw-deadletter", "topic: t22prod-deadletter"),
        (r'topic: "rw-alerts/', 'topic: "t22prod-alerts/'),
        (r"url: http://127\.0\.0\.1:8086", f"url: {influx}"),
        (r"database: riskwatch", f"database: {db}"),
        (r"\n    username: riskwatch\n    password_file: .*\n", "\n"),
        (r'"127\.0\.0\.1:9110"', f'"127.0.0.1:{API}"'),
        (r'"127\.0\.0\.1:8080"', f'"127.0.0.1:{CONSOLE}"'),
        (r'"127\.0\.0\.1:9108"', f'"127.0.0.1:{METRICS}"'),
    ]
    for pat, rep in edits:
        text, n = re.subn(pat, rep, text)
        assert n == 1, pat
    (etc / "engine.yaml").write_text(text)
    (etc / "catalog" / "site.csv").write_text(CATALOG)
    return etc / "engine.yaml"


@pytest.fixture(scope="module")
def engine_run(
    tmp_path_factory: pytest.TempPathFactory, mqtt_addr: tuple[str, int], influx_v1_url: str
) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("t22prod")
    db = unique("t22prod_")
    urllib.request.urlopen(
        f"{influx_v1_url}/query", data=urllib.parse.urlencode({"q": f"CREATE DATABASE {db}"}).encode()
    ).read()
    cfg = _production_config(tmp, mqtt_addr, influx_v1_url, db)
    log = tmp / "engine.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "riskwatch.cli", "run", "-c", str(cfg)],
        stdout=subprocess.DEVNULL, stderr=open(log, "ab"), start_new_session=True,
    )  # fmt: skip
    pub = Publisher(*mqtt_addr)
    try:
        wait_http(f"http://127.0.0.1:{METRICS}/metrics", timeout=60)
        wait_http(f"http://127.0.0.1:{API}/healthz", timeout=30)
        time.sleep(1.0)  # subscription in place
        topic = f"t22prod/{ENT}/{SITE}/GW-1"
        t0 = now_ms() - 60_000
        ch4 = [0.3] * 5 + [1.8] * 5 + [0.2] * 10  # normal, above power-off, restored
        for i, v in enumerate(ch4):
            ts = t0 + i * 2000
            pub.send(topic, {"gateway": "GW-1", "ts": ts, "readings": [
                {"sensor": "CH4-1", "value": v},
                {"sensor": "T-1", "value": 21.0 + i * 0.1, **({"quality": "fault"} if i == 3 else {})},
            ]})  # fmt: skip
            time.sleep(0.05)
        pub.send(topic, "not json")  # one dead letter, so its reason label exists

        def alerts() -> list[dict[str, Any]]:
            return influx_query(influx_v1_url, db, "SELECT * FROM alert")

        wait_for(lambda: any(r.get("state") == "resolved" for r in alerts()), timeout=60,
                 what="a resolved alert point")  # fmt: skip
        wait_for(lambda: len(influx_query(influx_v1_url, db, "SELECT value FROM reading")) == 40,
                 timeout=30, what="all readings stored")  # fmt: skip
        with urllib.request.urlopen(f"http://127.0.0.1:{METRICS}/metrics", timeout=10) as r:
            metrics = r.read().decode()
        yield {"db": db, "influx": influx_v1_url, "metrics": metrics, "alerts": alerts(),
               "cfg": cfg, "log": log}  # fmt: skip
    finally:
        pub.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        urllib.request.urlopen(
            f"{influx_v1_url}/query", data=urllib.parse.urlencode({"q": f"DROP DATABASE {db}"}).encode()
        ).read()


def _exported(metrics_text: str) -> set[str]:
    """Every sample name the exposition can carry, from its TYPE lines (a labelled metric
    with no child yet still has its TYPE line; a counter's names it with ``_total``)."""
    suffixes = {"counter": ("",), "gauge": ("",), "histogram": (
        "_bucket", "_sum", "_count", "_created"), "summary": ("", "_sum", "_count", "_created"),
        "info": ("_info",), "untyped": ("",)}  # fmt: skip
    out: set[str] = set()
    for line in metrics_text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            out.update(name + s for s in suffixes[kind])
    return out


def _promql_metrics(expr: str) -> set[str]:
    expr = re.sub(r'"[^"]*"', '""', expr)  # label values
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    return {m for m in re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", expr) if m.startswith("riskwatch_")}


def test_production_config_runs_with_console_api_storage_and_strict_ingest(
    engine_run: dict[str, Any],
) -> None:
    cfg = yaml.safe_load(engine_run["cfg"].read_text())
    assert cfg["ingest"]["strict"] is True
    assert cfg["console"]["listen"] and cfg["alerts"]["api"]["listen"]
    assert cfg["alerts"]["api"]["tokens"][0]["token_file"].endswith("secrets/api-admin.token")
    state = engine_run["cfg"].parent.parent / "state"
    assert (state / "alerts.sqlite").exists() and (state / "spool").is_dir()
    with urllib.request.urlopen(f"http://127.0.0.1:{CONSOLE}/login", timeout=10) as r:
        assert r.status == 200
    token = (engine_run["cfg"].parent / "secrets" / "api-admin.token").read_text().strip()
    req = urllib.request.Request(f"http://127.0.0.1:{API}/api/v1/alerts?enterprise={ENT}",
                                 headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    with urllib.request.urlopen(req, timeout=10) as r:
        body = json.load(r)
    items = body["items"]
    assert {a["rule"] for a in items} >= {"ch4_face"}


def test_catalogue_columns_are_reading_tags_and_resolved_alerts_are_level_none(
    engine_run: dict[str, Any],
) -> None:
    rows = influx_query(engine_run["influx"], engine_run["db"],
                        'SELECT value FROM reading WHERE sensor = \'CH4-1\' GROUP BY *')  # fmt: skip
    assert {(r["unit"], r["location"], r["gateway"], r["kind"]) for r in rows} == {
        ("%", "upper_corner", "GW-1", "ch4")
    }
    points = [r for r in engine_run["alerts"] if r["rule"] == "ch4_face"]
    firing = [r for r in points if r["state"] == "firing"]
    resolved = [r for r in points if r["state"] == "resolved"]
    assert firing and {r["level"] for r in firing} <= {"orange", "red"}
    assert resolved and {r["level"] for r in resolved} == {"none"}
    assert {r["alert_level"] for r in resolved} <= {"orange", "red"}


def test_prometheus_rules_and_engine_dashboard_name_only_exported_metrics(
    engine_run: dict[str, Any],
) -> None:
    exported = _exported(engine_run["metrics"])
    rules = yaml.safe_load((bundled_root() / "prometheus" / "riskwatch-rules.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    dash = json.loads((bundled_root() / "grafana" / "dashboards" /
                       "riskwatch-engine-health.json").read_text())  # fmt: skip
    exprs += [t["expr"] for p in dash["panels"] for t in p["targets"] if "expr" in t]
    named = set().union(*(_promql_metrics(e) for e in exprs))
    assert len(named) >= 15
    assert named - exported == set()


def _grafana_queries() -> list[tuple[str, str]]:
    out = []
    for f in sorted((bundled_root() / "grafana" / "dashboards").glob("*.json")):
        d = json.loads(f.read_text())
        for p in d["panels"]:
            out += [(f"{f.name}: {p['title']} {t['refId']}", t["query"])
                    for t in p["targets"] if "query" in t]  # fmt: skip
        out += [(f"{f.name}: annotation {a['name']}", a["query"]) for a in d["annotations"]["list"]]
        out += [(f"{f.name}: variable {v['name']}", v["query"])
                for v in d["templating"]["list"] if v["type"] == "query"]  # fmt: skip
    return out


def _interpolate(q: str) -> str:
    """What Grafana sends for one selected value of each variable and the last hour."""
    q = q.replace("$timeFilter", "time > now() - 1h").replace("$__interval", "10s")
    for k in sorted(GRAFANA_VARS, key=len, reverse=True):
        q = q.replace(f"${k}", GRAFANA_VARS[k])
    assert re.search(r"\$[a-z_]", q) is None, q
    return q


def test_every_grafana_influxql_query_returns_rows(engine_run: dict[str, Any]) -> None:
    queries = _grafana_queries()
    assert len(queries) >= 20
    empty = []
    for name, q in queries:
        qs = urllib.parse.urlencode({"db": engine_run["db"], "q": _interpolate(q)})
        with urllib.request.urlopen(f"{engine_run['influx']}/query?{qs}", timeout=10) as r:
            res = json.load(r)["results"][0]
        assert "error" not in res, (name, res["error"])
        if not any(s.get("values") for s in res.get("series", [])):
            empty.append(name)
    assert empty == []
