"""HTTP ingest for platform data access: ``POST /ingest/v1/{enterprise}/{site}[/{gateway}]``
with a JSON batch in any of the four MQTT payload forms (README, "MQTT contract").

- **Keys and scope.** ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; each key
  (``adapters.http.keys``) writes one enterprise (and its ``sites``). The enterprise,
  site and gateway come from the URL path, checked against the key; a payload that names
  another (``enterprise``/``site`` fields, an envelope's ``gateway``) is refused, never
  followed.
- **Answers.** 401 no or unknown key; 403 out of the key's scope; 413 body too large;
  400 not JSON (``invalid_json``) or not decryptable (``decrypt_failed``); 422 a payload
  with no usable reading (every reason listed); 503 not durable within
  ``durable_timeout_s`` (resending is safe). **200 only once the readings are written to
  InfluxDB or the on-disk spool**: the request waits for the storage thread's
  acknowledgement of its message, as an MQTT message is acknowledged. A 200 lists the
  readings that were dead-lettered (``deadlettered``), with reason, index and field.
- **Decryption hook.** With ``encrypted_field: data`` the body is an envelope
  ``{"appid": ..., "data": "<base64>"}``; the engine's ``decrypt`` callable (given to
  :class:`~riskwatch.engine.Engine`, never found by name) gets ``(key name, ciphertext
  bytes)`` and returns the JSON batch bytes, raising to refuse (ministry specs: SM4-CBC
  with keys they issue; see docs/ingest.md).

Each accepted body becomes one message on the HTTP :class:`LocalChannel` with the topic
the MQTT template would give it, so it is decoded, dead-lettered and stored exactly as
an MQTT message (the engine thread decodes it; this module only checks and waits).
"""

# no ``from __future__ import annotations``: FastAPI resolves endpoint annotations at run time
import base64
import binascii
import hmac
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.to_thread
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from riskwatch.clock import Clock
from riskwatch.config.adapters import HttpIngestConfig, HttpKey
from riskwatch.errors import DeadLetterReason as R
from riskwatch.ingest.channels import LocalChannel
from riskwatch.ingest.decode import DecodedMessage
from riskwatch.ingest.topics import TopicTemplate
from riskwatch.webserver import SecurityHeaders, ThreadedServer

__all__ = ["Decrypt", "HttpIngest"]

log = logging.getLogger(__name__)

#: ``(key name, ciphertext) -> plaintext``; raise any exception to refuse the body
Decrypt = Callable[[str, bytes], bytes]


@dataclass
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    decoded: DecodedMessage | None = None


def _error(status: int, reason: str, detail: str, **more: Any) -> JSONResponse:
    return JSONResponse({"reason": reason, "detail": detail, **more}, status_code=status)


