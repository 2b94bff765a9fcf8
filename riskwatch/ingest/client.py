"""The engine's MQTT connection (paho-mqtt 2.x): subscribe, receive with manual acks,
publish alerts and dead letters.

- MQTT 5 (default) or 3.1.1; QoS 1; persistent session (``clean_start: false`` with a
  session expiry, or ``clean_session=False`` on 3.1.1), so unacknowledged messages are
  redelivered after a crash or reconnect.
- Manual acknowledgement: :meth:`ack` is called by the storage thread only once the
  readings of a message are durable (written or spooled).
- Reconnect with exponential backoff (``reconnect_min_s`` .. ``reconnect_max_s``), TLS,
  username/password (password from env or file, never the YAML).
- MQTT 5 Receive Maximum bounds how many unacknowledged messages the broker sends at a
  time (``mqtt.receive_maximum``); on 3.1.1 the broker's ``max_inflight_messages`` does.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from riskwatch.config.engine import MqttConfig

__all__ = ["MqttClient"]

log = logging.getLogger(__name__)

MessageHandler = Callable[[mqtt.MQTTMessage], None]


class MqttClient:
    """One paho client used both to receive readings and to publish."""

    def __init__(
        self,
        cfg: MqttConfig,
        on_message: MessageHandler | None = None,
        *,
        on_connected: Callable[[bool], None] | None = None,
        client_id: str | None = None,
        subscribe: bool = True,
    ) -> None:
        self.cfg = cfg
        self._on_message = on_message
        self._on_connected = on_connected
        self._subscribe = subscribe
        self.connected = threading.Event()
        self._was_connected = False  # a later connect is a reconnect
        self._failed_connects = 0
        self._fail_logged = 0.0
        v5 = cfg.protocol == "5"
        self._v5 = v5
        cid = client_id or cfg.client_id
        if v5:
            self.client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=cid,
                protocol=mqtt.MQTTv5,
                manual_ack=True,
            )
        else:
            self.client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=cid,
                protocol=mqtt.MQTTv311,
                clean_session=cfg.clean_start,
                manual_ack=True,
            )
        self.client.max_queued_messages_set(0)
        self.client.max_inflight_messages_set(1000)
        self.client.reconnect_delay_set(
            min_delay=max(1, round(cfg.reconnect_min_s)),
            max_delay=max(1, round(cfg.reconnect_max_s)),
        )
        if cfg.username:
            self.client.username_pw_set(cfg.username, cfg.password())
        if cfg.use_tls:
            tls = cfg.tls
            self.client.tls_set(
                ca_certs=tls.ca_file if tls else None,
                certfile=tls.cert_file if tls else None,
                keyfile=tls.key_file if tls else None,
                cert_reqs=ssl.CERT_NONE if (tls and tls.insecure) else ssl.CERT_REQUIRED,
            )
            if tls and tls.insecure:
                self.client.tls_insecure_set(True)
        if cfg.will is not None:
            w = cfg.will
            self.client.will_set(w.topic, w.payload.encode(), qos=w.qos, retain=w.retain)
        self.client.on_connect = self._handle_connect
        self.client.on_connect_fail = self._handle_connect_fail
        self.client.on_disconnect = self._handle_disconnect
        self.client.on_message = self._handle_message
        self.client.on_subscribe = self._handle_subscribe

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Connect in the background; paho reconnects by itself after a loss."""
        props = None
        if self._v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 0 if self.cfg.clean_start else self.cfg.session_expiry_s
            props.ReceiveMaximum = self.cfg.receive_maximum
            self.client.connect_async(
                self.cfg.host,
                self.cfg.port,
                keepalive=self.cfg.keepalive_s,
                clean_start=self.cfg.clean_start,
                properties=props,
            )
        else:
            self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        self.client.loop_start()

    def stop(self) -> None:
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()

    def wait_connected(self, timeout: float) -> bool:
        """True once connected and (if subscribing) the broker confirmed the subscription."""
        return self.connected.wait(timeout)

    # ------------------------------------------------------------------ callbacks
    def _handle_connect(self, client, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        if reason_code.is_failure:
            log.error("MQTT connection to %s refused: %s", self.cfg.url, reason_code)
            return
        session = getattr(flags, "session_present", False)
        log.info(
            "connected to MQTT broker %s as %s (MQTT %s, session present: %s)",
            self.cfg.url,
            self.cfg.client_id,
            "5" if self._v5 else "3.1.1",
            session,
        )
        if self._was_connected and not session and not self.cfg.clean_start:
            # the broker forgot this client (restarted without persistence, or the session
            # expired): what gateways sent while we were away was not queued for us
            log.warning(
                "MQTT broker %s did not keep the session of %s: messages published while the "
                "engine was disconnected may be lost (broker persistence off, or "
                "mqtt.session_expiry_s passed)", self.cfg.url, self.cfg.client_id,
            )  # fmt: skip
        self._was_connected = True
        if self._failed_connects:
            log.info("MQTT broker %s answers after %d failed attempts", self.cfg.url,
                     self._failed_connects)  # fmt: skip
            self._failed_connects = 0
        if self._subscribe and self.cfg.topics:
            client.subscribe([(t, self.cfg.qos) for t in self.cfg.topics])
        else:
            self._ready()

    def _handle_connect_fail(self, client, userdata) -> None:  # type: ignore[no-untyped-def]
        """A connection attempt failed (nothing listens, DNS, TLS): say so, not only a
        notifier's retry line; once, then once a minute while it lasts."""
        self._failed_connects += 1
        now = time.monotonic()
        if self._failed_connects == 1 or now - self._fail_logged >= 60:
            self._fail_logged = now
            log.error(
                "cannot connect to MQTT broker %s (%d attempts so far): nothing readable from "
                "gateways until it answers; retrying every %d-%d s", self.cfg.url,
                self._failed_connects, max(1, round(self.cfg.reconnect_min_s)),
                max(1, round(self.cfg.reconnect_max_s)),
            )  # fmt: skip

    def _ready(self) -> None:
        self.connected.set()
        if self._on_connected:
            self._on_connected(True)

    def _handle_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:  # type: ignore[no-untyped-def]
        bad = [str(rc) for rc in reason_codes if rc.is_failure]
        if bad:
            log.error("subscription to %s refused: %s", ", ".join(self.cfg.topics), ", ".join(bad))
        else:
            log.info("subscribed to %s (QoS %d)", ", ".join(self.cfg.topics), self.cfg.qos)
        self._ready()

    def _handle_disconnect(self, client, userdata, flags, reason_code, properties) -> None:  # type: ignore[no-untyped-def]
        self.connected.clear()
        if self._on_connected:
            self._on_connected(False)
        if reason_code != 0:
            log.warning("MQTT connection lost (%s); reconnecting with backoff", reason_code)

    def _handle_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:  # type: ignore[no-untyped-def]
        if self._on_message is None:
            return
        try:
            self._on_message(msg)
        except Exception:  # the network thread must never die on one message
            log.exception("error handling message on %s", msg.topic)

    # ------------------------------------------------------------------ I/O
    def ack(self, mid: int, qos: int) -> None:
        if qos > 0:
            self.client.ack(mid, qos)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            log.warning("publish to %s failed: %s", topic, mqtt.error_string(info.rc))
