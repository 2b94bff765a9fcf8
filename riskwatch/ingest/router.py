"""Which decoder a message goes to: Sparkplug topics to the Sparkplug host, KJ files
(their channel) to the KJ decoder, HTTP posts to the JSON decoder one by one (so that
each request learns its own dead letters), everything else to the JSON decoder in one
pass (the fast path, unchanged when no adapter is configured).

>>> from riskwatch.catalog import SensorRegistry
>>> from riskwatch.ingest.decode import Decoder
>>> from riskwatch.ingest.topics import TopicTemplate
>>> r = FormatRouter(Decoder(SensorRegistry(), TopicTemplate("rw/{enterprise}/{site}/{gateway}")))
>>> msg = ("rw/m/s/g", b'{"sensor":"A","ts":1795880000000,"value":1}', 1795880000000000000, 1, 1)
>>> r.decode_many([msg]).batch.value.tolist()
[1.0]
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from riskwatch.errors import DeadLetterReason as R
from riskwatch.ingest.channels import HTTP_CHANNEL, KJ_CHANNEL
from riskwatch.ingest.deadletter import DeadLetter
from riskwatch.ingest.decode import DecodedMessage, Decoder
from riskwatch.ingest.receiver import Message
from riskwatch.model import Batch, concat_batches

__all__ = ["FormatRouter"]

log = logging.getLogger(__name__)


class _OneDecoder(Protocol):
    def decode(self, topic: str, payload: bytes, received_ns: int) -> DecodedMessage: ...


class FormatRouter:
    """Routes each message to its format's decoder and merges the results."""

    def __init__(
        self, json: Decoder, *, sparkplug: _OneDecoder | None = None,
        kj: _OneDecoder | None = None,
        on_http: Callable[[int, DecodedMessage], None] | None = None,
    ) -> None:  # fmt: skip
        self.json = json
        self.sparkplug = sparkplug
        self.kj = kj
        self.on_http = on_http
        self._plain_only = sparkplug is None and kj is None and on_http is None

    def decode_many(self, messages: list[Message]) -> DecodedMessage:
        if self._plain_only:
            return self.json.decode_many([(m[0], m[1], m[2]) for m in messages])
        plain: list[tuple[str, bytes, int]] = []
        parts: list[DecodedMessage] = []
        for topic, payload, received, mid, code in messages:
            if self.sparkplug is not None and topic.startswith("spBv1.0/"):
                parts.append(self._guarded(self.sparkplug, topic, payload, received))
            elif code == KJ_CHANNEL and self.kj is not None:
                parts.append(self._guarded(self.kj, topic, payload, received))
            elif code == HTTP_CHANNEL and self.on_http is not None:
                d = self.json.decode(topic, payload, received)
                self.on_http(mid, d)
                parts.append(d)
            else:
                plain.append((topic, payload, received))
        if plain:
            parts.append(self.json.decode_many(plain))
        if len(parts) == 1:
            return parts[0]
        return DecodedMessage(
            concat_batches([p.batch for p in parts]),
            [d for p in parts for d in p.deadletters],
            sum(p.n_readings for p in parts),
        )

    @staticmethod
    def _guarded(dec: _OneDecoder, topic: str, payload: bytes, received: int) -> DecodedMessage:
        try:
            return dec.decode(topic, payload, received)
        except Exception:  # an adapter bug must not stop ingest: the message is kept
            log.exception("decoding %s failed; dead-lettered", topic)
            return DecodedMessage(Batch.empty(), [DeadLetter(
                R.DECODE_ERROR, "the decoder failed on this message (see the engine log)",
                topic, None, None, payload[:200].decode("utf-8", "replace"),
            )], 0)  # fmt: skip