class HttpIngest:
    """The HTTP endpoint, its channel and the requests waiting for durability."""

    def __init__(
        self, cfg: HttpIngestConfig, template: TopicTemplate, clock: Clock, *,
        decrypt: Decrypt | None = None, tls: tuple[Path, Path] | None = None,
    ) -> None:  # fmt: skip
        self.cfg = cfg
        self.tls = tls
        self.template = template
        self.clock = clock
        self.decrypt = decrypt
        if cfg.encrypted_field and decrypt is None:
            raise ValueError("adapters.http.encrypted_field is set but the engine was given "
                             "no decrypt callable (docs/ingest.md)")  # fmt: skip
        self.keys: list[tuple[bytes, HttpKey]] = []
        for k in cfg.keys:
            secret = k.key()
            if secret:
                self.keys.append((secret.encode(), k))
            else:
                log.warning("adapters.http.keys.%s: the secret is empty: key disabled", k.name)
        self.channel: LocalChannel | None = None
        self._pending: dict[int, _Pending] = {}
        self._lock = threading.Lock()
        self.app = self._app()
        self._server: ThreadedServer | None = None
        self.url: str | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self, channel: LocalChannel) -> None:
        self.channel = channel
        cert, key = self.tls if self.tls is not None else (None, None)
        app = SecurityHeaders(self.app, csp="default-src 'none'", hsts=self.tls is not None)
        self._server = ThreadedServer(app, self.cfg.listen, name="http-ingest", cert_file=cert,
                                      key_file=key)  # fmt: skip
        self.url = self._server.start()
        log.info("HTTP ingest at %s/ingest/v1/{enterprise}/{site}", self.url)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    # ------------------------------------------------------------------ engine side
    def decoded(self, mid: int, decoded: DecodedMessage) -> None:
        """The engine thread decoded the message ``mid`` (called before it is stored)."""
        with self._lock:
            p = self._pending.get(mid)
        if p is not None:
            p.decoded = decoded

    def acked(self, mids: list[int]) -> None:
        """The storage thread made these messages durable (the channel's ``on_acked``)."""
        with self._lock:
            ps = [self._pending.pop(m, None) for m in mids]
        for p in ps:
            if p is not None:
                p.done.set()

    # ------------------------------------------------------------------ requests
    def _key(self, request: Request) -> HttpKey | None:
        auth = request.headers.get("authorization", "")
        given = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        given = given or request.headers.get("x-api-key", "")
        if not given:
            return None
        for secret, k in self.keys:
            if hmac.compare_digest(secret, given.encode()):
                return k
        return None

    def handle(self, request_key: HttpKey | None, enterprise: str, site: str, gateway: str,
               body: bytes) -> JSONResponse:  # fmt: skip
        """Check, queue, wait (runs in the server's thread pool)."""
        k = request_key
        if k is None:
            return _error(401, "unauthorized", "missing or unknown API key")
        if k.enterprise != enterprise:
            return _error(403, "forbidden", f"key {k.name!r} may write enterprise "
                          f"{k.enterprise!r} only, not {enterprise!r}")  # fmt: skip
        if "*" not in k.sites and site not in k.sites:
            return _error(403, "forbidden", f"key {k.name!r} may not write site {site!r}")
        if len(body) > self.cfg.max_body_bytes:
            return _error(413, R.TOO_LARGE.value, f"{len(body)} bytes > adapters.http."
                          f"max_body_bytes {self.cfg.max_body_bytes}")  # fmt: skip
        if self.cfg.encrypted_field:
            plain = self._decrypt(k, body)
            if isinstance(plain, JSONResponse):
                return plain
            body = plain
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return _error(400, R.INVALID_JSON.value, str(exc))
        if type(obj) not in (dict, list):
            return _error(422, R.BAD_SHAPE.value,
                          "payload must be a reading, a list, an envelope or columns")
        clash = _identity_clash(obj, enterprise, site)
        if clash:
            return _error(403, R.TOPIC_MISMATCH.value, clash)
        tags = {n: "http" for n in self.template.names}
        tags.update(enterprise=enterprise, site=site)
        if "gateway" in tags:
            tags["gateway"] = gateway or "http"
        topic = self.template.format(**tags)
        assert self.channel is not None
        p = _Pending()
        with self._lock:
            mid = self.channel.put(topic, body, self.clock.now_ns())
            self._pending[mid] = p
        if not p.done.wait(self.cfg.durable_timeout_s):
            with self._lock:
                self._pending.pop(mid, None)
            return _error(503, "not_durable", f"not stored or spooled within "
                          f"{self.cfg.durable_timeout_s:g} s; resending is safe")  # fmt: skip
        d = p.decoded
        dls = [{"reason": x.reason.value, "detail": x.detail, "index": x.index,
                "field": x.field, "count": x.count}
               for x in (d.deadletters if d else [])]  # fmt: skip
        stored = len(d.batch) if d is not None else 0
        if stored == 0 and dls:
            return JSONResponse({"reason": dls[0]["reason"], "detail": "no usable reading",
                                 "stored": 0, "deadlettered": dls}, status_code=422)  # fmt: skip
        return JSONResponse({"stored": stored, "deadlettered": dls}, status_code=200)

    def _decrypt(self, k: HttpKey, body: bytes) -> bytes | JSONResponse:
        fld = self.cfg.encrypted_field
        assert fld is not None and self.decrypt is not None
        try:
            env = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return _error(400, R.INVALID_JSON.value, str(exc))
        if type(env) is not dict or type(env.get(fld)) is not str:
            return _error(422, R.BAD_SHAPE.value, f"an envelope with a base64 {fld!r} field "
                          "is expected (adapters.http.encrypted_field)")  # fmt: skip
        try:
            cipher = base64.b64decode(env[fld], validate=True)
        except (binascii.Error, ValueError):
            return _error(400, R.DECRYPT_FAILED.value, f"{fld!r} is not base64")
        try:
            return self.decrypt(k.name, cipher)
        except Exception as exc:
            return _error(400, R.DECRYPT_FAILED.value, f"{fld!r} did not decrypt: {exc}")

    def _app(self) -> FastAPI:
        app = FastAPI(title="riskwatch HTTP ingest", docs_url=None, redoc_url=None)

        @app.get("/healthz")
        def healthz() -> dict[str, str]:
            return {"status": "ok"}

        async def _post(request: Request, enterprise: str, site: str, gateway: str) -> Any:
            body = await request.body()
            key = self._key(request)
            return await anyio.to_thread.run_sync(
                self.handle, key, enterprise, site, gateway, body
            )

        @app.post("/ingest/v1/{enterprise}/{site}")
        async def post_site(request: Request, enterprise: str, site: str) -> Any:
            return await _post(request, enterprise, site, "")

        @app.post("/ingest/v1/{enterprise}/{site}/{gateway}")
        async def post_gateway(request: Request, enterprise: str, site: str, gateway: str) -> Any:
            return await _post(request, enterprise, site, gateway)

        return app


def _identity_clash(obj: Any, enterprise: str, site: str) -> str | None:
    """A payload field naming another enterprise or site than the URL's, or None."""
    rows: list[Any] = [obj]
    if type(obj) is list:
        rows = obj
    elif type(obj) is dict and type(obj.get("readings")) is list:
        rows = [obj, *obj["readings"]]
    for i, r in enumerate(rows):
        if type(r) is not dict:
            continue
        for name, want in (("enterprise", enterprise), ("site", site)):
            v = r.get(name)
            if v is not None and v != want:
                where = "payload" if r is obj else f"reading {i}"
                return f"{where} names {name} {v!r}; this URL writes {want!r}"
    return None
