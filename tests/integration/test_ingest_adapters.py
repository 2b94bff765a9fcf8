"""The three ingest adapters against a real ``riskwatch run`` (subprocess), the real
Mosquitto and InfluxDB: KJ files dropped into a watched folder, a Sparkplug B edge node
(written here with the same protobuf schema) and HTTP posts. Good records reach InfluxDB,
each malformed one is dead-lettered with its reason (file:line:field for KJ), alerts
arrive over MQTT, and input is archived or answered only once it is durable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from riskwatch.ingest.sparkplug.payloads import Payload
from tests.integration.spine_helpers import Collector, influx_query, unique, wait_for

pytestmark = pytest.mark.integration

PORTS = iter(range(28100, 28200))


def _create_db(url: str, db: str) -> None:
    q = urllib.parse.urlencode({"q": f"CREATE DATABASE {db}"})
    urllib.request.urlopen(urllib.request.Request(f"{url}/query?{q}", method="POST"), timeout=10)


def _config(
    tmp: Path, mqtt_port: int, influx: str, db: str, root: str, adapters: str,
    receiver: str = "thread",
) -> Path:
    cfg = tmp / "engine.yaml"
    cfg.write_text(
        f"mqtt: {{url: 'mqtt://127.0.0.1:{mqtt_port}', client_id: {root},"
        f" topics: ['{root}/#'], topic_template: '{root}/{{enterprise}}/{{site}}/{{gateway}}'}}\n"
        f"storage: {{influx: {{url: '{influx}', database: {db}}}, spool_dir: '{tmp}/spool'}}\n"
        f"ingest: {{batch_max_wait_ms: 50, receiver: {receiver},"
        f" deadletter: {{file: '{tmp}/dl.jsonl', topic: null}}}}\n"
        "metrics: {listen: null}\n"
        f"alerts:\n  topic: '{root}-al/{{enterprise}}'\n  store: '{tmp}/alerts.sqlite'\n"
        f"adapters:\n{adapters}"
    )
    return cfg


def _start(cfg: Path, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "riskwatch.cli", "run", "-c", str(cfg)],
        stdout=subprocess.DEVNULL, stderr=open(log, "ab"), start_new_session=True,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def _stop(p: subprocess.Popen[bytes]) -> None:
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)


def _deadletters(tmp: Path) -> list[dict[str, Any]]:
    f = tmp / "dl.jsonl"
    return [orjson.loads(x) for x in f.read_bytes().splitlines()] if f.exists() else []


def _rows(url: str, db: str) -> list[dict[str, Any]]:
    try:
        return influx_query(url, db, "SELECT value, sensor, site, enterprise, kind FROM reading")
    except OSError:
        return []


def _alerts(col: Collector) -> list[dict[str, Any]]:
    return [orjson.loads(p) for _, p in col.messages]


# ---------------------------------------------------------------------- KJ files
def _kj_time(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S")


def test_kj_files_from_a_watched_folder(
    tmp_path: Path, mqtt_addr: tuple[str, int], influx_v1_url: str
) -> None:
    root, db = unique("t21fmt"), unique("t21fmt_kj_")
    mine = unique("M")
    _create_db(influx_v1_url, db)
    drop = tmp_path / "drop"
    cfg = _config(tmp_path, mqtt_addr[1], influx_v1_url, db, root,
                  f"  kj: {{drop_dir: '{drop}', settle_s: 0.5, poll_s: 0.2}}\n")  # fmt: skip
    col = Collector(*mqtt_addr, f"{root}-al/#")
    local = datetime.now(timezone(timedelta(hours=8))).replace(microsecond=0)
    stamp = local.strftime("%Y%m%d%H%M%S")
    t1, t2 = _kj_time(local - timedelta(seconds=20)), _kj_time(local - timedelta(seconds=10))
    cddy = (
        f"{mine};{_kj_time(local)}~\n"
        "CH4-01;甲烷;回风巷;%;0;4;1.0;;0.9;;1.5;1.0;10;20;-300~\n"
        "CH4-02;甲烷;工作面;%;0;4;1.2;;1.0;;2.0;1.0~\n"  # looser than the caps: capped
        "CO-01;一氧化碳;回风巷;ppm;0;500;24;;;;;~\n"
        "BAD-01;甲烷;回风巷;%;0;abc;1.0;;;;1.5;1.0~\n"  # line 5: range_high not a number
        "SHORT;甲烷;回风巷~\n"  # line 6: too few fields
        "||"
    )
    cdss = (
        f"CH4-01;甲烷;回风巷;0.42;%;0;{t1}~\n"
        f"CH4-01;甲烷;回风巷;0.45;%;8;{t2}~\n"  # calibrating
        f"CO-01;一氧化碳;回风巷;notanumber;ppm;0;{t1}~\n"  # line 3: value
        f"CH4-02;甲烷;工作面;1.60;%;1;{t2}~\n"  # >= power-off 1.5 without the power-off bit
        f"CO-01;一氧化碳;回风巷;3;ppm;0;yesterday~\n"  # line 5: time
        "||"
    )
    ycbj = f"CH4-02;甲烷;工作面;001;{t2};~\nCH4-01;甲烷;回风巷;999;{t1};~\n||"
    p = _start(cfg, tmp_path / "engine.log")
    try:
        drop.mkdir(parents=True, exist_ok=True)
        # an FTP upload in progress: written under a temporary name, then renamed
        part = drop / f"{mine}_CDDY_{stamp}.txt.part"
        part.write_bytes(cddy.encode("gb18030"))
        time.sleep(1.0)
        assert part.exists()  # never taken while partial
        part.rename(drop / f"{mine}_CDDY_{stamp}.txt")
        (drop / f"{mine}_CDSS_{stamp}.txt").write_bytes(cdss.encode("utf-8"))
        (drop / f"{mine}_YCBJ_{stamp}.txt").write_bytes(ycbj.encode("gb18030"))
        (drop / "readme.txt").write_text("not a KJ file")
        archive = drop / "archive" / stamp[:8]
        wait_for(lambda: len(list(archive.glob("*.txt"))) == 3, 40, "3 files archived")
        wait_for(lambda: (drop / "rejected" / "readme.txt").exists(), 10, "readme rejected")
        rows = _rows(influx_v1_url, db)
        got = sorted((r["sensor"], r["value"]) for r in rows)
        assert got == [("CH4-01", 0.42), ("CH4-01", 0.45), ("CH4-02", 1.6)]
        assert {r["enterprise"] for r in rows} == {mine} and {r["site"] for r in rows} == {"kj"}
        assert {r["kind"] for r in rows} == {"ch4"}
        dls = {(d["reason"], d.get("line"), d["field"]) for d in _deadletters(tmp_path)}
        assert dls == {
            ("bad_field", 5, "range_high"), ("field_count", 6, "unit"),
            ("bad_field", 3, "value"), ("bad_field", 5, "time"),
            ("bad_field", 2, "abnormal_type"), ("bad_file_name", None, None),
        }, dls  # fmt: skip
        detail = next(d["detail"] for d in _deadletters(tmp_path) if d.get("line") == 3)
        assert detail.startswith(f"{mine}_CDSS_{stamp}.txt:3: record 3: field value")
        wait_for(lambda: any(a["rule"] == "kj_power_off_mismatch" for a in _alerts(col)), 20,
                 "the power-off mismatch alert over MQTT")  # fmt: skip
        mm = next(a for a in _alerts(col) if a["rule"] == "kj_power_off_mismatch")
        assert mm["sensor"] == "CH4-02" and mm["level"] == "red"
        # the mine's 2.0 power-off limit was looser than the 1.5 cap: 1.5 was used
        assert "power-off 1.5" in mm["message"]
        wait_for(lambda: any(a["rule"] == "kj_record" for a in _alerts(col)), 20, "kj_record")
        log = (tmp_path / "engine.log").read_text()
        assert "power_off limit 2 is looser than the regulatory cap 1.5" in log
        assert "alarm limit 1.2 is looser than the regulatory cap 1" in log
    finally:
        _stop(p)
        col.close()


# ---------------------------------------------------------------------- Sparkplug B
class EdgeNode:
    """A small Sparkplug B edge node: NBIRTH with aliases, NDATA by alias, NDEATH as its
    will, a rebirth on NCMD."""

    def __init__(self, host: str, port: int, group: str, node: str) -> None:
        self.group, self.node = group, node
        self.seq = 0
        self.bd_seq = 0
        self.commands: list[Payload] = []
        self._last_ms = 0
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("edge-"))
        death = Payload(timestamp=int(time.time() * 1000))
        death.metrics.add(name="bdSeq", datatype=8, long_value=self.bd_seq)
        self.c.will_set(self.topic("NDEATH"), death.SerializeToString(), qos=1)
        self.c.on_message = lambda c, u, m: self.commands.append(Payload.FromString(m.payload))
        self.c.connect(host, port)
        self.c.subscribe(self.topic("NCMD"), qos=1)
        self.c.loop_start()
        time.sleep(0.3)

    def now_ms(self) -> int:
        """Strictly increasing: two values of a metric in one ms would conflict."""
        self._last_ms = max(int(time.time() * 1000), self._last_ms + 1)
        return self._last_ms

    def topic(self, kind: str, device: str = "") -> str:
        t = f"spBv1.0/{self.group}/{kind}/{self.node}"
        return f"{t}/{device}" if device else t

    def _send(self, kind: str, p: Payload, device: str = "", seq: int | None = None) -> None:
        p.seq = self.seq if seq is None else seq
        self.seq = (p.seq + 1) % 256
        self.c.publish(self.topic(kind, device), p.SerializeToString(), qos=1).wait_for_publish(5)

    def birth(self) -> None:
        self.seq = 0
        p = Payload(timestamp=self.now_ms())
        p.metrics.add(name="bdSeq", datatype=8, long_value=self.bd_seq)
        p.metrics.add(name="Node Control/Rebirth", datatype=11, boolean_value=False)
        m = p.metrics.add(name="CH4", alias=1, datatype=9, float_value=0.3)
        m.properties.keys.append("engUnit")
        m.properties.values.add(type=12, string_value="%")
        p.metrics.add(name="Temp", alias=2, datatype=3, int_value=(-5) & 0xFFFFFFFF)  # Int32
        p.metrics.add(name="Label", alias=3, datatype=12, string_value="face 1")
        self._send("NBIRTH", p)

    def data(self, values: dict[int, float], seq: int | None = None) -> None:
        p = Payload(timestamp=self.now_ms())
        for alias, v in values.items():
            p.metrics.add(alias=alias, datatype=9, float_value=v)
        self._send("NDATA", p, seq=seq)

    def death(self) -> None:
        p = Payload(timestamp=int(time.time() * 1000))
        p.metrics.add(name="bdSeq", datatype=8, long_value=self.bd_seq)
        self.c.publish(self.topic("NDEATH"), p.SerializeToString(), qos=1).wait_for_publish(5)

    def raw(self, topic: str, body: bytes) -> None:
        self.c.publish(topic, body, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def test_sparkplug_edge_node(
    tmp_path: Path, mqtt_addr: tuple[str, int], influx_v1_url: str
) -> None:
    root, db = unique("t21fmt"), unique("t21fmt_spb_")
    group, host_id = unique("t21fmtG"), unique("t21fmtH")
    _create_db(influx_v1_url, db)
    cfg = _config(tmp_path, mqtt_addr[1], influx_v1_url, db, root,
                  f"  sparkplug: {{host_id: {host_id}, groups: [{group}],"
                  f" rebirth_min_interval_s: 0.1}}\n", receiver="process")  # fmt: skip
    col = Collector(*mqtt_addr, f"{root}-al/#")
    state = Collector(*mqtt_addr, f"spBv1.0/STATE/{host_id}")
    p = _start(cfg, tmp_path / "engine.log")
    edge = EdgeNode(*mqtt_addr, group, "node1")
    try:
        wait_for(lambda: any(orjson.loads(b)["online"] for _, b in state.messages), 30,
                 "the host's STATE online")  # fmt: skip
        assert state.messages[-1][0] == f"spBv1.0/STATE/{host_id}"
        edge.birth()
        edge.data({1: 0.5})
        edge.data({1: 0.6, 2: 7.0, 9: 1.0})  # alias 9 was never declared
        wait_for(lambda: len(_rows(influx_v1_url, db)) >= 4, 20, "4 readings stored")
        wait_for(lambda: len(_rows(influx_v1_url, db)) == 5, 10, "5 readings stored")
        rows = _rows(influx_v1_url, db)
        got = sorted((r["sensor"], round(r["value"], 6)) for r in rows)  # float32 on the wire
        assert got == [("CH4", 0.3), ("CH4", 0.5), ("CH4", 0.6), ("Temp", -5.0), ("Temp", 7.0)]
        assert {(r["enterprise"], r["site"]) for r in rows} == {(group, "node1")}
        # an undeclared alias asks for a rebirth; so does a seq gap
        wait_for(lambda: len(edge.commands) >= 1, 10, "a rebirth request (undeclared alias)")
        cmd = edge.commands[0].metrics[0]
        assert (cmd.name, cmd.boolean_value) == ("Node Control/Rebirth", True)
        time.sleep(0.2)
        edge.data({1: 0.7}, seq=200)  # a gap
        wait_for(lambda: len(edge.commands) >= 2, 10, "a rebirth request (seq gap)")
        edge.raw(f"spBv1.0/{group}/NDATA/node1", b"\xff\xff not protobuf")
        edge.raw(f"spBv1.0/{group}/DDATA/node1", Payload().SerializeToString())  # no device
        edge.death()
        wait_for(lambda: any(a["rule"] == "sparkplug_offline" for a in _alerts(col)), 20,
                 "the offline alert over MQTT")  # fmt: skip
        off = next(a for a in _alerts(col) if a["rule"] == "sparkplug_offline")
        assert off["level"] == "orange" and off["state"] == "firing"
        edge.birth()
        wait_for(lambda: any(a["rule"] == "sparkplug_offline" and a["state"] == "resolved"
                             for a in _alerts(col)), 20, "back online")  # fmt: skip
        wait_for(lambda: {"unknown_alias", "bad_protobuf", "bad_topic", "unsupported_type"}
                 <= {d["reason"] for d in _deadletters(tmp_path)}, 10, "the dead letters")
        ua = next(d for d in _deadletters(tmp_path) if d["reason"] == "unknown_alias")
        assert ua["field"] == "metrics[2].alias" and ua["topic"].endswith("/NDATA/node1")
    finally:
        _stop(p)
        edge.close()
        col.close()
    # a graceful stop says offline (retained)
    wait_for(lambda: not orjson.loads(state.messages[-1][1])["online"], 10, "STATE offline")
    state.close()


# ---------------------------------------------------------------------- HTTP
def test_http_ingest_with_keys_and_durable_answers(
    tmp_path: Path, mqtt_addr: tuple[str, int], influx_v1_url: str
) -> None:
    root, db = unique("t21fmt"), unique("t21fmt_http_")
    _create_db(influx_v1_url, db)
    port = next(PORTS)
    cfg = _config(tmp_path, mqtt_addr[1], influx_v1_url, db, root,
                  f"  http:\n    listen: '127.0.0.1:{port}'\n    keys:\n"
                  "      - {name: a, enterprise: entA, key_env: T21FMT_KEY_A}\n"
                  "      - {name: b, enterprise: entB, sites: [s1], key_env: T21FMT_KEY_B}\n")
    p = _start(cfg, tmp_path / "engine.log", {"T21FMT_KEY_A": "ka", "T21FMT_KEY_B": "kb"})
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=15)
    now = int(time.time() * 1000)
    try:
        def up() -> bool:
            try:
                return http.get("/healthz").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, 30, "HTTP ingest")
        A = {"Authorization": "Bearer ka"}
        r = http.post("/ingest/v1/entA/s1/gw1", headers=A, content=orjson.dumps(
            [{"sensor": "P1", "ts": now, "value": 1.5},
             {"sensor": "P2", "ts": now, "value": "x"}]))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["stored"] == 1
        assert [(d["reason"], d["index"]) for d in body["deadlettered"]] == [
            ("non_numeric_value", 1)]
        # 200 means durable: the reading is in InfluxDB already
        assert [(x["sensor"], x["value"]) for x in _rows(influx_v1_url, db)] == [("P1", 1.5)]
        # columns with X-API-Key, envelope form
        r = http.post("/ingest/v1/entA/s2", headers={"X-API-Key": "ka"},
                      content=orjson.dumps({"ts": now, "sensor": ["C1", "C2"], "value": [1, 2]}))
        assert r.status_code == 200 and r.json()["stored"] == 2
        r = http.post("/ingest/v1/entA/s2/gw9", headers=A, content=orjson.dumps(
            {"gateway": "gw9", "ts": now, "readings": [{"sensor": "E1", "value": 3}]}))
        assert r.status_code == 200 and r.json()["stored"] == 1
        cases = [
            ("/ingest/v1/entA/s1", {}, b"{}", 401, "unauthorized"),
            ("/ingest/v1/entA/s1", {"Authorization": "Bearer nope"}, b"{}", 401, "unauthorized"),
            ("/ingest/v1/entB/s1", A, b"{}", 403, "forbidden"),  # another enterprise
            ("/ingest/v1/entB/s2", {"Authorization": "Bearer kb"}, b"{}", 403, "forbidden"),
            ("/ingest/v1/entA/s1", A, b"{not json", 400, "invalid_json"),
            ("/ingest/v1/entA/s1", A, b"42", 422, "bad_shape"),
            ("/ingest/v1/entA/s1", A, orjson.dumps(
                {"sensor": "P1", "ts": now, "value": 1, "enterprise": "entB"}), 403,
             "topic_mismatch"),
            ("/ingest/v1/entA/s1/gw1", A, orjson.dumps(
                {"gateway": "other", "readings": [{"sensor": "P1", "ts": now, "value": 1}]}),
             422, "topic_mismatch"),
            ("/ingest/v1/entA/s1", A, orjson.dumps({"sensor": "P1", "ts": 5, "value": 1}), 422,
             "absurd_timestamp"),
        ]  # fmt: skip
        for path, headers, body_bytes, status, reason in cases:
            r = http.post(path, headers=headers, content=body_bytes)
            assert (r.status_code, r.json()["reason"]) == (status, reason), (path, r.text)
        ok = http.post("/ingest/v1/entB/s1", headers={"Authorization": "Bearer kb"},
                       content=orjson.dumps({"sensor": "B1", "ts": now, "value": 9}))
        assert ok.status_code == 200
        rows = {(x["enterprise"], x["site"], x["sensor"]) for x in _rows(influx_v1_url, db)}
        assert rows == {("entA", "s1", "P1"), ("entA", "s2", "C1"), ("entA", "s2", "C2"),
                        ("entA", "s2", "E1"), ("entB", "s1", "B1")}  # fmt: skip
        assert {"non_numeric_value", "topic_mismatch", "absurd_timestamp"} <= {
            d["reason"] for d in _deadletters(tmp_path)}
    finally:
        _stop(p)
        http.close()


def test_http_decrypt_hook_in_an_engine(
    tmp_path: Path, mqtt_addr: tuple[str, int], influx_v1_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The ``decrypt`` callable given to the Engine opens the envelope's ``data`` field (a
    toy XOR stands in for the platform's SM4: the hook is what is under test)."""
    from riskwatch.config.engine import load_engine_config
    from riskwatch.engine import Engine

    root, db = unique("t21fmt"), unique("t21fmt_dec_")
    _create_db(influx_v1_url, db)
    port = next(PORTS)
    monkeypatch.setenv("T21FMT_KEY_D", "kd")
    cfg = _config(tmp_path, mqtt_addr[1], influx_v1_url, db, root,
                  f"  http:\n    listen: '127.0.0.1:{port}'\n    encrypted_field: data\n"
                  "    keys: [{name: d, enterprise: entD, key_env: T21FMT_KEY_D}]\n")
    seen: list[str] = []

    def decrypt(key_name: str, cipher: bytes) -> bytes:
        seen.append(key_name)
        if cipher[:1] != b"\x01":
            raise ValueError("bad padding")
        return bytes(b ^ 0x5A for b in cipher[1:])

    def seal(plain: bytes) -> str:
        import base64

        return base64.b64encode(b"\x01" + bytes(b ^ 0x5A for b in plain)).decode()

    eng = Engine(load_engine_config(cfg), decrypt=decrypt)
    eng.start()
    try:
        assert eng.http_url == f"http://127.0.0.1:{port}"
        now = int(time.time() * 1000)
        h = {"Authorization": "Bearer kd"}
        batch = orjson.dumps({"sensor": "D1", "ts": now, "value": 4.5})
        with httpx.Client(base_url=eng.http_url, timeout=15) as c:
            r = c.post("/ingest/v1/entD/s1", headers=h,
                       content=orjson.dumps({"appid": "x", "data": seal(batch)}))
            assert r.status_code == 200 and r.json()["stored"] == 1, r.text
            bad = c.post("/ingest/v1/entD/s1", headers=h,
                         content=orjson.dumps({"appid": "x", "data": "AAAA"}))
            assert (bad.status_code, bad.json()["reason"]) == (400, "decrypt_failed")
            plain = c.post("/ingest/v1/entD/s1", headers=h, content=batch)
            assert (plain.status_code, plain.json()["reason"]) == (422, "bad_shape")
        assert seen == ["d", "d"]
        assert [(x["sensor"], x["value"]) for x in _rows(influx_v1_url, db)] == [("D1", 4.5)]
    finally:
        eng.stop()
